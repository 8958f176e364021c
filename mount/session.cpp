#include "mount/session.hpp"

#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <cstring>

extern char** environ;

namespace sitesfs::mount {

void clear_stale_mount(const std::string& mountpoint) {
    // statfs always reaches the daemon; stat of a dead mount's root can still be answered from
    // the kernel's attribute cache and look healthy.
    struct statvfs st;
    if (::statvfs(mountpoint.c_str(), &st) == 0 || errno != ENOTCONN) return;
    spdlog::warn("{}: stale mount of a crashed sitesfs (Transport endpoint is not connected); unmounting it",
                 mountpoint);
    const char* argv[] = {"fusermount3", "-u", "-z", mountpoint.c_str(), nullptr};
    pid_t pid;
    if (posix_spawnp(&pid, "fusermount3", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
        spdlog::error("cannot run fusermount3 to clear the stale mount: {}", std::strerror(errno));
        return;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) spdlog::error("fusermount3 -u -z {} failed", mountpoint);
}

Session::Session(fs::Filesystem& filesystem, const std::string& mountpoint, const std::vector<std::string>& options) {
    struct stat st;
    if (::stat(mountpoint.c_str(), &st) != 0) {
        error_ = "mountpoint " + mountpoint + ": " + std::strerror(errno);
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        error_ = "mountpoint " + mountpoint + " is not a directory";
        return;
    }
    std::string opts = "default_permissions,fsname=sitesfs,subtype=sitesfs";
    for (const auto& o : options) opts += "," + o;
    const char* argv[] = {"sitesfs", "-o", opts.c_str(), nullptr};
    fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(argv));
    const auto& ops = fs::Filesystem::operations();
    session_ = fuse_session_new(&args, &ops, sizeof ops, &filesystem);
    // Parsing rebuilt args on the heap (fuse_opt_add_arg); the session keeps copies of what it
    // needs. Without this every mount leaked it (LeakSanitizer, docs/reliability.md#sanitizers).
    fuse_opt_free_args(&args);
    if (!session_) {
        error_ = "cannot create the FUSE session (options: " + opts + ")";
        return;
    }
    // libfuse only takes over signals still at their default, and a non-interactive shell starts
    // background jobs with SIGINT ignored: Ctrl-C or kill -INT must always unmount cleanly.
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, SIG_DFL);
    if (fuse_set_signal_handlers(session_) != 0) {
        error_ = "cannot install signal handlers";
        return;
    }
    handlers_ = true;
    if (fuse_session_mount(session_, mountpoint.c_str()) != 0) {
        error_ = "cannot mount on " + mountpoint + " (is /dev/fuse available, and fusermount3 installed?)";
        return;
    }
    mounted_ = true;
}

Session::~Session() {
    if (mounted_) fuse_session_unmount(session_);
    if (handlers_) fuse_remove_signal_handlers(session_);
    if (session_) fuse_session_destroy(session_);
}

int Session::serve() {
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, 16);
    const int rc = fuse_session_loop_mt(session_, cfg);
    fuse_loop_cfg_destroy(cfg);
    // libfuse 3.14 returns the number of the signal that ended the loop: a requested stop.
    return rc > 0 ? 0 : rc;
}

}  // namespace sitesfs::mount
