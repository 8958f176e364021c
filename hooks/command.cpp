#include "hooks/command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
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

}  // namespace

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, 1 << 30));
}

std::string duration_text(std::chrono::milliseconds d) {
    const auto ms = d.count();
    return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

std::string last_line(const std::string& text, size_t max) {
    size_t end = text.size();
    while (end > 0) {
        while (end > 0 && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
        const size_t start = text.rfind('\n', end == 0 ? 0 : end - 1);
        const size_t from = start == std::string::npos ? 0 : start + 1;
        if (end > from) return text.substr(from, std::min(end - from, max));
        if (start == std::string::npos) break;
        end = start;
    }
    return {};
}

std::string CommandResult::summary() const {
    if (!started) return "could not run: " + last_line(output);
    std::string head;
    if (timed_out) head = "timed out";
    else if (signal != 0) head = std::string("killed by signal ") + strsignal(signal);
    else head = "exit " + std::to_string(exit_code);
    const std::string why = last_line(output);
    return why.empty() ? head : head + ": " + why;
}

int spawn_in_own_group(const std::vector<std::string>& argv, int stdout_fd, int stderr_fd, pid_t& pid) {
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
    const int err = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return err;
}

CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
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
    pid_t pid = -1;
    const int err = spawn_in_own_group(argv, out[1], out[1], pid);
    close(out[1]);
    if (err != 0) {
        close(out[0]);
        result.output = argv[0] + ": " + strerror(err);
        return result;
    }
    result.started = true;

    const auto deadline = SteadyClock::now() + timeout;
    char buf[4096];
    for (;;) {
        pollfd p{out[0], POLLIN, 0};
        const int ready = poll(&p, 1, remaining_ms(deadline));
        if (ready < 0 && errno == EINTR) continue;
        // remaining_ms waits 2^30 ms (12 days) at most at a time; a longer timeout waits again.
        if (ready == 0 && remaining_ms(deadline) > 0) continue;
        if (ready == 0) {
            result.timed_out = true;
            kill(-pid, SIGKILL);
            break;
        }
        const ssize_t n = read(out[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (result.output.size() < kMaxOutput)
            result.output.append(buf, std::min(static_cast<size_t>(n), kMaxOutput - result.output.size()));
    }
    close(out[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (result.timed_out) {
        result.output += "\n(timed out after " + duration_text(timeout) + ")";
    } else if (WIFEXITED(status)) {
        result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        result.signal = WTERMSIG(status);
    }
    // A child that exited but left a grandchild holding the pipe would have kept us reading until
    // the deadline; killing the group makes sure nothing it started outlives it.
    kill(-pid, SIGKILL);
    return result;
}

}  // namespace sitesfs::hooks
