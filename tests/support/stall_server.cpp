#include "tests/support/stall_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace sitesfs::it {

namespace {

// A socket listening on 127.0.0.1 on a free port; throws when the machine will not give one.
int listen_loopback(int backlog, int& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 || ::listen(fd, backlog) < 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size) < 0) {
        const int err = errno;
        ::close(fd);
        throw std::runtime_error(std::string("listening on 127.0.0.1: ") + std::strerror(err));
    }
    port = ntohs(addr.sin_port);
    return fd;
}

}  // namespace

StallServer::StallServer(std::string greeting) : greeting_(std::move(greeting)) {
    listener_ = listen_loopback(16, port_);
    if (::pipe2(wake_, O_CLOEXEC) < 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    thread_ = std::thread([this] { serve(); });
}

StallServer::~StallServer() {
    (void)!::write(wake_[1], "x", 1);
    thread_.join();
    for (const int fd : connections_) ::close(fd);
    ::close(listener_);
    ::close(wake_[0]);
    ::close(wake_[1]);
}

void StallServer::serve() {
    for (;;) {
        pollfd fds[2] = {{listener_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
        if (fds[1].revents) return;
        if (!(fds[0].revents & POLLIN)) continue;
        const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        if (!greeting_.empty()) (void)!::send(fd, greeting_.data(), greeting_.size(), MSG_NOSIGNAL);
        connections_.push_back(fd);  // kept open, and never read: the client waits for an answer
        ++accepted_;
    }
}

FullBacklog::FullBacklog() {
    listener_ = listen_loopback(0, port_);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    // Connections complete (the kernel accepts them for us) until the queue is full; the first one
    // that stays in progress shows the next SYN is dropped.
    for (int i = 0; i < 16; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) break;
        clients_.push_back(fd);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) continue;
        if (errno != EINPROGRESS) {
            why_ = std::string("connect: ") + std::strerror(errno);
            return;
        }
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, 1000) == 0) return;  // full
    }
    why_ = "the kernel kept accepting connections beyond a listen backlog of 0";
}

FullBacklog::~FullBacklog() {
    for (const int fd : clients_) ::close(fd);
    ::close(listener_);
}

bool FullBacklog::filled(std::string* why) const {
    if (why) *why = why_;
    return why_.empty();
}

}  // namespace sitesfs::it
