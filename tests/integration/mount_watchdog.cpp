#include "tests/integration/mount_watchdog.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <sstream>

#include "tests/integration/mount_fixture.hpp"

namespace sitesfs::it {

namespace {

using Clock = std::chrono::steady_clock;

// The kernel's number for the connection behind the topmost mount on `mountpoint` (the name of
// its directory in fusectl), read from mountinfo: a stat of a hung mount would block.
std::optional<unsigned long> fuse_connection(const stdfs::path& mountpoint) {
    std::optional<unsigned long> found;
    std::istringstream in(slurp("/proc/self/mountinfo"));
    for (std::string line; std::getline(in, line);) {
        std::istringstream fields(line);
        std::string id, parent, dev, root, point;
        if (!(fields >> id >> parent >> dev >> root >> point)) continue;
        // Mount points with spaces are escaped in mountinfo; ours (mkdtemp under /tmp) have none.
        if (point != mountpoint.lexically_normal().string() || line.find(" - fuse") == std::string::npos) continue;
        unsigned long major = 0, minor = 0;
        if (std::sscanf(dev.c_str(), "%lu:%lu", &major, &minor) == 2) found = (major << 20) | minor;
    }
    return found;
}

}  // namespace

MountWatchdog::MountWatchdog(stdfs::path mountpoint, pid_t daemon, std::chrono::seconds limit,
                             std::chrono::milliseconds period)
    : mountpoint_(std::move(mountpoint)), daemon_(daemon), limit_(limit), period_(period) {
    thread_ = std::thread([this] { loop(); });
}

MountWatchdog::~MountWatchdog() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    stop_cv_.notify_all();
    thread_.join();
    if (tripped()) ADD_FAILURE() << report();
}

std::string MountWatchdog::report() const {
    std::lock_guard lock(mu_);
    return report_;
}

void MountWatchdog::loop() {
    const std::string path = mountpoint_.string();
    auto last_answer = Clock::now();
    for (;;) {
        const pid_t child = fork();
        if (child == 0) {
            // Only async-signal-safe calls between fork and _exit: the parent has other threads.
            struct statfs sfs;
            _exit(::statfs(path.c_str(), &sfs) == 0 ? 0 : 1);
        }
        if (child < 0) {
            std::cerr << "watchdog: fork: " << std::strerror(errno) << "; probing stopped\n";
            return;
        }
        for (;;) {
            if (waitpid(child, nullptr, WNOHANG) == child) {
                last_answer = Clock::now();
                ++probes_;
                break;
            }
            const auto silent = Clock::now() - last_answer;
            if (silent >= limit_) {
                trip(silent);
                // The abort lets the probe's statfs fail; a probe that still hangs is left to init.
                kill(child, SIGKILL);
                for (int i = 0; i < 100 && waitpid(child, nullptr, WNOHANG) != child; ++i)
                    std::this_thread::sleep_for(std::chrono::milliseconds(50));
                return;
            }
            std::unique_lock lock(mu_);
            // A stop request is only honoured between probes: the child must be reaped.
            stop_cv_.wait_for(lock, std::chrono::milliseconds(20));
        }
        std::unique_lock lock(mu_);
        if (stop_cv_.wait_for(lock, period_, [this] { return stop_; })) return;
    }
}

void MountWatchdog::trip(Clock::duration silent) {
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(silent).count();
    std::ostringstream msg;
    msg << "the mount " << mountpoint_.string() << " stopped answering for " << secs
        << " s (a statfs round trip never came back): deadlock?\n";
    std::cerr << "watchdog: " << msg.str() << std::flush;
    const pid_t pid = daemon_.load();
    msg << "--- thread stacks of the daemon (pid " << pid << ") ---\n" << thread_stacks(pid) << "\n";
    msg << "--- then: " << abort_fuse_connection(mountpoint_) << "\n";
    {
        std::lock_guard lock(mu_);
        report_ = msg.str();
    }
    tripped_ = true;
    std::cerr << report() << std::flush;
}

std::string thread_stacks(pid_t pid) {
    if (pid <= 0 || !process_alive(pid)) return "(the daemon is not running)\n";
    std::string out;
    const Run gdb = run({"gdb", "-p", std::to_string(pid), "-batch", "-nx", "-ex", "thread apply all bt"},
                        {.timeout = std::chrono::seconds(60)});
    if (gdb.code == 0 && gdb.out.find("Thread ") != std::string::npos)
        out += gdb.out;
    else
        out += "(no gdb backtrace: " + (gdb.code == -1 ? gdb.err : "gdb exit " + std::to_string(gdb.code)) + ")\n";
    const stdfs::path tasks = "/proc/" + std::to_string(pid) + "/task";
    std::error_code ec;
    for (const auto& t : stdfs::directory_iterator(tasks, ec)) {
        std::string comm = slurp(t.path() / "comm");
        if (!comm.empty() && comm.back() == '\n') comm.pop_back();
        out += "task " + t.path().filename().string() + " (" + comm + ") wchan " + slurp(t.path() / "wchan") + "\n";
        out += slurp(t.path() / "stack");
    }
    return out;
}

std::string abort_fuse_connection(const stdfs::path& mountpoint) {
    const auto conn = fuse_connection(mountpoint);
    if (!conn) return "no FUSE mount on " + mountpoint.string() + " to abort";
    const std::string name = std::to_string(*conn);
    auto write_abort = [&](const stdfs::path& dir) {
        const int fd = ::open((dir / name / "abort").c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0) return false;
        const bool ok = ::write(fd, "1", 1) == 1;
        ::close(fd);
        return ok;
    };
    if (write_abort("/sys/fs/fuse/connections")) return "aborted FUSE connection " + name;
    // fusectl is not mounted at its usual place: mount a private copy just for this.
    char dir[] = "/tmp/sitesfs-fusectl.XXXXXX";
    if (!mkdtemp(dir)) return std::string("cannot abort: mkdtemp: ") + std::strerror(errno);
    std::string what;
    if (::mount("fusectl", dir, "fusectl", 0, nullptr) != 0) {
        what = std::string("cannot abort: mount fusectl: ") + std::strerror(errno);
    } else {
        what = write_abort(dir) ? "aborted FUSE connection " + name : "cannot abort connection " + name + ": " + std::strerror(errno);
        ::umount2(dir, MNT_DETACH);
    }
    ::rmdir(dir);
    return what;
}

}  // namespace sitesfs::it
