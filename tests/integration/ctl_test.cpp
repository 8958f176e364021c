// `ctl`: refresh and redeploy through a real mount, git and Caddy. The poll waits an hour here, so
// only the request can explain a deploy.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "tests/integration/deploy_fixture.hpp"

namespace sitesfs::it {
namespace {

using namespace std::chrono_literals;

class Ctl : public DeployTest {
protected:
    void SetUp() override {
        poll_interval_ = "3600";
        DeployTest::SetUp();
    }
    double metric(const std::string& series) const {
        const std::string m = read(".metrics");
        const size_t at = m.find("\n" + series + " ");
        return at == std::string::npos ? -1.0 : std::stod(m.substr(at + series.size() + 2));
    }
};

TEST_F(Ctl, RefreshDeploysAPushNowWhileThePollWaitsAnHour) {
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test").substr(0, 4), "live");
    const std::string v2 = repo_->commit({{"index.html", "v2\n"}});
    std::this_thread::sleep_for(1500ms);
    ASSERT_EQ(body("blog.test"), "v1\n") << "nothing but the request may deploy v2";
    const auto asked = std::chrono::steady_clock::now();
    ASSERT_TRUE(shell("echo refresh > blog/ctl"));
    ASSERT_TRUE(eventually([&] { return body("blog.test") == "v2\n"; }, 20s, 20ms)) << daemon_log();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - asked);
    std::printf("refresh to live: %lld ms\n", static_cast<long long>(ms.count()));
    EXPECT_TRUE(eventually([&] { return read("blog/commit") == v2 + "\n"; }, 10s));
    EXPECT_EQ(metric("sitesfs_refreshes_total"), 1.0);
}

TEST_F(Ctl, ARefreshWithNothingNewDeploysNothing) {
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test").substr(0, 4), "live");
    const int lines = deploy_log_lines("blog");
    const std::string generation = status_line("blog", "generation");
    ASSERT_TRUE(shell("echo refresh > blog/ctl"));
    ASSERT_TRUE(eventually([&] { return daemon_log().find("site blog: refreshed: nothing new") != std::string::npos; },
                           10s, 20ms))
        << daemon_log();
    EXPECT_EQ(deploy_log_lines("blog"), lines) << "no run, not even an up-to-date one";
    EXPECT_EQ(status_line("blog", "generation"), generation) << "a request is not a setting";
    EXPECT_EQ(status_line("blog", "state"), "live");
}

TEST_F(Ctl, RedeployRunsAFailedDeployAgainWithoutAWrite) {
    ASSERT_NO_FATAL_FAILURE(start_systemd("fail"));
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test").substr(0, 6), "failed");
    ASSERT_NO_FATAL_FAILURE(start_systemd("normal"));
    std::this_thread::sleep_for(1s);
    ASSERT_EQ(status_line("blog", "state"), "failed") << "the retry waits for the hour's backoff";
    const std::string generation = status_line("blog", "generation");
    // A redeploy is a new generation of the same settings, so `wait` waits for its run.
    ASSERT_TRUE(shell("echo redeploy > blog/ctl && cat blog/wait", {.out = "live " + v1 + "\n"})) << daemon_log();
    EXPECT_EQ(body("blog.test"), "v1\n");
    EXPECT_EQ(status_line("blog", "generation"), std::to_string(std::stoi(generation) + 1));
}

TEST_F(Ctl, RedeployOfALiveSiteRunsItsDeployAgain) {
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test").substr(0, 4), "live");
    const int lines = deploy_log_lines("blog");
    ASSERT_TRUE(shell("printf 'redeploy\\n' >> blog/ctl && cat blog/wait", {.out_has = "live "}));
    EXPECT_EQ(deploy_log_lines("blog"), lines + 1) << daemon_log();
}

TEST_F(Ctl, AnUnknownVerbIsRefusedWithItsReasonInStatusAndAGoodOneClearsIt) {
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test").substr(0, 4), "live");
    EXPECT_EQ(write_errno("blog/ctl", "deploy\n"), EINVAL);
    EXPECT_EQ(write_errno("blog/ctl", "refresh\nnow\n"), EINVAL) << "one bad line refuses the whole write";
    EXPECT_EQ(status_line("blog", "error"),
              "ctl 'now': no such request; write `refresh` (ask the remote now, deploy if the branch moved) or "
              "`redeploy` (run the deploy again now)");
    EXPECT_EQ(metric("sitesfs_refreshes_total"), 0.0) << "a refused write asks nothing";
    ASSERT_TRUE(shell("echo refresh > blog/ctl"));
    EXPECT_EQ(status_line("blog", "error"), "");
}

TEST_F(Ctl, IsWriteOnlyUnlistedAndNotAnArchivesBusiness) {
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test").substr(0, 4), "live");
    EXPECT_TRUE(shell("cat blog/ctl", {.code = 1, .err_has = "Permission denied"}));
    EXPECT_TRUE(shell("stat -c %A blog/ctl", {.out = "--w-------\n"}));
    EXPECT_TRUE(shell("ls -a blog | grep -c -x ctl", {.code = 1, .out = "0\n"})) << "ls does not list it";
    EXPECT_TRUE(shell("rm blog/ctl", {.code = 1}));
    EXPECT_TRUE(shell("mkdir ../copy && cp -r blog ../copy/ && test ! -e ../copy/blog/ctl"));
    // A blank write asks nothing and is no error (`: > ctl`).
    ASSERT_TRUE(shell(": > blog/ctl"));
    EXPECT_EQ(status_line("blog", "error"), "");
}

TEST_F(Ctl, AReadOnlyMountRefusesRequests) {
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test").substr(0, 4), "live");
    Daemon* ro = start_instance("ro", {"-o", "ro"});
    ASSERT_NE(ro, nullptr);
    EXPECT_TRUE(shell("echo refresh > ../ro/blog/ctl", {.code = 1, .err_has = "Read-only file system"}));
    EXPECT_TRUE(shell("cat ../ro/blog/ctl", {.code = 1, .err_has = "Permission denied"}));
    EXPECT_TRUE(stop_instance(ro).has_value());
}

}  // namespace
}  // namespace sitesfs::it
