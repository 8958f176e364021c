// The health check's HTTP client: one plain HTTP/1.1 GET to the proxy's loopback health listener
// with the site's Host header, so the answer comes from the same site block visitors reach. No
// redirects are followed here (a 3xx is an answer); the health step decides which to follow.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sitesfs::hooks {

// The most of a body a probe reads; a check's text is looked for in this much.
constexpr size_t kMaxProbeBody = 64 * 1024;

struct ProbeResult {
    std::string error;                        // non-empty: no HTTP answer (refused, timeout, garbage)
    int status = 0;                           // e.g. 200
    std::map<std::string, std::string> headers;  // names lower-cased; last one wins
    std::string body;                         // the first kMaxProbeBody bytes
};

// address: "127.0.0.1:8080" or "[::1]:8080"; path starts with '/'. The whole exchange (connect,
// send, receive) is bounded by `timeout`.
ProbeResult http_get(const std::string& address, const std::string& host, const std::string& path,
                     std::chrono::milliseconds timeout);

// The name a probe sends (Host, SNI) for a domain: itself, or for "*.example.com" a name the
// wildcard matches, "sitesfs-health.example.com".
std::string probe_name(const std::string& domain);

// Where a redirect leads, when it stays on the site: a Location that is a path, or an http(s) URL
// whose host is one of `domains` (a wildcard matching it counts). nullopt for any other place.
struct Target {
    std::string host;
    std::string path;
};
std::optional<Target> same_site_target(const std::string& location, const Target& from,
                                       const std::vector<std::string>& domains);

}  // namespace sitesfs::hooks
