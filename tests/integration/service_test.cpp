// Running as a system service: the systemd unit, sd_notify (READY, STATUS, WATCHDOG, STOPPING),
// journald-style logs, and mounting by convention (mount -t fuse.sitesfs, as fstab does).
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstring>

#include "tests/integration/mount_fixture.hpp"

namespace sitesfs::it {
namespace {

// A unix datagram socket of our own: a notify socket as systemd gives a Type=notify service, or /dev/log.
class DatagramSocket {
public:
    explicit DatagramSocket(const stdfs::path& path) : path_(path) {
        fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        ok_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    ~DatagramSocket() {
        if (fd_ >= 0) close(fd_);
    }
    bool ok() const { return ok_; }
    // The next message, or "" after `timeout`.
    std::string next(Ms timeout) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return {};
        char buf[4096];
        const ssize_t n = recv(fd_, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    }
    // Messages until one contains `what` (returned), or "" after `timeout`.
    std::string until(const std::string& what, Ms timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            const std::string m = next(std::chrono::duration_cast<Ms>(deadline - std::chrono::steady_clock::now()));
            if (m.find(what) != std::string::npos) return m;
        }
        return {};
    }

private:
    stdfs::path path_;
    int fd_ = -1;
    bool ok_ = false;
};

class Service : public MountTest {
protected:
    void SetUp() override {
        autostart_ = false;
        MountTest::SetUp();
    }
};

TEST_F(Service, TheUnitFilePassesSystemdAnalyzeVerify) {
    // The installed unit names the installed binary; verify wants an executable that exists.
    std::string unit = slurp(SITESFS_UNIT_FILE);
    ASSERT_NE(unit.find("Type=notify"), std::string::npos) << unit;
    // Any of these gives the service its own mount namespace, and the mount would never reach the host.
    for (const char* hides : {"ProtectSystem=", "ReadWritePaths=", "ReadOnlyPaths=", "ProtectHome=", "PrivateTmp=",
                              "PrivateDevices=", "ProtectKernelTunables=", "ProtectKernelModules=", "ProtectKernelLogs=",
                              "ProtectControlGroups=", "PrivateMounts=", "TemporaryFileSystem=", "BindPaths="})
        EXPECT_EQ(unit.find(std::string("\n") + hides), std::string::npos) << hides << " in the unit";
    const std::string exec = "ExecStart=";
    const size_t at = unit.find(exec);
    ASSERT_NE(at, std::string::npos);
    const size_t end = unit.find(' ', at);
    unit.replace(at + exec.size(), end - at - exec.size(), sitesfs());
    spit(tmp() / "sitesfs.service", unit);
    // --man=no: the man page is checked on its own, and is not installed here.
    const Run r = run({"systemd-analyze", "verify", "--man=no", (tmp() / "sitesfs.service").string()});
    EXPECT_EQ(r.code, 0) << describe(r);
    EXPECT_EQ(r.err, "") << describe(r);
}

TEST_F(Service, TheManPageRendersWithoutWarnings) {
    const std::string page = std::string(SITESFS_SOURCE_DIR) + "/docs/sitesfs.8";
    const Run groff = run({"groff", "-man", "-ww", "-z", page});
    EXPECT_EQ(groff.code, 0) << describe(groff);
    EXPECT_EQ(groff.out + groff.err, "") << describe(groff);
    const Run man = run({"man", "--warnings", "-l", page}, {.env = {"MANWIDTH=80", "MANPAGER=cat", "PAGER=cat"}});
    EXPECT_EQ(man.code, 0) << describe(man);
    EXPECT_EQ(man.err, "") << describe(man);
    // Every option of --help is in it.
    const Run help = run({sitesfs(), "--help"});
    for (const char* option : {"--state-dir", "--config", "--allow-local-repos", "--no-reconcile", "--log-level", "--import"}) {
        EXPECT_NE(help.out.find(option), std::string::npos) << option;
        EXPECT_NE(man.out.find(option), std::string::npos) << option << " is not in sitesfs(8)";
    }
}

TEST_F(Service, ReadyOnlyOnceTheMountAnswersThenStoppingAndACleanUnmount) {
    REQUIRE_FUSE();
    DatagramSocket notify(tmp() / "notify.sock");
    ASSERT_TRUE(notify.ok()) << std::strerror(errno);
    const stdfs::path log = tmp() / "notified.log";
    const pid_t pid = spawn_logged({sitesfs(), "-f", "--no-reconcile", "--state-dir", state().string(), mnt().string()},
                                   log, {"NOTIFY_SOCKET=" + (tmp() / "notify.sock").string(), "WATCHDOG_USEC=200000"});
    ASSERT_GT(pid, 0);
    track_pid(pid);
    const std::string ready = notify.until("READY=1", 10s);
    ASSERT_FALSE(ready.empty()) << "no READY=1; log:\n" << slurp(log);
    // At the moment READY=1 arrives the mount is there and answers.
    EXPECT_TRUE(is_mounted(mnt()));
    EXPECT_TRUE(mount_answers(mnt()));
    EXPECT_NE(ready.find("STATUS=0 sites at " + mnt().string()), std::string::npos) << ready;

    ASSERT_TRUE(shell("mkdir blog && echo blog.example.com > blog/domain"));
    const std::string ping = notify.until("WATCHDOG=1", 5s);
    EXPECT_NE(ping.find("STATUS=1 sites at " + mnt().string() + ": 1 incomplete"), std::string::npos) << ping;

    ASSERT_EQ(kill(pid, SIGTERM), 0);
    EXPECT_FALSE(notify.until("STOPPING=1", 10s).empty()) << slurp(log);
    const auto status = wait_child(pid, 10s);
    ASSERT_TRUE(status.has_value()) << "sitesfs did not exit after SIGTERM";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << wait_status_text(*status);
    EXPECT_FALSE(is_mounted(mnt()));
}

TEST_F(Service, UnderJournaldLogLinesCarryAPriorityAndNoTimestamp) {
    REQUIRE_FUSE();
    daemon_env_ = {"JOURNAL_STREAM=8:12345"};
    ASSERT_NO_FATAL_FAILURE(start());
    ASSERT_TRUE(shell("mkdir blog && echo 'bad..com' > blog/domain", {.code = 1, .err_has = "Invalid argument"}));
    const std::string log = daemon_log();
    ASSERT_TRUE(stop().has_value());
    const auto lines = split_lines(log);
    ASSERT_FALSE(lines.empty());
    bool serving = false;
    for (const auto& l : lines) {
        if (l.empty()) continue;
        // "<N>" then the message: journald stamps the time itself.
        EXPECT_TRUE(l.size() > 3 && l[0] == '<' && l[1] >= '0' && l[1] <= '7' && l[2] == '>') << l;
        EXPECT_FALSE(l.size() > 7 && std::isdigit(static_cast<unsigned char>(l[3])) && l[7] == '-') << "a timestamp: " << l;
        serving |= l.starts_with("<6>serving ");
    }
    EXPECT_TRUE(serving) << log;
}

TEST_F(Service, WaitAnswersIncompleteAtOnceAndTimesOutWhenNothingDeploys) {
    REQUIRE_FUSE();
    spit(tmp() / "sitesfs.toml", "[filesystem]\nwait_timeout = 0.5\n");
    ASSERT_NO_FATAL_FAILURE(start({"--config", (tmp() / "sitesfs.toml").string()}));  // --no-reconcile
    ASSERT_TRUE(shell("mkdir blog && echo blog.example.com > blog/domain"));
    EXPECT_TRUE(shell("cat blog/wait", {.out = "incomplete\n"}));
    EXPECT_TRUE(shell("ls blog | grep -c wait", {.code = 1, .out = "0\n"})) << "wait is not listed";
    ASSERT_TRUE(shell("echo https://github.com/user/blog > blog/repo"));
    const auto started = std::chrono::steady_clock::now();
    EXPECT_TRUE(shell("cat blog/wait", {.code = 1, .err_has = "Connection timed out"}));
    EXPECT_GE(std::chrono::steady_clock::now() - started, 400ms);
    EXPECT_TRUE(mount_answers(mnt())) << "a parked read holds no thread";
}

// What `mount -t fuse.sitesfs` and an /etc/fstab line do: mount(8) runs mount.fuse3, which runs
// `sitesfs SOURCE MOUNTPOINT -o OPTIONS` through /bin/sh without -f. mount(8) drops PATH for its
// helpers, so the shell's default path must find sitesfs, as it does once installed: the test
// puts a link to the built binary in /usr/local/sbin for its duration.
class MountHelper : public Service {
protected:
    void SetUp() override {
        Service::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        std::error_code ec;
        if (stdfs::is_symlink(kLink, ec) && stdfs::read_symlink(kLink, ec) == stdfs::path(sitesfs())) {
            linked_ = true;  // left by an interrupted run of this test
        } else {
            ASSERT_FALSE(stdfs::exists(kLink, ec)) << kLink << " exists and is not this build's sitesfs; remove it to run this test";
            stdfs::create_directories(kLink.parent_path(), ec);
            stdfs::create_symlink(sitesfs(), kLink, ec);
            ASSERT_FALSE(ec) << "cannot link " << kLink << ": " << ec.message();
            linked_ = true;
        }
    }
    void TearDown() override {
        Service::TearDown();
        if (linked_) stdfs::remove(kLink);
    }
    Run mount_with(const stdfs::path& mp, const std::string& options) {
        return run({"mount", "-t", "fuse.sitesfs", "sitesfs", mp.string(), "-o", options});
    }
    void unmount(const stdfs::path& mp) {
        const auto daemons = find_processes({"sitesfs", mp.string()});
        EXPECT_EQ(run({"umount", mp.string()}).code, 0);
        for (pid_t p : daemons) EXPECT_TRUE(eventually([&] { return !process_alive(p); }, 10s)) << "sitesfs " << p << " still runs";
    }

    inline static const stdfs::path kLink = "/usr/local/sbin/sitesfs";
    bool linked_ = false;
};

TEST_F(MountHelper, ReadWriteAndReadOnlyMountsByType) {
    REQUIRE_FUSE();
    const Run rw = mount_with(mnt(), "state_dir=" + state().string() + ",no_reconcile,nosuid,nodev,_netdev,nofail");
    ASSERT_EQ(rw.code, 0) << describe(rw);
    for (pid_t p : find_processes({"sitesfs", mnt().string()})) track_pid(p);
    EXPECT_TRUE(mount_answers(mnt()));
    EXPECT_TRUE(shell("mkdir blog && echo blog.example.com > blog/domain && cat blog/domain", {.out = "blog.example.com\n"}));

    const stdfs::path ro = tmp() / "ro";
    stdfs::create_directories(ro);
    const Run r = mount_with(ro, "ro,state_dir=" + state().string());
    ASSERT_EQ(r.code, 0) << describe(r);
    for (pid_t p : find_processes({"sitesfs", ro.string()})) track_pid(p);
    EXPECT_TRUE(check("cat", sh_in(ro, "cat blog/domain"), {.out = "blog.example.com\n"}));
    EXPECT_TRUE(check("write", sh_in(ro, "echo x.example.com > blog/domain"), {.code = 1, .err_has = "Read-only file system"}));
    EXPECT_NE(slurp("/proc/self/mountinfo").find(ro.string() + " ro,"), std::string::npos);

    unmount(ro);
    unmount(mnt());
    EXPECT_FALSE(is_mounted(mnt()));
}

TEST_F(MountHelper, ADaemonStartedByMountLogsToSyslog) {
    REQUIRE_FUSE();
    // Stand in for the syslog daemon: /dev/log is where syslog(3) writes.
    std::error_code ec;
    if (stdfs::exists("/dev/log", ec)) SITESFS_CANNOT_RUN() << "a syslog daemon owns /dev/log here; this test listens there itself";
    DatagramSocket syslog("/dev/log");  // the same kind of socket: AF_UNIX datagrams
    ASSERT_TRUE(syslog.ok()) << std::strerror(errno);
    struct Unlink {
        ~Unlink() { ::unlink("/dev/log"); }
    } unlink_after;
    const Run m = mount_with(mnt(), "state_dir=" + state().string() + ",no_reconcile");
    ASSERT_EQ(m.code, 0) << describe(m);
    for (pid_t p : find_processes({"sitesfs", mnt().string()})) track_pid(p);
    EXPECT_FALSE(syslog.until("serving 0 sites at " + mnt().string(), 5s).empty());
    // After the mount answers stderr is gone; syslog still hears a refused write.
    ASSERT_TRUE(shell("mkdir blog && echo 'bad..com' > blog/domain", {.code = 1, .err_has = "Invalid argument"}));
    const std::string refused = syslog.until("bad..com", 5s);
    EXPECT_NE(refused.find("sitesfs["), std::string::npos) << refused;
    unmount(mnt());
}

TEST_F(MountHelper, AnUnknownOptionFailsTheMountWithItsName) {
    REQUIRE_FUSE();
    const Run r = mount_with(mnt(), "state_dir=" + state().string() + ",bogus");
    EXPECT_NE(r.code, 0);
    EXPECT_NE((r.out + r.err).find("unknown mount option 'bogus'"), std::string::npos) << describe(r);
    EXPECT_FALSE(is_mounted(mnt()));
}

}  // namespace
}  // namespace sitesfs::it
