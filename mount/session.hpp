// The FUSE session: mount, serve until a signal, unmount.
#pragma once

#include <string>
#include <vector>

#include "fs/filesystem.hpp"

namespace sitesfs::mount {

// A mountpoint left by a crashed sitesfs answers "Transport endpoint is not connected"; lazily
// unmount it (fusermount3 -u -z) so this start can mount again. One whose daemon was killed but
// never let go of the connection (docs/reliability.md, "A wedged mount") does not answer at all:
// its connection is aborted first. Returns why the mountpoint cannot be used, or "".
std::string clear_stale_mount(const std::string& mountpoint);

class Session {
public:
    // `options` are the -o mount options (ro, allow_other, nosuid, ...).
    Session(fs::Filesystem& filesystem, const std::string& mountpoint, const std::vector<std::string>& options);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Empty when mounted, else why not.
    const std::string& error() const { return error_; }
    fuse_session* get() const { return session_; }
    // Serves requests until SIGINT, SIGTERM or SIGHUP, or an unmount; returns 0 on a clean end,
    // else a negative errno.
    int serve();

private:
    fuse_session* session_ = nullptr;
    bool handlers_ = false;
    bool mounted_ = false;
    std::string error_;
};

}  // namespace sitesfs::mount
