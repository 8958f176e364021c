#include "mount/session.hpp"

#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <thread>

#include "common/files.hpp"

extern char** environ;

namespace sitesfs::mount {

namespace {

// How long a mount's daemon may take to answer statfs before it counts as wedged. sitesfs answers
// statfs from memory; a daemon that cannot in this time is not serving anyone either.
constexpr auto kStatfsAnswer = std::chrono::seconds(5);

constexpr const char* kFuseControl = "/sys/fs/fuse/connections";

// The FUSE connection number of the mount on top of `mountpoint`, when it is a FUSE filesystem.
std::optional<unsigned> fuse_connection(const std::string& mountpoint) {
    std::optional<unsigned> found;
    for (const auto& m : read_mountinfo())
        if (m.point == mountpoint) found = m.fstype.starts_with("fuse") ? std::optional(m.minor) : std::nullopt;
    return found;
}

// Aborts a FUSE connection through the fuse control filesystem (mounting it where systemd
// would, when nothing has): every request waiting on it fails (ECONNABORTED).
std::string abort_connection(unsigned connection) {
    const std::string dir = std::string(kFuseControl) + "/" + std::to_string(connection);
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 && ::mount("fusectl", kFuseControl, "fusectl", 0, nullptr) != 0 && errno != EBUSY)
        return std::string("cannot mount the fuse control filesystem on ") + kFuseControl + ": " + std::strerror(errno);
    const std::string abort_file = dir + "/abort";
    std::ofstream out(abort_file);
    if (!(out << "1\n" << std::flush)) return "cannot write " + abort_file + ": " + std::strerror(errno);
    return {};
}

void lazy_unmount(const std::string& mountpoint) {
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

}  // namespace

std::string clear_stale_mount(const std::string& mountpoint) {
    const auto connection = fuse_connection(mountpoint);
    if (!connection) return {};
    // statfs always reaches the daemon; stat of a dead mount's root can still be answered from
    // the kernel's attribute cache and look healthy. It runs on its own thread because on a
    // wedged mount it never returns until the connection is aborted.
    auto answer = std::make_shared<std::promise<int>>();
    std::future<int> answered = answer->get_future();
    std::thread([answer, mountpoint] {
        struct statvfs st;
        answer->set_value(::statvfs(mountpoint.c_str(), &st) == 0 ? 0 : errno);
    }).detach();
    if (answered.wait_for(kStatfsAnswer) == std::future_status::timeout) {
        // A daemon SIGKILLed (the OOM killer) while one of its threads was in the kernel sending
        // an entry invalidation, which waits for the directory's lock held by a lookup, which
        // waits for the dead daemon: the thread cannot die, so the connection is never closed and
        // everything on the mount waits forever. Aborting the connection ends all three.
        spdlog::warn("{}: the mount's sitesfs does not answer (killed while invalidating an entry?); aborting FUSE "
                     "connection {}",
                     mountpoint, *connection);
        if (std::string why = abort_connection(*connection); !why.empty())
            return mountpoint + " is mounted by a sitesfs that no longer answers, and aborting its connection failed: " +
                   why + "; abort it by hand (echo 1 > " + kFuseControl + "/" + std::to_string(*connection) +
                   "/abort) and unmount it";
        if (answered.wait_for(kStatfsAnswer) == std::future_status::timeout)
            return mountpoint + " still does not answer after its FUSE connection " + std::to_string(*connection) +
                   " was aborted";
    } else if (answered.get() != ENOTCONN) {
        return {};  // a live mount: this one goes on top, as mount(8) would
    }
    spdlog::warn("{}: stale mount of a crashed sitesfs (Transport endpoint is not connected); unmounting it", mountpoint);
    lazy_unmount(mountpoint);
    return {};
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
