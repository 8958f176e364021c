#include "hooks/command.hpp"

#include "common/fd.hpp"
#include "common/text.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

extern char** environ;

namespace sitesfs::hooks {

namespace {

constexpr size_t kMaxOutput = 64 * 1024;

using SteadyClock = std::chrono::steady_clock;

// Appends `data` as `kept` says. The tail is cut back only once it has grown to twice the limit, so
// that a build printing megabytes is not copied again for every read.
void keep_output(std::string& output, std::string_view data, KeptOutput kept) {
    if (kept == KeptOutput::head) {
        output.append(data.substr(0, kMaxOutput - std::min(kMaxOutput, output.size())));
        return;
    }
    output.append(data);
    if (output.size() >= 2 * kMaxOutput) output.erase(0, output.size() - utf8_tail(output, kMaxOutput).size());
}

}  // namespace

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, 1 << 30));
}

std::string duration_text(std::chrono::milliseconds d) {
    const auto ms = d.count();
    return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

namespace {

// The non-empty lines of `text` from its end, at most `count`, each without surrounding whitespace.
std::vector<std::string_view> lines_from_end(std::string_view text, size_t count) {
    std::vector<std::string_view> lines;
    size_t end = text.size();
    while (lines.size() < count) {
        while (end > 0 && ascii::is_blank(text[end - 1])) --end;
        if (end == 0) break;
        const size_t start = text.rfind('\n', end - 1);
        const size_t from = start == std::string_view::npos ? 0 : start + 1;
        lines.push_back(trim(text.substr(from, end - from)));
        if (start == std::string_view::npos) break;
        end = start;
    }
    return lines;
}

}  // namespace

std::string last_line(const std::string& text, size_t max) {
    const auto lines = lines_from_end(text, 1);
    return lines.empty() ? std::string() : std::string(lines.front().substr(0, max));
}

std::string last_lines(const std::string& text, size_t count, size_t max) {
    std::string joined;
    const auto lines = lines_from_end(text, count);
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) joined.append(joined.empty() ? "" : " / ").append(*it);
    return std::string(utf8_tail(joined, max));
}

std::string CommandResult::summary() const {
    if (!started) return "could not run: " + last_line(output);
    std::string head;
    if (timed_out) head = "timed out";
    else if (cancelled) head = "cancelled";
    else if (signal != 0) head = std::string("killed by signal ") + strsignal(signal);
    else head = "exit " + std::to_string(exit_code);
    const std::string why = last_line(output);
    return why.empty() ? head : head + ": " + why;
}

int open_pidfd(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

int spawn_in_own_group(const std::vector<std::string>& argv, int stdout_fd, int stderr_fd, pid_t& pid,
                       const std::vector<std::string>* env) {
    if (argv.empty()) return EINVAL;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, stderr_fd, STDERR_FILENO);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> envp;
    if (env) {
        for (const auto& e : *env) envp.push_back(const_cast<char*>(e.c_str()));
        envp.push_back(nullptr);
    }
    const int err = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), env ? envp.data() : environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return err;
}

CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::vector<std::string>* env, const std::function<bool()>& cancelled) {
    CommandResult result;
    if (argv.empty()) {
        result.output = "no command configured";
        return result;
    }
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
        result.output = std::string("pipe: ") + strerror(errno);
        return result;
    }
    const Fd out_r(out[0]);
    pid_t pid = -1;
    const int err = spawn_in_own_group(argv, out[1], out[1], pid, env);
    close(out[1]);
    if (err != 0) {
        result.output = argv[0] + ": " + strerror(err);
        return result;
    }
    result.started = true;
    await_group(pid, out_r.get(), timeout, KeptOutput::head, result, cancelled);
    if (result.timed_out) result.output += "\n(timed out after " + duration_text(timeout) + ")";
    return result;
}

void await_group(pid_t pid, int out, std::chrono::milliseconds timeout, KeptOutput kept, CommandResult& result,
                 const std::function<bool()>& cancelled) {
    const auto deadline = SteadyClock::now() + timeout;
    // How often `cancelled` is asked: a superseded build stops within this, and asking costs little.
    constexpr std::chrono::milliseconds kCancelCheck{200};
    auto next_check = SteadyClock::now() + kCancelCheck;
    // Readable once the leader has exited: a leader that closed its output but runs on is still
    // waited for, and only until the deadline. Without pidfds (Linux < 5.3) the pipe's end stands
    // for the leader's.
    const Fd leader(open_pidfd(pid));
    bool exited = !leader.valid();
    bool eof = false;
    char buf[4096];
    while (!(eof && exited)) {
        // poll() passes over negative fds: what has ended is no longer watched.
        pollfd fds[2] = {{eof ? -1 : out, POLLIN, 0}, {exited ? -1 : leader.get(), POLLIN, 0}};
        const int wait = remaining_ms(deadline);
        const int ready = poll(fds, 2, cancelled ? std::min(wait, remaining_ms(next_check)) : wait);
        if (ready < 0 && errno == EINTR) continue;
        if (cancelled && !exited && SteadyClock::now() >= next_check) {
            if (cancelled()) {
                result.cancelled = true;
                break;
            }
            next_check = SteadyClock::now() + kCancelCheck;
        }
        // remaining_ms waits 2^30 ms (12 days) at most at a time; a longer timeout waits again.
        if (ready == 0 && remaining_ms(deadline) > 0) continue;
        if (ready <= 0) {
            // A leader that exited while something outside its group held the pipe is not late.
            result.timed_out = ready == 0 && !exited;
            break;
        }
        if (fds[1].revents != 0) {
            exited = true;
            // A grandchild holding the pipe would keep us reading until the deadline.
            kill(-pid, SIGKILL);
        }
        if (fds[0].revents == 0) continue;
        const ssize_t n = read(out, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            eof = true;
            continue;
        }
        keep_output(result.output, {buf, static_cast<size_t>(n)}, kept);
    }
    if (kept == KeptOutput::tail) result.output.erase(0, result.output.size() - utf8_tail(result.output, kMaxOutput).size());
    // The leader is a zombie at most until the waitpid below, so the group id is still its own:
    // whatever of the group is left (all of it at the deadline) goes.
    kill(-pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (result.timed_out || result.cancelled) return;
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
}

}  // namespace sitesfs::hooks
