// A remote that accepts the connection and then says nothing: the deploy fails with a timeout
// ([git] io_timeout) instead of hanging a worker, the previous release keeps serving, the mount and
// the other sites carry on meanwhile, and SIGTERM ends the daemon while a fetch is stalled.
#include <sys/wait.h>

#include "tests/integration/deploy_fixture.hpp"
#include "tests/support/stall_server.hpp"

namespace sitesfs::it {
namespace {

class StalledRemote : public DeployTest {
protected:
    // The validator takes https:// and a dotted-quad host, so the stalling server is reachable as
    // is: the TLS handshake is where the client waits for it.
    void before_start() override { stall_ = std::make_unique<StallServer>(); }
    std::string extra_config() const override { return "[git]\nconnect_timeout = 5\nio_timeout = " + io_timeout_ + "\n"; }

    std::string stalled_url() const { return "https://" + endpoint() + "/blog.git"; }
    std::string endpoint() const { return "127.0.0.1:" + std::to_string(stall_->port()); }

    // Both sites live from the local repository at v1.
    std::string two_live_sites() {
        const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
        EXPECT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n") << daemon_log();
        EXPECT_EQ(create_site("shop", "shop.test"), "live " + v1 + "\n") << daemon_log();
        return v1;
    }

    // Points blog at the silent server and returns once a fetch is waiting on it.
    void stall_blog() {
        const int before = stall_->accepted();
        ASSERT_TRUE(shell("echo " + stalled_url() + " > blog/repo"));
        ASSERT_TRUE(eventually([&] { return stall_->accepted() > before; }, 30s, 50ms)) << daemon_log();
    }

    std::string io_timeout_ = "2";
    std::unique_ptr<StallServer> stall_;
};

TEST_F(StalledRemote, TheDeployFailsWithATimeoutWhileEverythingElseCarriesOn) {
    const std::string v1 = two_live_sites();
    ASSERT_NO_FATAL_FAILURE(stall_blog());

    // During the stall: the mount answers, and another site's change deploys.
    EXPECT_EQ(read("blog/repo"), stalled_url() + "\n");
    ASSERT_TRUE(shell("echo shop2.test > shop/domain"));
    EXPECT_EQ(wait("shop"), "live " + v1 + "\n") << daemon_log();
    EXPECT_EQ(body("shop2.test"), "v1\n");

    // The status says why, in one read (a failed run is retried on every poll tick, and a new run
    // clears the error while it runs).
    std::string status;
    EXPECT_TRUE(eventually([&] { return (status = status_of("blog")).find("state: failed\n") != std::string::npos; },
                           30s, 100ms))
        << status << daemon_log();
    EXPECT_NE(status.find("error: fetch: fetch " + stalled_url() + ": no data from the server " + endpoint() +
                          " for 2s (timed out; [git] io_timeout)\n"),
              std::string::npos)
        << status;

    // The previous release keeps serving.
    EXPECT_EQ(body("blog.test"), "v1\n");
    EXPECT_EQ(header("blog.test", "X-Deployed-Commit"), v1);
    EXPECT_EQ(stdfs::read_symlink(data() / "blog" / "current"), stdfs::path("releases") / v1);
    EXPECT_EQ(read("blog/commit"), v1 + "\n");

    // Once the remote answers again, the site follows it.
    const std::string v2 = repo_->commit({{"index.html", "v2\n"}});
    ASSERT_TRUE(shell("echo " + repo_->url() + " > blog/repo"));
    EXPECT_EQ(wait("blog"), "live " + v2 + "\n") << daemon_log();
    EXPECT_EQ(body("blog.test"), "v2\n");
}

// An io_timeout far beyond stop()'s 5 s grace: only cancellation can end the stalled fetch in time.
class StalledRemoteAtShutdown : public StalledRemote {
protected:
    StalledRemoteAtShutdown() { io_timeout_ = "600"; }
};

TEST_F(StalledRemoteAtShutdown, SigtermEndsTheDaemonWhileAFetchIsStalled) {
    const std::string v1 = two_live_sites();
    ASSERT_NO_FATAL_FAILURE(stall_blog());
    EXPECT_EQ(status_line("blog", "state"), "deploying");
    const std::string log = daemon_log();
    const auto status = stop();
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "sitesfs did not exit by itself within 5 s of SIGTERM (" << wait_status_text(*status) << "); log:\n" << log;
    // What served before still serves: Caddy runs on without sitesfs.
    EXPECT_EQ(body("blog.test"), "v1\n");
}

}  // namespace
}  // namespace sitesfs::it
