// A watchdog for tests that load a mount: a deadlocked FUSE daemon does not crash, it stops
// answering, and every process that touches the mount (the test's threads included) blocks
// for good. The watchdog notices, says so, records the daemon's thread stacks, and aborts the
// FUSE connection so that the blocked calls fail (ECONNABORTED, ENOTCONN) and the test can finish and tear down.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

namespace sitesfs::it {

class MountWatchdog {
public:
    // Probes `mountpoint` with statfs (which always reaches the daemon) every `period`, each probe
    // in a child process of its own: a statfs on a hung mount never returns, and a thread stuck in
    // it could not be taken back. `daemon` is the pid whose stacks are recorded.
    MountWatchdog(std::filesystem::path mountpoint, pid_t daemon,
                  std::chrono::seconds limit = std::chrono::seconds(20),
                  std::chrono::milliseconds period = std::chrono::milliseconds(1000));
    // Stops probing; adds a test failure (with the report) if the mount stopped answering.
    ~MountWatchdog();
    MountWatchdog(const MountWatchdog&) = delete;
    MountWatchdog& operator=(const MountWatchdog&) = delete;

    // Probes answered so far, for the test's counts.
    int probes() const { return probes_.load(); }
    // True once the mount stopped answering for `limit` (it has been aborted since).
    bool tripped() const { return tripped_.load(); }
    // The message and stacks; empty while not tripped.
    std::string report() const;
    // A different daemon serves the mountpoint now (after a restart).
    void watch(pid_t daemon) { daemon_.store(daemon); }

private:
    void loop();
    void trip(std::chrono::steady_clock::duration silent);

    const std::filesystem::path mountpoint_;
    std::atomic<pid_t> daemon_;
    const std::chrono::seconds limit_;
    const std::chrono::milliseconds period_;
    std::atomic<int> probes_{0};
    std::atomic<bool> tripped_{false};
    mutable std::mutex mu_;
    std::condition_variable stop_cv_;
    bool stop_ = false;
    std::string report_;
    std::thread thread_;
};

// Thread stacks of `pid` for a hang report: gdb's `thread apply all bt` when gdb is installed,
// and each thread's kernel wait channel and stack from /proc.
std::string thread_stacks(pid_t pid);

// Aborts the FUSE connection behind `mountpoint` (fusectl's abort file): every request waiting
// on it fails (ECONNABORTED) and the daemon sees its device end. Returns what it did, for messages.
std::string abort_fuse_connection(const std::filesystem::path& mountpoint);

}  // namespace sitesfs::it
