// poll(2) on a site's files (docs/filesystem.md, "Waiting for a change"): a reader is told with
// POLLPRI|POLLERR that the content changed since it last read it, by every change that can reach
// the file and by nothing else, and a re-read quiets it again.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include "tests/integration/deploy_fixture.hpp"

namespace sitesfs::it {
namespace {

using Clock = std::chrono::steady_clock;

// An open file that a test re-reads and polls as the documented loop does.
class Watched {
public:
    explicit Watched(const stdfs::path& p) : path_(p), fd_(::open(p.c_str(), O_RDONLY | O_CLOEXEC)) {
        if (fd_ < 0) ADD_FAILURE() << "open " << p << ": " << std::strerror(errno);
    }
    ~Watched() {
        if (fd_ >= 0) ::close(fd_);
    }
    Watched(const Watched&) = delete;
    Watched& operator=(const Watched&) = delete;

    // Seeks to 0 and reads to the end: the content, or "<errno N>" when a read fails.
    std::string reread() const {
        std::string out;
        char buf[4096];
        for (off_t at = 0;;) {
            const ssize_t n = ::pread(fd_, buf, sizeof buf, at);
            if (n < 0) return "<errno " + std::to_string(errno) + ">";
            if (n == 0) return out;
            out.append(buf, static_cast<size_t>(n));
            at += n;
        }
    }

    // Polls for POLLPRI|POLLERR up to `timeout`: how long it took to be told of a change, nothing
    // when it timed out.
    std::optional<Ms> change(Ms timeout) const {
        pollfd p{fd_, POLLPRI | POLLERR, 0};
        const auto start = Clock::now();
        const int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
        const auto took = std::chrono::duration_cast<Ms>(Clock::now() - start);
        if (n < 0) ADD_FAILURE() << "poll " << path_ << ": " << std::strerror(errno);
        if (n <= 0) return std::nullopt;
        EXPECT_EQ(p.revents & (POLLPRI | POLLERR), POLLPRI | POLLERR) << path_ << " revents " << p.revents;
        return took;
    }

    // What poll says at once of POLLIN.
    short readable() const {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 0) < 0) ADD_FAILURE() << "poll " << path_ << ": " << std::strerror(errno);
        return p.revents;
    }

    // change(), from another thread: the test acts meanwhile, once the poll is surely asleep.
    std::future<std::optional<Ms>> change_later(Ms timeout) const {
        auto f = std::async(std::launch::async, [this, timeout] { return change(timeout); });
        std::this_thread::sleep_for(500ms);
        return f;
    }

private:
    stdfs::path path_;
    int fd_;
};

// That a poll change_later() started was answered well before its timeout ended: a poll that times
// out still looks once more, so only an early answer shows that the change woke it.
::testing::AssertionResult woken_by(const std::string& event, std::future<std::optional<Ms>>& woke, Ms within) {
    const auto took = woke.get();
    if (!took) return ::testing::AssertionFailure() << "no POLLPRI after " << event;
    if (*took >= within)
        return ::testing::AssertionFailure() << "POLLPRI " << took->count() << " ms after " << event
                                             << ": at the timeout's end, not woken by it";
    return ::testing::AssertionSuccess();
}

using Poll = TwoSitesTest;

TEST_F(Poll, AFileNobodyChangedStaysQuiet) {
    for (const char* file : {"blog/status", "blog/log", "blog/domain", "blog/repo"}) {
        Watched w(mnt() / file);
        EXPECT_EQ(w.change(300ms), std::nullopt) << file << " just opened";
        EXPECT_NE(w.reread().find('\n'), std::string::npos) << file;
        EXPECT_EQ(w.change(300ms), std::nullopt) << file << " just read";
        EXPECT_EQ(w.readable(), POLLIN) << file;
    }
}

TEST_F(Poll, AWriteWakesAPollerOfThatFileAndAReReadQuietsIt) {
    Watched w(mnt() / "blog/domain");
    ASSERT_EQ(w.reread(), "blog.example.com\n");
    auto woke = w.change_later(10s);
    write("blog/domain", "news.example.com\n");
    ASSERT_TRUE(woken_by("the write", woke, 5s));
    // Still news until it is read.
    EXPECT_EQ(w.change(0ms).has_value(), true);
    EXPECT_EQ(w.reread(), "news.example.com\n");
    EXPECT_EQ(w.change(500ms), std::nullopt) << "read since the change";
}

TEST_F(Poll, AChangeBeforeThePollIsNewsToo) {
    Watched w(mnt() / "blog/branch");
    const std::string before = w.reread();
    write("blog/branch", "release\n");
    EXPECT_TRUE(w.change(2s)) << "changed since it was read, before anyone polled";
    EXPECT_NE(w.reread(), before);
}

TEST_F(Poll, AnotherSitesChangeDoesNotWakeIt) {
    // Opening counts as reading.
    Watched domain(mnt() / "blog/domain"), status(mnt() / "blog/status");
    auto woke = status.change_later(2s);
    write("shop/domain", "store.example.com\n");
    EXPECT_EQ(write_errno("shop/domain", "bad..com\n"), EINVAL);
    EXPECT_EQ(woke.get(), std::nullopt) << "blog/status woken by a change to shop";
    EXPECT_EQ(domain.change(500ms), std::nullopt) << "blog/domain woken by a change to shop";
}

TEST_F(Poll, ARefusedWriteWakesAStatusPoller) {
    Watched w(mnt() / "blog/status");
    auto woke = w.change_later(10s);
    EXPECT_EQ(write_errno("blog/domain", "bad..com\n"), EINVAL);
    ASSERT_TRUE(woken_by("the refusal", woke, 5s));
    const std::string after = w.reread();
    EXPECT_NE(after.find("bad..com"), std::string::npos) << after;
    EXPECT_EQ(w.change(500ms), std::nullopt);
}

// Another reader refills the page cache between the change and the poller's re-read: the re-read
// must still count, or the poller would be told of the same change forever.
TEST_F(Poll, AReReadCountsAfterAnotherReaderReadTheChange) {
    Watched w(mnt() / "blog/status");
    w.reread();
    EXPECT_EQ(write_errno("blog/domain", "bad..com\n"), EINVAL);
    ASSERT_TRUE(w.change(5s));
    EXPECT_NE(read("blog/status").find("bad..com"), std::string::npos);
    EXPECT_NE(w.reread().find("bad..com"), std::string::npos);
    EXPECT_EQ(w.change(500ms), std::nullopt) << "the re-read did not count";
}

TEST_F(Poll, ARemovedSiteWakesItsPollersAndTheReReadIsEnoent) {
    Watched status(mnt() / "blog/status"), domain(mnt() / "blog/domain");
    auto woke = status.change_later(10s);
    ASSERT_TRUE(shell("rmdir blog"));
    ASSERT_TRUE(woken_by("the removal", woke, 5s));
    EXPECT_EQ(status.reread(), "<errno " + std::to_string(ENOENT) + ">");
    EXPECT_TRUE(domain.change(2s)) << "every file of the removed site";
    EXPECT_EQ(domain.reread(), "<errno " + std::to_string(ENOENT) + ">");
    // A new site of the same name is another site: the old files stay gone.
    ASSERT_NO_FATAL_FAILURE(make_site("blog", "blog.example.com"));
    EXPECT_EQ(domain.reread(), "<errno " + std::to_string(ENOENT) + ">");
}

// Files the kernel opened itself tell sitesfs nothing of what their reader read: readable, as a
// regular file, and never a change (docs/filesystem.md says to use the read-write mount).
TEST_F(Poll, AReadOnlyMountAnswersAsARegularFile) {
    Daemon* ro = start_instance("ro", {"-o", "ro"});
    ASSERT_NE(ro, nullptr);
    Watched w(ro->mountpoint / "blog/status");
    ASSERT_EQ(w.reread().rfind("state: ", 0), 0u);
    EXPECT_EQ(write_errno("blog/domain", "bad..com\n"), EINVAL);
    EXPECT_TRUE(eventually([&] { return w.reread().find("bad..com") != std::string::npos; }, 5s)) << w.reread();
    EXPECT_EQ(w.change(500ms), std::nullopt);
    EXPECT_EQ(w.readable(), POLLIN);
}

// The example in docs/filesystem.md, run as printed, on this mount.
TEST_F(Poll, TheDocumentedPythonLoopPrintsTheNewStatus) {
    const std::string doc = slurp(stdfs::path(SITESFS_SOURCE_DIR) / "docs" / "filesystem.md");
    const auto section = doc.find("## Waiting for a change: poll(2)");
    ASSERT_NE(section, std::string::npos);
    const auto start = doc.find("```python\n", section);
    ASSERT_NE(start, std::string::npos);
    const auto end = doc.find("```\n", start + 10);
    ASSERT_NE(end, std::string::npos);
    std::string script = doc.substr(start + 10, end - start - 10);
    const std::string documented = "/sites/blog/status";
    const auto at = script.find(documented);
    ASSERT_NE(at, std::string::npos) << script;
    script.replace(at, documented.size(), (mnt() / "blog/status").string());
    spit(tmp() / "loop.py", script);

    const auto out = tmp() / "loop.out";
    const pid_t pid = spawn_logged({"python3", "-u", (tmp() / "loop.py").string()}, out);
    ASSERT_GT(pid, 0);
    struct Reaper {
        pid_t pid;
        ~Reaper() { terminate_child(pid); }
    } reaper{pid};
    ASSERT_TRUE(eventually([&] { return slurp(out).find("state:") != std::string::npos; }, 10s)) << slurp(out);
    std::this_thread::sleep_for(500ms);  // into its poll
    EXPECT_EQ(write_errno("blog/domain", "bad..com\n"), EINVAL);
    EXPECT_TRUE(eventually([&] { return slurp(out).find("bad..com") != std::string::npos; }, 5s)) << slurp(out);
    // Told once: the loop re-read and waits again instead of printing in a spin.
    std::this_thread::sleep_for(500ms);
    const std::string printed = slurp(out);
    size_t statuses = 0;
    for (size_t p = 0; (p = printed.find("state:", p)) != std::string::npos; ++p) ++statuses;
    EXPECT_EQ(statuses, 2u) << printed;
}

// Reports land through the reconciler: a new commit it deploys wakes a poller of `commit`.
using PollDeploy = DeployTest;

TEST_F(PollDeploy, ACommitPollerWakesWhenTheReconcilerDeploysAnotherCommit) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n") << daemon_log();
    Watched w(mnt() / "blog/commit");
    ASSERT_EQ(w.reread(), v1 + "\n");
    auto woke = w.change_later(60s);
    const std::string v2 = repo_->commit({{"index.html", "v2\n"}});
    ASSERT_TRUE(woken_by("the push", woke, 30s)) << daemon_log();
    EXPECT_EQ(w.reread(), v2 + "\n") << "woken by the report of the deploy, not by a step before it";
}

}  // namespace
}  // namespace sitesfs::it
