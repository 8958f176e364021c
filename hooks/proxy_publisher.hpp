// The proxy as every run sees it: which site is served how, and the one way to change that.
//
// Changes are published by group commit. Runs that reach the proxy while a publish is under way
// wait, and the next publish takes all of them at once: one render, one `caddy validate`, one
// swap, one reload. A validate and a reload cost ~40 ms each, so 200 sites deploying together
// cost a handful of reloads instead of 200 (docs/benchmarks.md, P4).
//
// Verdicts stay per site. A batch the proxy refuses to validate is published again one change at
// a time, so a bad site gets its own error and cannot hold the others back. A failed reload puts
// the previous file back, reloads that, and fails every change of the batch: a proxy that cannot
// reload fails them all alike. The error says whether the previous config is in force again.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "hooks/proxy_config.hpp"
#include "hooks/reload.hpp"

namespace sitesfs::hooks {

struct ProxyChange {
    std::string site;
    std::optional<ProxySite> entry;  // nullopt: the site leaves the proxy
};

struct PublishResult {
    bool ok = false;
    std::string step;  // on failure: "proxy" (render, validate, swap) or "reload"
    std::string error;
    std::optional<ProxySite> previous;  // how the site was served before this change
    bool changed = false;               // the change altered what the proxy serves for the site
};

class ProxyPublisher {
public:
    ProxyPublisher(std::unique_ptr<ProxyConfig> config, std::unique_ptr<Reloader> reloader);

    // Before any run: what the live generated file serves (from the sites' recorded state).
    void set_served(std::map<std::string, ProxySite> served);
    bool serves(const std::string& site) const;
    std::vector<std::string> served_sites() const;

    // Publishes `change` together with whatever else waits; returns once it is live (file
    // swapped, proxy reloaded) or has failed with the previous file back (the error says whether
    // the previous config is surely in force).
    PublishResult publish(ProxyChange change);

    std::string describe_reloader() const { return reloader_->describe(); }
    // Prometheus text: reloads done, the last reload's outcome and time.
    std::string metrics() const;

private:
    struct Waiter {
        ProxyChange change;
        std::optional<PublishResult> result;
    };

    std::vector<PublishResult> publish_batch(const std::vector<ProxyChange>& batch);
    void reload();
    std::string put_back(const ProxyFileBefore& before, RunningConfig after_failure);

    const std::unique_ptr<ProxyConfig> config_;
    const std::unique_ptr<Reloader> reloader_;

    mutable std::mutex mu_;
    std::condition_variable done_;
    std::vector<Waiter*> waiting_;
    bool publishing_ = false;
    // Written under mu_ by the one thread publishing; that thread also reads it without mu_.
    std::map<std::string, ProxySite> served_;

    std::atomic<uint64_t> reloads_{0};
    std::atomic<int> last_reload_ok_{-1};  // -1 none yet, 0 failed, 1 done
    std::atomic<int64_t> last_reload_at_{0};  // unix seconds
};

}  // namespace sitesfs::hooks
