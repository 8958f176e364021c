// Monitoring reads the same tree through a second, read-only instance; other users read through
// -o allow_other and can change nothing.
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mount_fixture.hpp"

namespace sitesfs::it {
namespace {

// Every kind of change a process can try on a mount (MNT holds site blog), each with the errno it
// got (0: it worked). Run in a child process that drops to `uid`/`gid` first when they are not
// root's, so the kernel judges it as that user.
std::vector<std::pair<std::string, int>> try_every_change(const stdfs::path& mnt, uid_t uid = 0, gid_t gid = 0) {
    const auto at = [&](const std::string& rel) { return (mnt / rel).string(); };
    const auto err = [](int rc) { return rc == 0 ? 0 : errno; };
    const auto open_close = [](const std::string& p, int flags) {
        const int fd = ::open(p.c_str(), flags | O_CLOEXEC, 0644);
        if (fd < 0) return errno;
        ::close(fd);
        return 0;
    };
    const timespec times[2] = {{1, 0}, {1, 0}};
    const std::vector<std::pair<std::string, std::function<int()>>> changes{
        {"write repo", [&] { return open_close(at("blog/repo"), O_WRONLY); }},
        {"write domain", [&] { return open_close(at("blog/domain"), O_WRONLY); }},
        {"write branch", [&] { return open_close(at("blog/branch"), O_WRONLY); }},
        {"write path", [&] { return open_close(at("blog/path"), O_WRONLY); }},
        {"write deploy_key_ref", [&] { return open_close(at("blog/deploy_key_ref"), O_WRONLY); }},
        {"write commit", [&] { return open_close(at("blog/commit"), O_WRONLY); }},
        {"write status", [&] { return open_close(at("blog/status"), O_WRONLY); }},
        {"write .sites.toml", [&] { return open_close(at(".sites.toml"), O_WRONLY); }},
        {"open O_TRUNC", [&] { return open_close(at("blog/domain"), O_RDONLY | O_TRUNC); }},
        {"open O_APPEND", [&] { return open_close(at("blog/domain"), O_WRONLY | O_APPEND); }},
        {"truncate", [&] { return err(::truncate(at("blog/domain").c_str(), 0)); }},
        {"mkdir site", [&] { return err(::mkdir(at("news").c_str(), 0755)); }},
        {"rmdir site", [&] { return err(::rmdir(at("blog").c_str())); }},
        {"unlink field", [&] { return err(::unlink(at("blog/path").c_str())); }},
        {"create temp file", [&] { return open_close(at("blog/.domain.swp"), O_WRONLY | O_CREAT | O_EXCL); }},
        {"mknod", [&] { return err(::mknod(at("blog/4913").c_str(), S_IFREG | 0644, 0)); }},
        {"rename field", [&] { return err(::rename(at("blog/domain").c_str(), at("blog/domain~").c_str())); }},
        {"symlink", [&] { return err(::symlink("domain", at("blog/l").c_str())); }},
        {"link", [&] { return err(::link(at("blog/domain").c_str(), at("blog/hard").c_str())); }},
        {"chmod", [&] { return err(::chmod(at("blog/domain").c_str(), 0666)); }},
        {"chown to self", [&] { return err(::chown(at("blog/domain").c_str(), geteuid(), getegid())); }},
        {"utimes now", [&] { return err(::utimensat(AT_FDCWD, at("blog/domain").c_str(), nullptr, 0)); }},
        {"utimes to a time", [&] { return err(::utimensat(AT_FDCWD, at("blog/domain").c_str(), times, 0)); }},
        {"setxattr", [&] { return err(::setxattr(at("blog/domain").c_str(), "user.test", "x", 1, 0)); }},
    };
    int fds[2];
    if (pipe(fds) != 0) return {{"pipe", errno}};
    const pid_t child = fork();
    if (child == 0) {
        ::close(fds[0]);
        if (uid != 0 && (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0))
            _exit(2);
        std::string out;
        for (const auto& [name, change] : changes) out += name + "=" + std::to_string(change()) + "\n";
        (void)!::write(fds[1], out.data(), out.size());
        _exit(0);
    }
    ::close(fds[1]);
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
    ::close(fds[0]);
    int status = 0;
    waitpid(child, &status, 0);
    std::vector<std::pair<std::string, int>> results;
    for (const auto& line : split_lines(text)) {
        const auto eq = line.rfind('=');
        results.emplace_back(line.substr(0, eq), std::stoi(line.substr(eq + 1)));
    }
    if (results.size() != changes.size()) results.emplace_back("the child (" + wait_status_text(status) + ")", -1);
    return results;
}

// "change: errno" for each result whose errno is not `expected` (or `exception` for the names in it).
std::string unexpected(const std::vector<std::pair<std::string, int>>& results, int expected,
                       const std::map<std::string, int>& exceptions = {}) {
    std::string out;
    for (const auto& [name, e] : results) {
        const auto it = exceptions.find(name);
        const int want = it == exceptions.end() ? expected : it->second;
        if (e != want) out += name + ": " + (e ? std::strerror(e) : "it worked") + ", expected " + std::strerror(want) + "\n";
    }
    return out;
}

class ReadOnly : public TwoSitesTest {
protected:
    void SetUp() override {
        TwoSitesTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        ASSERT_TRUE(shell("echo main > blog/branch && echo abc1234 > shop/commit"));
    }

    stdfs::path ro() const { return tmp() / "ro"; }
    void start_ro() {
        ro_ = start_instance("ro", {"-o", "ro"});
        ASSERT_NE(ro_, nullptr);
    }
    Run in_ro(const std::string& script) const { return sh_in(ro(), script); }
    ::testing::AssertionResult ro_shell(const std::string& script, const Expect& e = {}) const {
        return check(script, in_ro(script), e);
    }
    std::string ro_read(const std::string& rel) const { return slurp(ro() / rel); }

    Daemon* ro_ = nullptr;
};

TEST_F(ReadOnly, ListsTheSameSitesAndValues) {
    ASSERT_NO_FATAL_FAILURE(start_ro());
    EXPECT_TRUE(ro_shell("ls", {.out = "blog\nshop\n"}));
    EXPECT_TRUE(ro_shell("ls -a blog | wc -l", {.out = std::to_string(2 + kSiteFiles.size()) + "\n"}));
    for (const char* site : {"blog", "shop"})
        for (const auto& f : kSiteFiles) {
            SCOPED_TRACE(std::string(site) + "/" + f);
            EXPECT_EQ(ro_read(std::string(site) + "/" + f), read(std::string(site) + "/" + f));
        }
    EXPECT_EQ(ro_read("blog/domain"), "blog.example.com\n");
    EXPECT_EQ(ro_read(".sites.toml"), read(".sites.toml"));
    EXPECT_TRUE(ro_shell("grep -H state */status", {.out = "blog/status:state: pending\nshop/status:state: pending\n"}));
    // The kernel knows it is read-only.
    EXPECT_TRUE(ro_shell("findmnt -n -o OPTIONS --target . | tr , '\\n' | grep -x ro", {.out = "ro\n"}));
}

TEST_F(ReadOnly, EveryChangeIsErofs) {
    ASSERT_NO_FATAL_FAILURE(start_ro());
    const std::string rofs = "Read-only file system";
    EXPECT_TRUE(ro_shell("echo x > blog/domain", {.code = 1, .err_has = rofs}));
    EXPECT_TRUE(ro_shell("echo x >> blog/domain", {.code = 1, .err_has = rofs}));
    EXPECT_TRUE(ro_shell("mkdir x", {.code = 1, .err_has = rofs}));
    EXPECT_TRUE(ro_shell("rmdir blog", {.code = 1, .err_has = rofs}));
    EXPECT_TRUE(ro_shell("touch blog/t", {.code = 1, .err_has = rofs}));
    EXPECT_TRUE(ro_shell("rm -r shop", {.code = 1, .err_has = rofs}));
    EXPECT_TRUE(ro_shell("truncate -s0 blog/domain", {.code = 1, .err_has = rofs}));
    EXPECT_TRUE(ro_shell("sed -i s/blog/www/ blog/domain", {.code = kNonZero, .err_has = rofs}));
    EXPECT_TRUE(ro_shell("mv blog/domain blog/d", {.code = 1, .err_has = rofs}));

    const auto before = snapshot_tree(state());
    const auto results = try_every_change(ro());
    EXPECT_EQ(results.size(), 24u);
    EXPECT_EQ(unexpected(results, EROFS), "");
    EXPECT_EQ(snapshot_tree(state()), before);

    // Nothing changed, seen from either mount.
    EXPECT_TRUE(ro_shell("ls", {.out = "blog\nshop\n"}));
    EXPECT_EQ(ro_read("blog/domain"), "blog.example.com\n");
    EXPECT_EQ(read("blog/domain"), "blog.example.com\n");
    EXPECT_TRUE(shell("ls", {.out = "blog\nshop\n"}));
    EXPECT_TRUE(only_fields("blog"));
}

TEST_F(ReadOnly, FollowsTheReadWriteMountWithinASecond) {
    ASSERT_NO_FATAL_FAILURE(start_ro());
    // Read first, so the read-only mount's kernel cache holds the old value and listing.
    ASSERT_EQ(ro_read("blog/domain"), "blog.example.com\n");
    ASSERT_TRUE(ro_shell("ls", {.out = "blog\nshop\n"}));
    struct stat st;
    ASSERT_EQ(::stat((ro() / "blog/domain").c_str(), &st), 0);

    ASSERT_TRUE(shell("echo www.example.com > blog/domain"));
    EXPECT_TRUE(eventually([&] { return ro_read("blog/domain") == "www.example.com\n"; }, 1s))
        << "after 1 s the read-only mount still shows " << ro_read("blog/domain");
    EXPECT_TRUE(eventually(
        [&] { return ::stat((ro() / "blog/domain").c_str(), &st) == 0 && st.st_size == 16; }, 1s))
        << "size " << st.st_size;

    ASSERT_TRUE(shell("mkdir news"));
    EXPECT_TRUE(eventually([&] { return in_ro("ls").out == "blog\nnews\nshop\n"; }, 1s)) << in_ro("ls").out;
    ASSERT_TRUE(shell("rmdir shop"));
    EXPECT_TRUE(eventually([&] { return in_ro("ls").out == "blog\nnews\n"; }, 1s)) << in_ro("ls").out;
    EXPECT_TRUE(eventually([&] { return !stdfs::exists(ro() / "shop"); }, 1s));

    // A refused write shows in status there too.
    ASSERT_TRUE(shell("echo bad..com > blog/domain", {.code = 1}));
    EXPECT_TRUE(eventually([&] { return ro_read("blog/status").find("bad..com") != std::string::npos; }, 1s))
        << ro_read("blog/status");
    EXPECT_TRUE(eventually([&] { return ro_read(".sites.toml") == read(".sites.toml"); }, 1s));
}

// A read-only mount lets the kernel open files by itself (no OPEN or RELEASE reaches sitesfs):
// files opened that way read, stat, fsync and close like any other, and follow changes.
TEST_F(ReadOnly, FilesTheKernelOpensReadStatAndFollowChanges) {
    ASSERT_NO_FATAL_FAILURE(start_ro());
    const int fd = ::open((ro() / "blog/domain").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    auto held = [&] {
        char buf[128] = {};
        const ssize_t n = ::pread(fd, buf, sizeof buf, 0);
        return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
    };
    auto held_size = [&] {
        struct stat st{};
        return ::fstat(fd, &st) == 0 ? st.st_size : -1;
    };
    EXPECT_EQ(held(), "blog.example.com\n");
    EXPECT_EQ(held_size(), 17);
    EXPECT_EQ(::fsync(fd), 0) << std::strerror(errno);
    EXPECT_TRUE(ro_shell("cat */* > /dev/null && cat blog/domain", {.out = "blog.example.com\n"}));

    ASSERT_TRUE(shell("echo a-much-longer-name.example.com > blog/domain"));
    EXPECT_TRUE(eventually([&] { return held() == "a-much-longer-name.example.com\n"; }, 1s)) << held();
    EXPECT_EQ(held_size(), 31);
    EXPECT_EQ(ro_read("blog/domain"), "a-much-longer-name.example.com\n");
    ASSERT_TRUE(shell("echo a.io > blog/domain"));
    EXPECT_TRUE(eventually([&] { return ro_read("blog/domain") == "a.io\n"; }, 1s)) << ro_read("blog/domain");
    EXPECT_EQ(held(), "a.io\n");
    EXPECT_EQ(held_size(), 5);
    EXPECT_EQ(::close(fd), 0) << std::strerror(errno);
    EXPECT_TRUE(ro_shell("grep -c . */domain", {.out = "blog/domain:1\nshop/domain:1\n"}));
}

// `wait` and .metrics need a handle per open (a generation to wait for; direct I/O so that text
// which changes with every read is served whole), which files the kernel opens itself do not
// have: they belong to the read-write mount.
TEST_F(ReadOnly, HasNoWaitAndNoMetrics) {
    ASSERT_NO_FATAL_FAILURE(start_ro());
    EXPECT_TRUE(ro_shell("cat blog/wait", {.code = 1, .err_has = "No such file or directory"}));
    EXPECT_TRUE(ro_shell("cat .metrics", {.code = 1, .err_has = "No such file or directory"}));
    EXPECT_FALSE(stdfs::exists(ro() / "blog" / "wait"));
    EXPECT_TRUE(shell("grep -c '^sitesfs_sites{' .metrics", {.out = "6\n"}));
    EXPECT_TRUE(shell("mkdir bare && timeout 10 cat bare/wait", {.out = "incomplete\n"}));
    EXPECT_TRUE(eventually([&] { return stdfs::exists(ro() / "bare"); }, 1s));
    EXPECT_FALSE(stdfs::exists(ro() / "bare" / "wait"));
}

TEST_F(ReadOnly, NeverWritesTheStateDir) {
    const auto before = snapshot_tree(state());
    ASSERT_FALSE(before.empty());
    ASSERT_NO_FATAL_FAILURE(start_ro());
    EXPECT_TRUE(ro_shell("cat */* .sites.toml > /dev/null && grep -r . . > /dev/null && ls -laR > /dev/null"));
    EXPECT_TRUE(ro_shell("echo x > blog/domain; mkdir x; rmdir blog; touch blog/t; true"));
    EXPECT_EQ(snapshot_tree(state()), before) << "while the read-only instance runs";
    ASSERT_TRUE(stop_instance(ro_).has_value());
    EXPECT_EQ(snapshot_tree(state()), before) << "after the read-only instance ran";
}

TEST_F(ReadOnly, ItStartsAndStopsWithoutDisturbingTheReadWriteInstance) {
    ASSERT_NO_FATAL_FAILURE(start_ro());
    ASSERT_TRUE(stop_instance(ro_).has_value());
    EXPECT_TRUE(shell("echo www.example.com > blog/domain && cat blog/domain", {.out = "www.example.com\n"}));
}

class OtherUsers : public MountTest {
protected:
    static constexpr const char* kUser = "sitesfs-test";

    void SetUp() override {
        MountTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        if (bash("command -v useradd && command -v runuser").code != 0)
            SITESFS_CANNOT_RUN() << "useradd or runuser is not available, cannot test another user";
        if (bash(std::string("getent passwd ") + kUser).code != 0) {
            // Kept afterwards: a test running in parallel (ctest -j) may be using it. 9: it exists.
            const Run r = run({"useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", kUser});
            ASSERT_TRUE(r.code == 0 || r.code == 9) << describe(r);
        }
        // The user must reach the mountpoint.
        stdfs::permissions(tmp(), stdfs::perms::owner_all | stdfs::perms::group_read | stdfs::perms::group_exec |
                                      stdfs::perms::others_read | stdfs::perms::others_exec);
        ASSERT_NO_FATAL_FAILURE(make_site("blog", "blog.example.com"));
    }

    // bash -c SCRIPT as the other user, in the mount (SCRIPT holds no single quote).
    ::testing::AssertionResult as_user(const std::string& script, const Expect& e = {}) const {
        const std::string cmd = "runuser -u " + std::string(kUser) + " -- bash -c '" + script + "'";
        return check(cmd, sh(cmd), e);
    }
};

TEST_F(OtherUsers, WithoutAllowOtherTheyCannotEvenLook) {
    EXPECT_TRUE(as_user("cat blog/domain", {.code = 1, .err_has = "Permission denied"}));
}

TEST_F(OtherUsers, WithAllowOtherTheyReadButCannotChange) {
    // Root mounts with allow_other without user_allow_other in /etc/fuse.conf (only fusermount3,
    // for non-root mounts, reads it), so the test leaves that file alone.
    ASSERT_TRUE(stop().has_value());
    ASSERT_NO_FATAL_FAILURE(start({"-o", "allow_other"}));
    const std::string denied = "Permission denied";
    EXPECT_TRUE(as_user("cat blog/domain", {.out = "blog.example.com\n", .err = ""}));
    EXPECT_TRUE(shell("runuser -u sitesfs-test -- cat blog/domain", {.out = "blog.example.com\n"}));
    EXPECT_TRUE(as_user("ls; cat blog/status | grep ^state", {.out = "blog\nstate: pending\n"}));
    EXPECT_TRUE(as_user("echo x > blog/domain", {.code = 1, .err_has = denied}));
    EXPECT_TRUE(as_user("echo x.example.com >> blog/domain", {.code = 1, .err_has = denied}));
    EXPECT_TRUE(as_user("truncate -s0 blog/domain", {.code = 1, .err_has = denied}));
    EXPECT_TRUE(as_user("mkdir x", {.code = 1, .err_has = denied}));
    EXPECT_TRUE(as_user("rmdir blog", {.code = 1, .err_has = denied}));
    EXPECT_TRUE(as_user("touch blog/t", {.code = 1, .err_has = denied}));
    EXPECT_TRUE(as_user("sed -i s/blog/www/ blog/domain", {.code = kNonZero, .err_has = denied}));
    EXPECT_EQ(read("blog/domain"), "blog.example.com\n");
    EXPECT_TRUE(shell("ls", {.out = "blog\n"}));
    EXPECT_TRUE(only_fields("blog"));
    // Root still writes.
    EXPECT_TRUE(shell("echo www.example.com > blog/domain && cat blog/domain", {.out = "www.example.com\n"}));
}

// Every kind of change, as plain syscalls, from another user on an allow_other mount. The kernel
// decides (default_permissions) before sitesfs hears of it: EACCES where write permission is
// missing; EPERM for chmod, chown and setting explicit times, which POSIX reserves to the owner
// whatever the modes (EACCES would be wrong there), and for a hard link (protected_hardlinks). Every file still reads as it does for root.
TEST_F(OtherUsers, EveryKindOfChangeIsRefusedAndEveryFileReads) {
    ASSERT_TRUE(stop().has_value());
    ASSERT_NO_FATAL_FAILURE(start({"-o", "allow_other"}));
    ASSERT_TRUE(shell("echo main > blog/branch && echo docs > blog/path"));
    const passwd* pw = getpwnam(kUser);
    ASSERT_NE(pw, nullptr);
    const auto state_before = snapshot_tree(state());
    const auto mount_before = snapshot_tree(mnt());

    const auto results = try_every_change(mnt(), pw->pw_uid, pw->pw_gid);
    EXPECT_EQ(results.size(), 24u);
    // fs.protected_hardlinks (on by default) refuses a link to a file one cannot write with EPERM
    // before the directory's write permission is checked.
    const int link_errno = slurp("/proc/sys/fs/protected_hardlinks") == "1\n" ? EPERM : EACCES;
    EXPECT_EQ(unexpected(results, EACCES,
                         {{"chmod", EPERM}, {"chown to self", EPERM}, {"utimes to a time", EPERM}, {"link", link_errno}}),
              "");

    const std::string every_file = "cat .sites.toml blog/repo blog/domain blog/branch blog/path blog/deploy_key_ref "
                                   "blog/commit blog/status blog/log";
    const Run as_root = sh(every_file);
    ASSERT_EQ(as_root.code, 0) << describe(as_root);
    EXPECT_TRUE(as_user(every_file, {.out = as_root.out, .err = ""}));
    EXPECT_EQ(snapshot_tree(state()), state_before);
    EXPECT_EQ(snapshot_tree(mnt()), mount_before);
}

TEST_F(OtherUsers, AnUnprivilegedUserRunsAReadOnlyMonitoringMount) {
    const std::vector<std::string> as_monitor = {"setpriv", "--reuid=sitesfs-test", "--regid=sitesfs-test", "--init-groups"};
    // Debian's udev rule makes /dev/fuse 0666; a machine without udev (a container, this CI)
    // leaves it root-only, so the test opens it as udev would and puts the mode back after.
    struct stat fuse_dev{};
    ASSERT_EQ(::stat("/dev/fuse", &fuse_dev), 0) << std::strerror(errno);
    struct ModeBack {
        mode_t mode;
        ~ModeBack() { ::chmod("/dev/fuse", mode); }
    } mode_back{fuse_dev.st_mode & 07777};
    ASSERT_EQ(::chmod("/dev/fuse", 0666), 0) << std::strerror(errno);
    auto probe = as_monitor;
    probe.insert(probe.end(), {"test", "-r", "/dev/fuse", "-a", "-w", "/dev/fuse"});
    if (run(probe).code != 0)
        SITESFS_CANNOT_RUN() << "sitesfs-test cannot open /dev/fuse even at mode 0666, so no unprivileged FUSE "
                                "mount is possible here";
    // What docs/store.md tells an operator to do for a monitoring group.
    ASSERT_TRUE(shell("chgrp -R $(id -gn sitesfs-test) '" + state().string() + "' && chmod 2750 '" + state().string() +
                      "' '" + (state() / "sites").string() + "'"));
    const stdfs::path mon = tmp() / "mon";
    stdfs::create_directories(mon);
    ASSERT_TRUE(shell("chown sitesfs-test '" + mon.string() + "'"));
    auto argv = as_monitor;
    argv.insert(argv.end(), {sitesfs(), "-f", "-o", "ro", "--state-dir", state().string(), mon.string()});
    const pid_t pid = spawn_logged(argv, tmp() / "monitor.log");
    ASSERT_GT(pid, 0);
    track_pid(pid);
    // Without allow_other the mount refuses every other user, root included: ask as the monitor,
    // from outside the read-write mount.
    auto monitor = [&](const std::string& script, const Expect& e) {
        const std::string cmd = "runuser -u sitesfs-test -- bash -c '" + script + "'";
        return check(cmd, sh_in(tmp(), cmd), e);
    };
    ASSERT_TRUE(eventually([&] { return bool(monitor("cat mon/blog/domain", {.out = "blog.example.com\n"})); }, 10s))
        << slurp(tmp() / "monitor.log");
    EXPECT_TRUE(monitor("echo x.example.com > mon/blog/domain", {.code = 1, .err_has = "Read-only file system"}));
    // A site created later (a new file, group inherited through the setgid dir) shows up too.
    ASSERT_NO_FATAL_FAILURE(make_site("shop", "shop.example.com", "user/shop"));
    EXPECT_TRUE(eventually([&] { return bool(monitor("cat mon/shop/domain", {.out = "shop.example.com\n"})); }, 1s))
        << slurp(tmp() / "monitor.log");
    EXPECT_EQ(stdfs::status(state() / "sites" / "shop.toml").permissions() & stdfs::perms::others_all, stdfs::perms::none);
}

}  // namespace
}  // namespace sitesfs::it
