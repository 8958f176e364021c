// Runs a program the operator configured (caddy, a reload command): argv directly, never a shell,
// with a deadline, its output collected for the error message a person reads.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace sitesfs::hooks {

struct CommandResult {
    bool started = false;    // false: argv[0] could not be executed (output says why)
    bool timed_out = false;  // killed (with its process group) at the deadline
    bool cancelled = false;  // killed (with its process group) because the caller asked
    int exit_code = -1;      // 0..255 when it exited; -1 otherwise
    int signal = 0;          // the signal that ended it, if any
    std::string output;      // stdout and stderr interleaved, cut at 64 KiB

    bool ok() const { return started && !timed_out && exit_code == 0; }
    // One line for a status file: "exit 1: Error: adapting config ...", "timed out after 30s", ...
    std::string summary() const;
};

// stdin is /dev/null; argv[0] is looked up in PATH; the child gets a process group of its own so a
// timeout kills everything it started. The environment is inherited (HOME, XDG_* for caddy) unless
// `env` ("NAME=VALUE" entries) is given: then it is the child's whole environment. `cancelled`, asked
// a few times a second, kills the group when it says so.
CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::vector<std::string>* env = nullptr, const std::function<bool()>& cancelled = {});

// How output beyond 64 KiB is cut.
enum class KeptOutput {
    head,  // the first 64 KiB: caddy and reload commands say what is wrong first
    tail,  // the last 64 KiB: a build says why it failed at its end
};

// Waits at most `timeout` for `pid`, the leader of a process group of its own whose stdout and
// stderr are the pipe `out` reads, collecting that output as it comes. At the deadline the group is
// killed and `timed_out` set; when `cancelled` (asked a few times a second) says so, it is killed and
// `cancelled` set; once the leader has exited, whatever else of its group is left is killed too, so
// nothing it started outlives it. Reaps the leader and fills timed_out, cancelled, exit_code, signal
// and output; `started` is the caller's.
void await_group(pid_t pid, int out, std::chrono::milliseconds timeout, KeptOutput kept, CommandResult& result,
                 const std::function<bool()>& cancelled = {});

// A pidfd of `pid`, which poll() sees readable once that process has exited; -1 on kernels before
// 5.3. Through syscall(): Debian 12's <sys/pidfd.h> cannot be included from C++.
int open_pidfd(pid_t pid);

// Starts argv (PATH lookup, no shell) with stdin from /dev/null, stdout and stderr on the given fds,
// in a process group of its own (so a timeout can kill whatever it starts) with default signal
// dispositions and an empty mask, whatever the daemon's threads have blocked. The environment is the
// daemon's, or `env` ("NAME=VALUE" entries) when given; PATH lookup uses the daemon's PATH either
// way. Returns 0 with `pid` set, or the errno of the failed start.
int spawn_in_own_group(const std::vector<std::string>& argv, int stdout_fd, int stderr_fd, pid_t& pid,
                       const std::vector<std::string>* env = nullptr);

// The milliseconds left until `deadline` for poll(), never negative, and at most 2^30 (12 days;
// durations in the config go up to a year): a poll that returns 0 before the deadline must wait
// again. Rounded up: truncated, the last poll would give up to a millisecond before the deadline.
int remaining_ms(std::chrono::steady_clock::time_point deadline);

// "30s" or "500ms", for messages about timeouts.
std::string duration_text(std::chrono::milliseconds d);

// The last non-empty line of `text` without the trailing whitespace, cut at `max` bytes: the line a
// tool like caddy prints its reason on.
std::string last_line(const std::string& text, size_t max = 300);
// The last `count` non-empty lines of `text`, each trimmed, joined by " / ", their last `max` bytes:
// a build's reason often takes more than its last line ("Error: ..." above "exit status 1").
std::string last_lines(const std::string& text, size_t count, size_t max);

}  // namespace sitesfs::hooks
