#include "mount/daemon.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

namespace sitesfs::mount {

namespace {

// The parent's side: "0\n" means ready, "CODE\nMESSAGE" a failure; EOF a crash.
[[noreturn]] void wait_for_child(int from_child) {
    std::string msg;
    char buf[512];
    for (ssize_t n; (n = ::read(from_child, buf, sizeof buf)) != 0;) {
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        msg.append(buf, static_cast<size_t>(n));
    }
    if (msg.empty()) {
        std::cerr << "sitesfs: the daemon died during startup; run with -f to see why\n";
        std::_Exit(1);
    }
    const size_t nl = msg.find('\n');
    const int code = std::atoi(msg.substr(0, nl).c_str());
    if (code != 0 && nl != std::string::npos) std::cerr << "sitesfs: " << msg.substr(nl + 1) << "\n";
    std::_Exit(code);
}

}  // namespace

Startup::Startup(bool foreground) {
    if (foreground) return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        std::perror("sitesfs: pipe");
        std::_Exit(1);
    }
    const pid_t pid = fork();
    if (pid < 0) {
        std::perror("sitesfs: fork");
        std::_Exit(1);
    }
    if (pid > 0) {
        ::close(fds[1]);
        wait_for_child(fds[0]);
    }
    ::close(fds[0]);
    to_parent_ = fds[1];
    setsid();
}

void Startup::ready() {
    if (to_parent_ < 0) return;
    const int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO) ::close(null);
    }
    [[maybe_unused]] const auto n = ::write(to_parent_, "0\n", 2);
    ::close(to_parent_);
    to_parent_ = -1;
    [[maybe_unused]] const int rc = chdir("/");
}

int Startup::fail(int code, const std::string& message) {
    if (to_parent_ < 0) {
        std::cerr << "sitesfs: " << message << "\n";
        return code;
    }
    const std::string msg = std::to_string(code) + "\n" + message;
    [[maybe_unused]] const auto n = ::write(to_parent_, msg.data(), msg.size());
    ::close(to_parent_);
    to_parent_ = -1;
    return code;
}

}  // namespace sitesfs::mount
