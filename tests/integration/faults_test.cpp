// Injected faults, end to end through a real mount, a real Caddy and real repositories. Each test
// checks the same three things: the failing syscall or deploy says why (the exact errno; `status`
// names the step and the cause), the previous release keeps serving through Caddy with `current`
// still pointing at it, and once the fault is gone the site converges again. docs/reliability.md
// ("Injected faults") has the table, including the faults covered by deploy_test.cpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "tests/integration/deploy_fixture.hpp"

namespace sitesfs::it {
namespace {

class Faults : public DeployTest {
protected:
    void TearDown() override {
        stop();  // sitesfs first: nothing may write to a small disk while it goes
        for (const auto& dir : small_disks_) {
            if (is_mounted(dir) && run({"umount", dir.string()}, {.timeout = 10s}).code != 0)
                run({"umount", "-l", dir.string()}, {.timeout = 10s});
        }
        DeployTest::TearDown();
    }

    // A tmpfs of `size` (mount(8) syntax) over `dir`, unmounted in TearDown. Skips (saying why)
    // where this machine cannot mount one.
    void mount_small_disk(const stdfs::path& dir, const std::string& size) {
        stdfs::create_directories(dir);
        const Run r = run({"mount", "-t", "tmpfs", "-o", "size=" + size + ",mode=0755", "tmpfs", dir.string()});
        if (r.code != 0) SITESFS_CANNOT_RUN() << "cannot mount a tmpfs (needs CAP_SYS_ADMIN): " << describe(r);
        small_disks_.push_back(dir);
    }

    // Writes zeros to `file` until its file system says ENOSPC.
    static void fill(const stdfs::path& file) {
        const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ASSERT_GE(fd, 0) << file << ": " << std::strerror(errno);
        const std::string zeros(64 * 1024, '\0');
        int err = 0;
        while (err == 0) {
            if (::write(fd, zeros.data(), zeros.size()) < 0) err = errno;
        }
        ::close(fd);
        ASSERT_EQ(err, ENOSPC) << std::strerror(err);
    }

    // What a visitor of `host` gets is `content` from `sha`, and `site`'s data dir and `commit`
    // say the same.
    ::testing::AssertionResult serves(const std::string& site, const std::string& host, const std::string& content,
                                      const std::string& sha) const {
        std::string problems;
        if (const std::string b = body(host); b != content) problems += "\n  body: " + b;
        if (const std::string h = header(host, "X-Deployed-Commit"); h != sha) problems += "\n  X-Deployed-Commit: " + h;
        std::error_code ec;
        if (const auto link = stdfs::read_symlink(data() / site / "current", ec); link != stdfs::path("releases") / sha)
            problems += "\n  current -> " + link.string();
        if (const std::string c = read(site + "/commit"); c != sha + "\n") problems += "\n  commit: " + c;
        if (problems.empty()) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << host << " should serve " << sha << ":" << problems;
    }

    bool state_is(const std::string& site, const std::string& state) const {
        return eventually([&] { return status_line(site, "state") == state; }, 30s, 100ms);
    }

    // The fault gone, `sha` (pushed, or deployed again) goes live: served, reported, no error left.
    void expect_goes_live(const std::string& site, const std::string& host, const std::string& content,
                          const std::string& sha) const {
        EXPECT_TRUE(eventually([&] { return header(host, "X-Deployed-Commit") == sha; }, 30s, 100ms)) << daemon_log();
        EXPECT_TRUE(state_is(site, "live"));
        EXPECT_TRUE(serves(site, host, content, sha));
        EXPECT_EQ(status_line(site, "error"), "");
    }

    std::vector<stdfs::path> small_disks_;
};

// ---------------------------------------------------------------------------------------------
// The state dir on a disk of its own (1 MiB).

class SmallStateDir : public Faults {
protected:
    void before_start() override { mount_small_disk(state(), "1m"); }
};

TEST_F(SmallStateDir, AFullDiskFailsTheWriteWithENOSPCAndTheOldValueStays) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n") << daemon_log();
    const std::string before = slurp(state() / "sites" / "blog.toml");
    ASSERT_NO_FATAL_FAILURE(fill(state() / "filler"));
    // An editor saving an unchanged value: nothing is written, so a full disk is no reason to fail.
    EXPECT_EQ(write_errno("blog/repo", repo_->url() + "\n"), 0);

    // A full state dir fails the write() itself, so bash prints it (it does not print close()
    // errors); the save at close() would refuse too.
    EXPECT_TRUE(shell("echo other.test > blog/domain", {.code = 1, .err_has = "No space left on device"}));
    EXPECT_EQ(write_errno("blog/domain", "other.test\n"), ENOSPC);
    EXPECT_EQ(read("blog/domain"), "blog.test\n");
    EXPECT_EQ(slurp(state() / "sites" / "blog.toml"), before);
    const std::string error = status_line("blog", "error");
    EXPECT_EQ(error.rfind("domain: could not save site 'blog' to " + (state() / "sites" / "blog.toml").string(), 0), 0u)
        << error;
    EXPECT_NE(error.find("No space left on device"), std::string::npos) << error;
    EXPECT_EQ(status_line("blog", "state"), "live");
    EXPECT_TRUE(serves("blog", "blog.test", "v1\n", v1));
    EXPECT_TRUE(shell("ls -A " + state().string() + "/sites", {.out = "blog.toml\n"})) << "no temp file left";

    // The poll deploys a push meanwhile (the data dir has room); `commit` and `status` must still
    // say what is served, even though the outcome cannot be saved yet.
    const std::string v2 = repo_->commit({{"index.html", "v2\n"}});
    EXPECT_TRUE(eventually([&] { return header("blog.test", "X-Deployed-Commit") == v2; }, 30s, 100ms)) << daemon_log();
    EXPECT_TRUE(eventually([&] { return read("blog/commit") == v2 + "\n"; }, 10s, 100ms)) << status_of("blog");
    EXPECT_TRUE(serves("blog", "blog.test", "v2\n", v2));

    stdfs::remove(state() / "filler");
    EXPECT_EQ(write_errno("blog/domain", "other.test\n"), 0);
    EXPECT_EQ(wait("blog"), "live " + v2 + "\n") << daemon_log();
    EXPECT_TRUE(serves("blog", "other.test", "v2\n", v2));
    EXPECT_EQ(status_line("blog", "error"), "");
    EXPECT_NE(slurp(state() / "sites" / "blog.toml").find(v2), std::string::npos) << "saved once there is room";
}

TEST_F(SmallStateDir, AReadOnlyDiskFailsWritesWithEROFSAndReadsStillWork) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n") << daemon_log();
    const auto before = snapshot_tree(state());
    const Run ro = run({"mount", "-o", "remount,ro", state().string()});
    ASSERT_EQ(ro.code, 0) << describe(ro);

    EXPECT_TRUE(shell("echo other.test > blog/domain", {.code = 1, .err_has = "Read-only file system"}));
    EXPECT_EQ(write_errno("blog/domain", "other.test\n"), EROFS);
    EXPECT_EQ(::mkdir((mnt() / "shop").c_str(), 0755) == 0 ? 0 : errno, EROFS);
    EXPECT_TRUE(shell("rmdir blog", {.code = 1, .err_has = "Read-only file system"}));
    EXPECT_EQ(snapshot_tree(state()), before);
    EXPECT_TRUE(shell("ls", {.out = "blog\n"}));
    EXPECT_EQ(read("blog/domain"), "blog.test\n");
    const std::string error = status_line("blog", "error");
    EXPECT_NE(error.find("Read-only file system"), std::string::npos) << error;
    EXPECT_TRUE(serves("blog", "blog.test", "v1\n", v1));

    const Run rw = run({"mount", "-o", "remount,rw", state().string()});
    ASSERT_EQ(rw.code, 0) << describe(rw);
    EXPECT_EQ(write_errno("blog/domain", "other.test\n"), 0);
    EXPECT_EQ(wait("blog"), "live " + v1 + "\n") << daemon_log();
    EXPECT_TRUE(serves("blog", "other.test", "v1\n", v1));
    EXPECT_EQ(status_line("blog", "error"), "");
}

// ---------------------------------------------------------------------------------------------
// The proxy and the way to it. Deploy.AFailedReloadPutsTheOldConfigBackAndSaysWhy checks the
// message and the rollback of a failed reload; what it leaves out is the way back.

TEST_F(Faults, AfterAFailedReloadTheNextPushGoesLive) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n");
    ASSERT_NO_FATAL_FAILURE(start_systemd("fail"));
    repo_->commit({{"index.html", "v2\n"}});
    ASSERT_TRUE(state_is("blog", "failed")) << daemon_log();
    EXPECT_EQ(status_line("blog", "error").rfind("reload: systemd reload of caddy.service: job failed", 0), 0u);
    EXPECT_TRUE(serves("blog", "blog.test", "v1\n", v1));

    ASSERT_NO_FATAL_FAILURE(start_systemd("normal"));
    const std::string v3 = repo_->commit({{"index.html", "v3\n"}});
    expect_goes_live("blog", "blog.test", "v3\n", v3);
}

// With Caddy stopped nothing serves at all; what the test can hold sitesfs to is that the failed
// deploy is rolled back, so that the Caddy that comes back serves the previous release, and that
// the poll's retry (a reload failure is the host's, not the commit's) then puts the push live.
TEST_F(Faults, CaddyNotRunningFailsTheReloadAndTheReturningCaddyServesThePreviousRelease) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n");
    const std::string config = slurp(caddy_->sites_file());
    caddy_->stop();
    const std::string v2 = repo_->commit({{"index.html", "v2\n"}});
    ASSERT_TRUE(state_is("blog", "failed")) << daemon_log();
    const std::string error = status_line("blog", "error");
    EXPECT_EQ(error.rfind("reload: systemd reload of caddy.service: job failed", 0), 0u) << error;
    // Putting the previous file back cannot reload a stopped Caddy either, but a refused reload
    // changed nothing: the Caddy that comes back loads the previous file.
    EXPECT_TRUE(error.ends_with("; the previous config file is back and still in force (a refused reload leaves the "
                                "running config as it was)")) << error;
    EXPECT_EQ(read("blog/commit"), v1 + "\n");
    EXPECT_EQ(stdfs::read_symlink(data() / "blog" / "current"), stdfs::path("releases") / v1);
    EXPECT_EQ(slurp(caddy_->sites_file()), config);

    std::string why;
    ASSERT_TRUE(caddy_->start(&why)) << why;
    EXPECT_TRUE(serves("blog", "blog.test", "v1\n", v1));
    // No write, no push, no restart: the retry after the backoff (poll interval 1 s, doubling).
    // Not `wait`: it answers at once with the failure, which is settled for this generation.
    expect_goes_live("blog", "blog.test", "v2\n", v2);
}

TEST_F(Faults, DBusUnavailableFailsTheReloadNamingTheBusAndThePreviousReleaseServes) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n");
    systemd_->stop();
    bus_->stop();
    const std::string v2 = repo_->commit({{"index.html", "v2\n"}});
    ASSERT_TRUE(state_is("blog", "failed")) << daemon_log();
    const std::string error = status_line("blog", "error");
    EXPECT_EQ(error.rfind("reload: systemd reload of caddy.service: cannot reach the system bus at " + bus_->address(), 0), 0u)
        << error;
    EXPECT_TRUE(serves("blog", "blog.test", "v1\n", v1));

    std::string why;
    ASSERT_TRUE(bus_->start(&why)) << why;
    ASSERT_NO_FATAL_FAILURE(start_systemd("normal"));
    // The bus back, the poll's retry deploys the same push again without a write.
    expect_goes_live("blog", "blog.test", "v2\n", v2);
}

// A pin is not followed, so nothing but the backoff brings it back after a reload outage: the
// same pinned commit is deployed again once reloads work, without anyone writing anything.
TEST_F(Faults, APinnedCommitWhoseReloadFailedIsRetriedWhenReloadsWorkAgain) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n");
    ASSERT_NO_FATAL_FAILURE(start_systemd("fail"));
    const std::string v2 = repo_->commit({{"index.html", "v2\n"}});
    ASSERT_TRUE(shell("echo " + v2 + " > blog/commit"));
    const std::string outcome = wait("blog");
    EXPECT_EQ(outcome.rfind("failed " + v1 + " reload: ", 0), 0u) << outcome;
    // status says when the next try is: an RFC 3339 time.
    EXPECT_EQ(status_line("blog", "retry").size(), 20u) << status_of("blog");
    EXPECT_TRUE(serves("blog", "blog.test", "v1\n", v1));

    ASSERT_NO_FATAL_FAILURE(start_systemd("normal"));
    expect_goes_live("blog", "blog.test", "v2\n", v2);
    EXPECT_EQ(status_line("blog", "desired"), "commit " + v2);
    EXPECT_EQ(status_line("blog", "retry"), "");
    const std::string m = read(".metrics");
    EXPECT_EQ(m.find("sitesfs_deploy_retries_total{step=\"reload\"} 0\n"), std::string::npos) << m;
}

// ---------------------------------------------------------------------------------------------
// The remote.

TEST_F(Faults, AnUnreachableRemoteFailsTheFetchNamingTheURLAndThePollRetries) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n");
    const stdfs::path away = repo_->bare().string() + ".away";
    stdfs::rename(repo_->bare(), away);
    ASSERT_TRUE(shell("echo main > blog/branch"));
    const std::string outcome = wait("blog");
    EXPECT_EQ(outcome.rfind("failed " + v1 + " fetch: ", 0), 0u) << outcome;
    const std::string error = status_line("blog", "error");
    EXPECT_EQ(error.rfind("fetch: ", 0), 0u) << error;
    EXPECT_NE(error.find(repo_->url()), std::string::npos) << error;
    EXPECT_TRUE(serves("blog", "blog.test", "v1\n", v1));

    // A fetch that failed before it knew a commit is tried again after its backoff (1 s here).
    stdfs::rename(away, repo_->bare());
    EXPECT_TRUE(state_is("blog", "live")) << daemon_log();
    EXPECT_EQ(status_line("blog", "desired"), "branch main");
    EXPECT_EQ(status_line("blog", "error"), "");
    EXPECT_TRUE(serves("blog", "blog.test", "v1\n", v1));
}

// A remote that stays away costs one run per backoff period, not one per poll tick: at a 1 s poll,
// runs come after 1, 2, 4, 8 s... so a 9 s window holds at most 4 retries where every tick would
// have made 9. The window is read from the deploy log's own count, not from a timer's precision.
TEST_F(Faults, AFetchThatKeepsFailingIsTriedOnTheDoublingBackoffNotEveryTick) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n");
    const stdfs::path away = repo_->bare().string() + ".away";
    stdfs::rename(repo_->bare(), away);
    ASSERT_TRUE(shell("echo main > blog/branch"));
    ASSERT_EQ(wait("blog").rfind("failed " + v1 + " fetch: ", 0), 0u);
    const int first = deploy_log_lines("blog");
    EXPECT_EQ(status_line("blog", "retry").size(), 20u) << status_of("blog");
    std::this_thread::sleep_for(9s);
    const int retries = deploy_log_lines("blog") - first;
    EXPECT_GE(retries, 2) << "the backoff still retries:\n" << slurp(deploy_log());
    EXPECT_LE(retries, 4) << slurp(deploy_log());
    const std::string m = read(".metrics");
    const std::string counter = "sitesfs_deploy_retries_total{step=\"fetch\"} ";
    const size_t at = m.find(counter);
    ASSERT_NE(at, std::string::npos) << m;
    EXPECT_GE(std::stoi(m.substr(at + counter.size())), retries) << m;
    EXPECT_TRUE(serves("blog", "blog.test", "v1\n", v1));
    stdfs::rename(away, repo_->bare());
}

// The common case: nobody writes, the remote goes away between two polls. The site keeps
// serving and stays live, and `status` says why it is not following its branch until a poll
// gets through again.
TEST_F(Faults, ARemoteThatAPollCannotReachIsNamedInStatusWhileTheSiteServes) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n");
    const stdfs::path away = repo_->bare().string() + ".away";
    stdfs::rename(repo_->bare(), away);
    EXPECT_TRUE(eventually([&] { return status_line("blog", "error").starts_with("poll: "); }, 30s, 100ms)) << daemon_log();
    const std::string error = status_line("blog", "error");
    EXPECT_NE(error.find(repo_->url()), std::string::npos) << error;
    EXPECT_EQ(status_line("blog", "state"), "live");
    EXPECT_TRUE(serves("blog", "blog.test", "v1\n", v1));

    stdfs::rename(away, repo_->bare());
    EXPECT_TRUE(eventually([&] { return status_line("blog", "error").empty(); }, 30s, 100ms)) << status_of("blog");
    const std::string v2 = repo_->commit({{"index.html", "v2\n"}});
    expect_goes_live("blog", "blog.test", "v2\n", v2);
}

// ---------------------------------------------------------------------------------------------
// The data dir on a disk of its own (4 MiB): a release that does not fit.

class SmallDataDir : public Faults {
protected:
    void before_start() override { mount_small_disk(data(), "4m"); }
};

TEST_F(SmallDataDir, ADiskFullDuringCheckoutLeavesNoStagingDirAndThePreviousReleaseServes) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n");
    // 8 MiB of zeros: a pack of a few KiB that fetches fine, a tree twice the size of the disk.
    const std::string v2 = repo_->commit({{"index.html", "v2\n"}, {"big.bin", std::string(8 << 20, '\0')}});
    ASSERT_TRUE(state_is("blog", "failed")) << daemon_log();
    const std::string error = status_line("blog", "error");
    EXPECT_EQ(error.rfind("stage: ", 0), 0u) << error;
    EXPECT_NE(error.find("No space left on device"), std::string::npos) << error;
    EXPECT_TRUE(serves("blog", "blog.test", "v1\n", v1));
    std::vector<std::string> releases;
    for (const auto& e : stdfs::directory_iterator(data() / "blog" / "releases")) releases.push_back(e.path().filename());
    EXPECT_EQ(releases, std::vector<std::string>{v1}) << "no staging dir, no partial release of " << v2;

    const std::string v3 = repo_->commit({{"index.html", "v3\n"}, {"big.bin", ""}});
    expect_goes_live("blog", "blog.test", "v3\n", v3);
}

}  // namespace
}  // namespace sitesfs::it
