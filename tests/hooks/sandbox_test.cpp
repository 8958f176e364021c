// run_sandboxed with the real bubblewrap, run as root for builds that run as uid 65533, a uid of no
// user's. Each test has its own scratch dir under /tmp and checks at its end that no process of its
// build is left.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "hooks/sandbox.hpp"
#include "tests/integration/mount_fixture.hpp"
#include "tests/support/cannot_run.hpp"

namespace sitesfs::hooks {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;
using it::slurp;
using it::spit;
using it::split_lines;

// Not nobody: RLIMIT_NPROC counts every process of the uid on the host, and the integration tests
// build as nobody meanwhile.
constexpr uid_t kBuildUid = 65533;
constexpr const char* kBwrap = "/usr/bin/bwrap";

std::vector<std::string> sh(const std::string& script) { return {"/bin/sh", "-c", script}; }

class Sandbox : public ::testing::Test {
protected:
    void SetUp() override {
        if (access(kBwrap, X_OK) != 0) SITESFS_CANNOT_RUN() << "bubblewrap not installed (scripts/install-deps)";
        if (geteuid() != 0) SITESFS_CANNOT_RUN() << "builds run as uid 65533: the tests must run as root";
        char tmpl[] = "/tmp/sitesfs-sandbox-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
        tmp_ = tmpl;
        // mkdtemp's 0700 would keep the build's user from reaching WORK.
        stdfs::permissions(tmp_, stdfs::perms::others_exec, stdfs::perm_options::add);
        work_ = tmp_ / "work";
        stdfs::create_directory(work_);
        ASSERT_NO_FATAL_FAILURE(give_to_build_user(work_));
    }

    void TearDown() override {
        if (tmp_.empty()) return;
        EXPECT_EQ(processes_in(tmp_), "") << "the build left processes behind";
        std::error_code ec;
        stdfs::remove_all(tmp_, ec);
        if (ec) ADD_FAILURE() << "cannot remove " << tmp_ << ": " << ec.message();
    }

    // The caller of run_sandboxed chowns the scratch dir to the build's user; so do the tests.
    static void give_to_build_user(const stdfs::path& p) {
        ASSERT_EQ(lchown(p.c_str(), kBuildUid, kBuildUid), 0) << p << ": " << std::strerror(errno);
        if (!stdfs::is_directory(p)) return;
        for (const auto& e : stdfs::recursive_directory_iterator(p))
            ASSERT_EQ(lchown(e.path().c_str(), kBuildUid, kBuildUid), 0) << e.path() << ": " << std::strerror(errno);
    }

    // "PID CMDLINE" of each process whose cwd is under `dir`: a build's processes all start in WORK.
    static std::string processes_in(const stdfs::path& dir) {
        std::string found;
        std::error_code ec;
        for (const auto& e : stdfs::directory_iterator("/proc", ec)) {
            const std::string pid = e.path().filename();
            if (!std::all_of(pid.begin(), pid.end(), ::isdigit)) continue;
            const stdfs::path cwd = stdfs::read_symlink(e.path() / "cwd", ec);
            if (ec || !cwd.string().starts_with(dir.string())) continue;
            std::string cmd = slurp(e.path() / "cmdline");
            std::replace(cmd.begin(), cmd.end(), '\0', ' ');
            found += pid + " " + cmd + "\n";
        }
        return found;
    }

    SandboxSpec spec(std::vector<std::string> argv) const {
        SandboxSpec s;
        s.argv = std::move(argv);
        s.work = work_;
        s.uid = kBuildUid;
        s.gid = kBuildUid;
        return s;
    }

    // Whether a lock on `file` can be had now: the build's processes that held it are gone.
    static bool lock_is_free(const stdfs::path& file) {
        const Fd fd(open(file.c_str(), O_RDONLY | O_CLOEXEC));
        return fd.valid() && flock(fd.get(), LOCK_EX | LOCK_NB) == 0;
    }

    stdfs::path tmp_, work_;
};

TEST_F(Sandbox, BuildWritesItsOutputAsTheBuildUser) {
    // Neither the daemon's umask nor its supplementary groups reach the build.
    std::vector<gid_t> groups(static_cast<size_t>(getgroups(0, nullptr)));
    ASSERT_EQ(getgroups(static_cast<int>(groups.size()), groups.data()), static_cast<int>(groups.size()));
    const gid_t daemons[] = {0, 4};
    ASSERT_EQ(setgroups(2, daemons), 0) << std::strerror(errno);
    const mode_t old_umask = umask(077);
    const auto r = run_sandboxed(spec(sh("mkdir out && echo '<h1>hi</h1>' > out/index.html && id -u && id -G && pwd")));
    umask(old_umask);
    ASSERT_EQ(setgroups(groups.size(), groups.data()), 0) << std::strerror(errno);
    ASSERT_TRUE(r.ok()) << r.summary() << "\n" << r.output;
    EXPECT_EQ(r.output, "65533\n65533\n" + work_.string() + "\n");
    EXPECT_EQ(slurp(work_ / "out/index.html"), "<h1>hi</h1>\n");
    struct stat st {};
    ASSERT_EQ(stat((work_ / "out/index.html").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, kBuildUid);
    EXPECT_EQ(st.st_gid, kBuildUid);
    EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST_F(Sandbox, FailingBuildShowsItsLastLines) {
    const auto r = run_sandboxed(spec(sh("echo building; echo 'Error: layout \"index\" not found' >&2; exit 3")));
    EXPECT_TRUE(r.started);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.summary(), "exit 3: building / Error: layout \"index\" not found");
    // Three lines at most: the end of a long log says why.
    EXPECT_EQ(run_sandboxed(spec(sh("seq 1 100; exit 4"))).summary(), "exit 4: 98 / 99 / 100");
}

TEST_F(Sandbox, CommandMissingInsideIsNamed) {
    const auto r = run_sandboxed(spec({"no-such-builder", "--minify"}));
    EXPECT_TRUE(r.started);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.summary().find("no-such-builder: No such file or directory"), std::string::npos) << r.summary();
}

// The background sleep holds a lock on WORK/held through fd 9: the lock is free again only once no
// process of the build is left.
TEST_F(Sandbox, PastItsTimeLimitEverythingItStartedIsKilled) {
    auto s = spec(sh("exec 9>held && flock 9 && { sleep 1000 & } && echo holding; sleep 30"));
    s.limits.time = 1s;
    const auto start = std::chrono::steady_clock::now();
    const auto r = run_sandboxed(s);
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(r.timed_out) << r.summary();
    EXPECT_EQ(r.summary(), "timed out after 1s: holding");
    EXPECT_LT(took, 5s);
    EXPECT_TRUE(lock_is_free(work_ / "held"));
}

// A build superseded by a newer change is stopped, with everything it started, long before its
// time limit.
TEST_F(Sandbox, CancelledItStopsAtOnceWithEverythingItStarted) {
    auto s = spec(sh("exec 9>held && flock 9 && { sleep 1000 & } && echo holding; sleep 30"));
    const auto start = std::chrono::steady_clock::now();
    s.cancelled = [start] { return std::chrono::steady_clock::now() - start > 500ms; };
    const auto r = run_sandboxed(s);
    EXPECT_TRUE(r.cancelled);
    EXPECT_FALSE(r.timed_out);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.summary(), "cancelled: holding");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    EXPECT_TRUE(lock_is_free(work_ / "held"));
}

TEST_F(Sandbox, WhatTheBuildLeftRunningEndsWithIt) {
    const auto start = std::chrono::steady_clock::now();
    const auto r = run_sandboxed(spec(sh("exec 9>held && flock 9 && { sleep 1000 & } && echo holding")));
    EXPECT_TRUE(r.ok()) << r.summary();
    EXPECT_EQ(r.output, "holding\n");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    EXPECT_TRUE(lock_is_free(work_ / "held"));
}

TEST_F(Sandbox, PastItsMemoryLimitItFailsAndSaysSo) {
    const std::vector<std::string> allocate = {"python3", "-c", "b = bytearray(512 << 20); print('allocated')"};
    auto s = spec(allocate);
    s.limits.memory_bytes = 64ull << 20;
    const auto r = run_sandboxed(s);
    EXPECT_TRUE(r.started);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(r.out_of_memory) << r.output;
    EXPECT_TRUE(r.summary().starts_with("exit 1: ")) << r.summary();
    EXPECT_TRUE(r.summary().ends_with(" / MemoryError (memory limit 64 MiB)")) << r.summary();

    // The same build within the default limit: it was the limit.
    const auto within = run_sandboxed(spec(allocate));
    EXPECT_TRUE(within.ok()) << within.summary();
    EXPECT_EQ(within.output, "allocated\n");
}

TEST_F(Sandbox, ProcessLimitStopsForks) {
    auto s = spec({"python3", "-c",
                   "import os, time\n"
                   "n = 0\n"
                   "try:\n"
                   "    for _ in range(40):\n"
                   "        if os.fork() == 0:\n"
                   "            time.sleep(60)\n"
                   "            os._exit(0)\n"
                   "        n += 1\n"
                   "except OSError as e:\n"
                   "    print(e)\n"
                   "print('forked', n)\n"});
    s.limits.max_processes = 12;
    const auto r = run_sandboxed(s);
    ASSERT_TRUE(r.ok()) << r.summary() << "\n" << r.output;
    EXPECT_NE(r.output.find("Resource temporarily unavailable"), std::string::npos) << r.output;
    ASSERT_FALSE(split_lines(r.output).empty());
    const std::string last = split_lines(r.output).back();
    ASSERT_TRUE(last.starts_with("forked ")) << r.output;
    EXPECT_LT(std::stoi(last.substr(7)), 12) << r.output;
}

TEST_F(Sandbox, FileSizeLimitStopsTheWrite) {
    auto s = spec({"bash", "-c", "head -c 2M /dev/zero > big"});
    s.limits.max_file_bytes = 1ull << 20;
    const auto r = run_sandboxed(s);
    EXPECT_EQ(r.signal, SIGXFSZ) << r.summary();
    EXPECT_EQ(stdfs::file_size(work_ / "big"), 1u << 20);
}

// A listener of the test's on loopback: the host's network, which the build reaches only when
// allowed.
TEST_F(Sandbox, NetworkOnlyWhenAllowed) {
    const Fd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(listener.valid()) << std::strerror(errno);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    ASSERT_EQ(listen(listener.get(), 8), 0) << std::strerror(errno);
    socklen_t len = sizeof addr;
    ASSERT_EQ(getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
    const std::string port = std::to_string(ntohs(addr.sin_port));
    const std::vector<std::string> connect = {"bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/" + port + " && echo connected"};

    const auto offline = run_sandboxed(spec(connect));
    EXPECT_TRUE(offline.started);
    EXPECT_NE(offline.exit_code, 0) << offline.output;
    EXPECT_EQ(offline.output.find("connected\n"), std::string::npos) << offline.output;

    auto s = spec(connect);
    s.network = true;
    const auto online = run_sandboxed(s);
    EXPECT_TRUE(online.ok()) << online.summary();
    EXPECT_EQ(online.output, "connected\n");
}

TEST_F(Sandbox, WritesOutsideWorkFail) {
    // Writable by the build's uid on the host: only the sandbox keeps the build out of it.
    const stdfs::path outside = tmp_ / "outside";
    stdfs::create_directory(outside);
    ASSERT_NO_FATAL_FAILURE(give_to_build_user(outside));
    const std::vector<std::string> targets = {"/usr/x", "/etc/x", "/x", "/dev/x", (outside / "x").string()};
    std::string script;
    for (const auto& t : targets) script += "if touch '" + t + "' 2>/dev/null; then echo written; else echo refused; fi; ";
    const auto r = run_sandboxed(spec(sh(script)));
    ASSERT_TRUE(r.ok()) << r.summary();
    EXPECT_EQ(split_lines(r.output), std::vector<std::string>(targets.size(), "refused")) << r.output;
    for (const auto& t : targets) EXPECT_FALSE(stdfs::exists(t)) << t;
}

TEST_F(Sandbox, TmpIsPrivate) {
    const std::string name = "sitesfs-sandbox-private-" + std::to_string(getpid());
    stdfs::create_directory(tmp_ / "outside");
    spit(tmp_ / "outside/secret", "host\n");
    const auto r = run_sandboxed(spec(sh("echo build > /tmp/" + name + " && cat /tmp/" + name + " && ls /tmp; cat " +
                                         (tmp_ / "outside/secret").string() + " 2>/dev/null || echo unreadable")));
    ASSERT_TRUE(r.ok()) << r.summary();
    // The private /tmp holds the file and the path down to WORK, nothing of the host's /tmp.
    auto got = split_lines(r.output);
    std::sort(got.begin(), got.end());
    std::vector<std::string> want = {"build", name, tmp_.filename().string(), "unreadable"};
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want) << r.output;
    EXPECT_FALSE(stdfs::exists("/tmp/" + name));
}

TEST_F(Sandbox, EnvironmentIsExactlyWhatWasGiven) {
    setenv("SITESFS_SANDBOX_LEAK", "the daemon's", 1);
    auto s = spec({"env"});
    s.env = {{"PATH", "/usr/bin:/bin"}, {"SITE", "blog"}, {"LANG", "C.UTF-8"}};
    const auto r = run_sandboxed(s);
    unsetenv("SITESFS_SANDBOX_LEAK");
    ASSERT_TRUE(r.ok()) << r.summary();
    auto got = split_lines(r.output);
    std::sort(got.begin(), got.end());
    // HOME is added when missing; bwrap sets PWD.
    EXPECT_EQ(got, (std::vector<std::string>{"HOME=" + work_.string(), "LANG=C.UTF-8", "PATH=/usr/bin:/bin",
                                             "PWD=" + work_.string(), "SITE=blog"}));
}

// The daemon's files, sockets and FUSE fd stay with the daemon, even those it opened without
// O_CLOEXEC; and bwrap keeps none of its own open for the build.
TEST_F(Sandbox, OnlyStdioReachesTheBuild) {
    const Fd inherited(open("/etc/hostname", O_RDONLY));
    ASSERT_TRUE(inherited.valid()) << std::strerror(errno);
    const auto r = run_sandboxed(spec({"ls", "/proc/self/fd"}));
    ASSERT_TRUE(r.ok()) << r.summary();
    // 3 is the directory ls reads.
    EXPECT_EQ(r.output, "0\n1\n2\n3\n");
}

TEST_F(Sandbox, OutputKeepsItsLast64KiB) {
    std::string all;
    for (int i = 1; i <= 200000; ++i) all += std::to_string(i) + "\n";
    ASSERT_GT(all.size(), 1u << 20);
    const auto r = run_sandboxed(spec({"seq", "1", "200000"}));
    ASSERT_TRUE(r.ok()) << r.summary();
    EXPECT_EQ(r.output.size(), 64u * 1024);
    EXPECT_EQ(r.output, all.substr(all.size() - 64 * 1024));
    EXPECT_EQ(r.summary(), "exit 0: 199998 / 199999 / 200000");
}

TEST_F(Sandbox, MissingBubblewrapIsNamed) {
    auto s = spec({"hugo"});
    s.bwrap = tmp_ / "bwrap";
    const auto r = run_sandboxed(s);
    EXPECT_FALSE(r.started);
    EXPECT_EQ(r.summary(), "could not run: bubblewrap is not installed (" + s.bwrap.string() + ")");
}

TEST_F(Sandbox, RefusesToRunAsRoot) {
    auto s = spec({"hugo"});
    s.uid = 0;
    const auto r = run_sandboxed(s);
    EXPECT_FALSE(r.started);
    EXPECT_EQ(r.summary(), "could not run: refusing to run a build as root (uid 0, gid 65533): configure an unprivileged user");
}

// A WORK of the daemon's (or /, or /usr) would be bound writable: it must be the build user's.
TEST_F(Sandbox, RefusesAWorkDirTheBuildUserDoesNotOwn) {
    ASSERT_EQ(chown(work_.c_str(), 0, 0), 0);
    const auto r = run_sandboxed(spec({"hugo"}));
    EXPECT_FALSE(r.started);
    EXPECT_EQ(r.summary(), "could not run: the build dir " + work_.string() +
                               " is owned by uid 0, not by the build's uid 65533 (the caller chowns it)");
}

// A real builder under the default limits: Go reserves far more address space than it uses, and
// RLIMIT_AS counts the reservations.
TEST_F(Sandbox, HugoBuildsASiteUnderTheDefaultLimits) {
    if (access("/usr/bin/hugo", X_OK) != 0) SITESFS_CANNOT_RUN() << "hugo not installed (scripts/install-deps)";
    const stdfs::path src = work_ / "src", out = work_ / "out";
    stdfs::create_directories(src / "content");
    stdfs::create_directories(src / "layouts");
    spit(src / "config.toml", "baseURL = 'https://blog.example.com/'\ntitle = 'Sandbox'\n"
                                    "disableKinds = ['taxonomy', 'term', 'RSS', 'sitemap']\n");
    spit(src / "content/_index.md", "---\ntitle: Home\n---\nHello from the sandbox.\n");
    spit(src / "layouts/index.html", "<h1>{{ .Title }}</h1>{{ .Content }}\n");
    ASSERT_NO_FATAL_FAILURE(give_to_build_user(src));
    const auto r = run_sandboxed(spec({"hugo", "--source", src.string(), "--destination", out.string()}));
    ASSERT_TRUE(r.ok()) << r.summary() << "\n" << r.output;
    EXPECT_EQ(slurp(out / "index.html"), "<h1>Home</h1><p>Hello from the sandbox.</p>\n\n");
}

}  // namespace
}  // namespace sitesfs::hooks
