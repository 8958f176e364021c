// An owned file descriptor, closed when it goes. Shared by the store and the hooks, which open
// files relative to directory fds and must not leak one on any error path.
#pragma once

#include <unistd.h>

#include <utility>

namespace sitesfs {

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    // For files whose close() result matters (a deferred write error, quota or NFS, surfaces here).
    int close() { return ::close(std::exchange(fd_, -1)); }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

}  // namespace sitesfs
