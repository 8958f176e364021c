#include "tests/integration/live_mount.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;
namespace fsys = std::filesystem;

namespace {

std::string slurp(const fsys::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Answers as a fresh mount: stat works (a stale one says ENOTCONN) and it is another device.
bool answers(const fsys::path& p) {
    struct stat mnt, parent;
    return ::stat(p.c_str(), &mnt) == 0 && ::stat(p.parent_path().c_str(), &parent) == 0 && mnt.st_dev != parent.st_dev;
}

bool is_mounted(const fsys::path& p) {
    std::ifstream in("/proc/self/mountinfo");
    for (std::string line; std::getline(in, line);)
        if (line.find(" " + p.string() + " ") != std::string::npos) return true;
    return false;
}

bool wait_exit(pid_t pid, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

}  // namespace

Result sh(const std::string& script, const fsys::path& cwd) {
    char tmpl[] = "/tmp/sitesfs-sh.XXXXXX";
    const fsys::path io = mkdtemp(tmpl);
    const std::string wrapped = "cd '" + cwd.string() + "' && { " + script + "\n} >'" + (io / "out").string() + "' 2>'" +
                                (io / "err").string() + "' </dev/null";
    const char* argv[] = {"timeout", "-s", "KILL", "60", "/bin/bash", "-c", wrapped.c_str(), nullptr};
    pid_t pid;
    Result r;
    if (posix_spawnp(&pid, "timeout", nullptr, nullptr, const_cast<char**>(argv), environ) == 0) {
        int status = 0;
        waitpid(pid, &status, 0);
        r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    r.out = slurp(io / "out");
    r.err = slurp(io / "err");
    fsys::remove_all(io);
    return r;
}

void MountTest::SetUp() {
    const int fd = ::open("/dev/fuse", O_RDWR);
    if (fd < 0) GTEST_SKIP() << "cannot open /dev/fuse: " << std::strerror(errno);
    ::close(fd);
    char tmpl[] = "/tmp/sitesfs-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    mnt_ = dir_ / "mnt";
    state_ = dir_ / "state";
    daemon_ = start(mnt_);
}

pid_t MountTest::start(const fsys::path& mountpoint, std::vector<std::string> extra) {
    fsys::create_directories(mountpoint);
    std::vector<std::string> args = {SITESFS_BINARY, "-f", "--state-dir", state_.string(), "--allow-local-repos"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(mountpoint.string());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log = (dir_ / ("sitesfs-" + mountpoint.filename().string() + ".log")).string();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, SITESFS_BINARY, &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    EXPECT_EQ(rc, 0);
    mounts_.push_back(mountpoint);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!answers(mountpoint)) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            ADD_FAILURE() << "sitesfs exited during start-up:\n" << slurp(log);
            return -1;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ADD_FAILURE() << "sitesfs did not mount within 10 s:\n" << slurp(log);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pid;
}

void MountTest::stop(pid_t& pid, int sig) {
    if (pid <= 0) return;
    ::kill(pid, sig);
    if (!wait_exit(pid, std::chrono::seconds(5))) {
        ::kill(pid, SIGKILL);
        wait_exit(pid, std::chrono::seconds(5));
    }
    pid = -1;
}

void MountTest::TearDown() {
    if (dir_.empty()) return;
    stop(daemon_);
    for (auto& pid : extra_pids_) stop(pid);
    for (const auto& m : mounts_) {
        for (const char* flags : {"-u", "-uz"}) {
            if (!is_mounted(m)) break;
            sh(std::string("fusermount3 ") + flags + " '" + m.string() + "'");
        }
        if (is_mounted(m)) {
            ADD_FAILURE() << m << " is still mounted; not removing " << dir_;
            return;
        }
    }
    fsys::remove_all(dir_);
}

std::string MountTest::read(const std::string& rel) const { return slurp(mnt_ / rel); }
