#include "hooks/net.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "hooks/command.hpp"

namespace sitesfs::hooks {

namespace {

std::optional<int> parse_port(std::string_view s) {
    if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    const int port = std::stoi(std::string(s));
    if (port < 1 || port > 65535) return std::nullopt;
    return port;
}

}  // namespace

bool Endpoint::loopback() const {
    if (addr.ss_family == AF_INET)
        return (ntohl(reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr.s_addr) >> 24) == 127;
    return addr.ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr);
}

std::optional<Endpoint> parse_endpoint(const std::string& address) {
    Endpoint e;
    std::string_view port_text;
    if (address.starts_with('[')) {
        const size_t close = address.find(']');
        if (close == std::string::npos || address.compare(close + 1, 1, ":") != 0) return std::nullopt;
        e.host = address.substr(1, close - 1);
        port_text = std::string_view(address).substr(close + 2);
        auto* a6 = reinterpret_cast<sockaddr_in6*>(&e.addr);
        if (inet_pton(AF_INET6, e.host.c_str(), &a6->sin6_addr) != 1) return std::nullopt;
        a6->sin6_family = AF_INET6;
        e.len = sizeof(sockaddr_in6);
    } else {
        const size_t colon = address.rfind(':');
        if (colon == std::string::npos) return std::nullopt;
        e.host = address.substr(0, colon);
        port_text = std::string_view(address).substr(colon + 1);
        auto* a4 = reinterpret_cast<sockaddr_in*>(&e.addr);
        if (inet_pton(AF_INET, e.host.c_str(), &a4->sin_addr) != 1) return std::nullopt;
        a4->sin_family = AF_INET;
        e.len = sizeof(sockaddr_in);
    }
    const auto port = parse_port(port_text);
    if (!port) return std::nullopt;
    e.port = *port;
    // sin_port and sin6_port sit at the same offset.
    reinterpret_cast<sockaddr_in*>(&e.addr)->sin_port = htons(static_cast<uint16_t>(*port));
    return e;
}

Socket::~Socket() {
    if (fd_ >= 0) ::close(fd_);
}

bool wait_for(int fd, short events, Deadline deadline) {
    for (;;) {
        const int left = remaining_ms(deadline);
        if (left == 0) return false;
        pollfd p{fd, events, 0};
        const int n = poll(&p, 1, left);
        if (n > 0) return true;
        if (n < 0 && errno != EINTR) return true;  // let the following syscall report the error
    }
}

Socket connect_to(const Endpoint& to, const std::string& address, Deadline deadline,
                  std::chrono::milliseconds timeout, std::string& error) {
    Socket sock(::socket(to.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    const auto failed = [&](std::string why) {
        error = std::move(why);
        return Socket();
    };
    if (sock.fd() < 0) return failed(std::string("socket: ") + std::strerror(errno));
    const auto connect_error = [&](int err) {
        if (err == ECONNREFUSED) return "connection refused by " + address;
        return "cannot connect to " + address + ": " + std::strerror(err);
    };
    if (::connect(sock.fd(), reinterpret_cast<const sockaddr*>(&to.addr), to.len) != 0) {
        if (errno != EINPROGRESS) return failed(connect_error(errno));
        if (!wait_for(sock.fd(), POLLOUT, deadline))
            return failed("no answer from " + address + " within " + duration_text(timeout));
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(sock.fd(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) return failed(connect_error(err));
    }
    return sock;
}

}  // namespace sitesfs::hooks
