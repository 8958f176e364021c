// The health check's HTTP client: one plain HTTP/1.1 GET to the proxy's listener with the site's
// Host header, so the answer comes through the same proxy config visitors reach. No redirects are
// followed (a 3xx is an answer), no TLS (point it at the proxy's plain-HTTP listener on loopback).
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace sitesfs::hooks {

struct ProbeResult {
    std::string error;                        // non-empty: no HTTP answer (refused, timeout, garbage)
    int status = 0;                           // e.g. 200
    std::map<std::string, std::string> headers;  // names lower-cased; last one wins
    std::string body;                         // first 64 KiB
};

// address: "127.0.0.1:8080" or "[::1]:8080"; path starts with '/'. The whole exchange (connect,
// send, receive) is bounded by `timeout`.
ProbeResult http_get(const std::string& address, const std::string& host, const std::string& path,
                     std::chrono::milliseconds timeout);

}  // namespace sitesfs::hooks
