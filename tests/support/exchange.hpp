// One HTTP exchange over a connected stream socket: what the webhook tests do to the listener.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace sitesfs::it {

// Connects `fd` to `addr` and sends `parts` whole, one after another; before each part but the
// first it reads what the peer answers up to an empty line (an interim "100 Continue", say). Returns
// everything the peer answers until it closes (10 s at most between reads); closes `fd`.
// "<connect: REASON>" when it cannot connect.
inline std::string exchange(int fd, const sockaddr* addr, socklen_t len, const std::vector<std::string>& parts) {
    if (connect(fd, addr, len) != 0) {
        const std::string why = std::string("<connect: ") + std::strerror(errno) + ">";
        close(fd);
        return why;
    }
    const timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string out;
    char buf[4096];
    for (size_t i = 0; i < parts.size(); ++i) {
        const size_t from = out.size();
        if (i > 0)
            for (ssize_t n; out.find("\r\n\r\n", from) == std::string::npos && (n = recv(fd, buf, 1, 0)) > 0;)
                out.append(buf, static_cast<size_t>(n));
        for (size_t sent = 0; sent < parts[i].size();) {
            const ssize_t n = send(fd, parts[i].data() + sent, parts[i].size() - sent, MSG_NOSIGNAL);
            if (n <= 0) break;
            sent += static_cast<size_t>(n);
        }
    }
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
    close(fd);
    return out;
}

inline std::string exchange(int fd, const sockaddr* addr, socklen_t len, const std::string& raw) {
    return exchange(fd, addr, len, std::vector<std::string>{raw});
}

}  // namespace sitesfs::it
