// One HTTP exchange over a connected stream socket: what the webhook tests do to the listener.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace sitesfs::it {

// Connects `fd` to `addr`, sends `raw` whole and returns everything the peer answers until it
// closes (10 s at most between reads); closes `fd`. "<connect: REASON>" when it cannot connect.
inline std::string exchange(int fd, const sockaddr* addr, socklen_t len, const std::string& raw) {
    if (connect(fd, addr, len) != 0) {
        const std::string why = std::string("<connect: ") + std::strerror(errno) + ">";
        close(fd);
        return why;
    }
    const timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (size_t sent = 0; sent < raw.size();) {
        const ssize_t n = send(fd, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
    }
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
    close(fd);
    return out;
}

}  // namespace sitesfs::it
