// Numeric TCP endpoints on this host and connecting to them within a deadline: what the health
// check (http_probe) and the certificate probe (tls_probe) share. Names are never resolved: both
// must reach the proxy's own listener, and a lookup would add a resolver and its timeouts.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <optional>
#include <string>

namespace sitesfs::hooks {

using Deadline = std::chrono::steady_clock::time_point;

struct Endpoint {
    sockaddr_storage addr{};
    socklen_t len = 0;
    std::string host;  // the IP as written, without brackets: "127.0.0.1", "::1"
    int port = 0;
    bool loopback() const;
};

// "127.0.0.1:8080" or "[::1]:8080"; nullopt for anything else.
std::optional<Endpoint> parse_endpoint(const std::string& address);

class Socket {
public:
    explicit Socket(int fd = -1) : fd_(fd) {}
    ~Socket();
    Socket(Socket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    Socket& operator=(Socket&&) = delete;
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    int fd() const { return fd_; }

private:
    int fd_;
};

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, Deadline deadline);

// A non-blocking socket connected to `to`, or an invalid one with `error` set ("connection
// refused by ADDRESS", "no answer from ADDRESS within 5s").
Socket connect_to(const Endpoint& to, const std::string& address, Deadline deadline,
                  std::chrono::milliseconds timeout, std::string& error);

}  // namespace sitesfs::hooks
