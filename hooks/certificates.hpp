// The certificates the proxy serves for the live sites' domains, for the `tls:` lines of `status`
// and the days-to-expiry metric. Refreshed after each deploy and on poll ticks: Caddy obtains and
// renews certificates on its own schedule, never as part of a deploy, so a missing certificate
// is reported, never a reason to roll a release back.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace sitesfs::hooks {

class Certificates {
public:
    // address: the proxy's HTTPS listener ("127.0.0.1:443"); empty: HTTP only, nothing to watch.
    Certificates(std::string address, std::chrono::milliseconds timeout);

    bool enabled() const { return !address_.empty(); }
    // One handshake per domain; returns the status lines ("blog.example.com Let's Encrypt until
    // 2027-03-01", "new.example.com none yet") and keeps them for metrics().
    std::vector<std::string> refresh(const std::string& site, const std::vector<std::string>& domains);
    void forget(const std::string& site);
    std::string metrics() const;

private:
    struct Seen {
        std::string domain;
        bool known = false;   // the listener answered
        bool served = false;  // with a certificate
        double days_left = 0;
    };
    const std::string address_;
    const std::chrono::milliseconds timeout_;
    mutable std::mutex mu_;
    std::map<std::string, std::vector<Seen>> sites_;
};

}  // namespace sitesfs::hooks
