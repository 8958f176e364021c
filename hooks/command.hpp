// Runs a program the operator configured (caddy, a reload command): argv directly, never a shell,
// with a deadline, its output collected for the error message a person reads.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace sitesfs::hooks {

struct CommandResult {
    bool started = false;    // false: argv[0] could not be executed (output says why)
    bool timed_out = false;  // killed (with its process group) at the deadline
    int exit_code = -1;      // 0..255 when it exited; -1 otherwise
    int signal = 0;          // the signal that ended it, if any
    std::string output;      // stdout and stderr interleaved, cut at 64 KiB

    bool ok() const { return started && !timed_out && exit_code == 0; }
    // One line for a status file: "exit 1: Error: adapting config ...", "timed out after 30s", ...
    std::string summary() const;
};

// stdin is /dev/null; argv[0] is looked up in PATH; the child gets a process group of its own so a
// timeout kills everything it started. The environment is inherited (HOME, XDG_* for caddy).
CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// Starts argv (PATH lookup, no shell) with stdin from /dev/null, stdout and stderr on the given fds,
// in a process group of its own (so a timeout can kill whatever it starts) with default signal
// dispositions and an empty mask, whatever the daemon's threads have blocked. Returns 0 with `pid`
// set, or the errno of the failed start.
int spawn_in_own_group(const std::vector<std::string>& argv, int stdout_fd, int stderr_fd, pid_t& pid);

// The milliseconds left until `deadline` for poll(), never negative, and at most 2^30 (12 days;
// durations in the config go up to a year): a poll that returns 0 before the deadline must wait
// again. Rounded up: truncated, the last poll would give up to a millisecond before the deadline.
int remaining_ms(std::chrono::steady_clock::time_point deadline);

// "30s" or "500ms", for messages about timeouts.
std::string duration_text(std::chrono::milliseconds d);

// The last non-empty line of `text` without the trailing whitespace, cut at `max` bytes: the line a
// tool like caddy prints its reason on.
std::string last_line(const std::string& text, size_t max = 300);

}  // namespace sitesfs::hooks
