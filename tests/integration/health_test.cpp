// The health check in Caddy's default automatic HTTPS mode, where plain HTTP only ever answers
// with a redirect to HTTPS: a deploy is judged by what a visitor of https://DOMAIN gets, through
// the loopback health listener rendered beside each site, and the certificates Caddy serves show
// in `status`. Real Caddy (its local CA, or an ACME CA that never answers), reloads through the
// systemd stand-in on a private D-Bus.
#include <gtest/gtest.h>

#include <thread>

#include "tests/integration/deploy_fixture.hpp"

namespace sitesfs::it {
namespace {

class Health : public DeployTest {
protected:
    Health() { caddy_mode_ = CaddyServer::Mode::AutomaticHttps; }

    bool settles_as(const std::string& site, const std::string& state) const {
        return eventually([&] { return status_line(site, "state") == state; }, 30s, 100ms);
    }

    // The answer on Caddy's plain-HTTP port, which is all the old health check ever saw.
    Run plain_http(const std::string& host) const {
        return run({"curl", "-s", "-i", "--max-time", "5", "-H", "Host: " + host,
                    "http://127.0.0.1:" + std::to_string(caddy_->port()) + "/"});
    }
};

TEST_F(Health, AGoodReleaseGoesLiveOverHttpsAndItsCertificateShowsInStatus) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n") << daemon_log();
    EXPECT_EQ(body("blog.test"), "v1\n");
    EXPECT_EQ(header("blog.test", "X-Deployed-Commit"), v1);
    EXPECT_EQ(plain_http("blog.test").out.rfind("HTTP/1.1 308", 0), 0u) << plain_http("blog.test").out;

    // Caddy's local CA names its intermediate in the CN (it has no O); a year is enough to say "until 20..".
    // Caddy issues the certificate on its own time after the reload, which on a busy machine can
    // be after the deploy's own look ("none yet"); every poll tick (1 s here) looks again.
    const std::string expected = "blog.test Caddy Local Authority - ECC Intermediate until 20";
    EXPECT_TRUE(eventually([&] { return status_line("blog", "tls").rfind(expected, 0) == 0; }, 30s, 100ms))
        << status_of("blog");
    const std::string m = read(".metrics");
    EXPECT_NE(m.find("sitesfs_tls_certificate_days_left{site=\"blog\",domain=\"blog.test\"} 0."), std::string::npos)
        << "a local certificate lives 12 hours:\n" << m;
    EXPECT_EQ(status_line("blog", "retry"), "");
}

TEST_F(Health, AReleaseThat404sOverHttpsFailsAndThePreviousOneKeepsServing) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n") << daemon_log();
    // Without index.html, https://blog.test/ answers 404 while http:// still answers 308.
    const std::string v2 = repo_->commit({{"index.html", ""}, {"other.html", "x\n"}});
    ASSERT_TRUE(settles_as("blog", "failed")) << daemon_log();
    const std::string error = status_line("blog", "error");
    EXPECT_EQ(error, "health: GET http://blog.test/ via 127.0.0.1:" + std::to_string(health_port_) +
                         " answered 404 (expected 2xx)")
        << status_of("blog");
    EXPECT_EQ(body("blog.test"), "v1\n");
    EXPECT_EQ(header("blog.test", "X-Deployed-Commit"), v1);
    EXPECT_EQ(read("blog/commit"), v1 + "\n");
    EXPECT_EQ(stdfs::read_symlink(data() / "blog" / "current"), stdfs::path("releases") / v1);
    EXPECT_FALSE(stdfs::exists(data() / "blog" / "releases" / v2));
    // The commit's own failure: no retry is planned for it.
    EXPECT_EQ(status_line("blog", "retry"), "");
}

TEST_F(Health, ACheckWhoseTextIsMissingFailsAndTheFixGoesLive) {
    const std::string v1 = repo_->commit({{"index.html", "<h1>Welcome</h1>\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n") << daemon_log();
    ASSERT_TRUE(shell("echo '/ Welcome' > blog/check"));
    EXPECT_EQ(wait("blog"), "live " + v1 + "\n");
    EXPECT_EQ(read("blog/check"), "/ Welcome\n");

    repo_->commit({{"index.html", "<h1>Under construction</h1>\n"}});
    ASSERT_TRUE(settles_as("blog", "failed")) << daemon_log();
    EXPECT_EQ(status_line("blog", "error"),
              "health: GET http://blog.test/ via 127.0.0.1:" + std::to_string(health_port_) +
                  " answered 200 without \"Welcome\" in the first 64 KiB of its body");
    EXPECT_EQ(body("blog.test"), "<h1>Welcome</h1>\n");

    const std::string v3 = repo_->commit({{"index.html", "<h1>Welcome back</h1>\n"}});
    EXPECT_TRUE(eventually([&] { return header("blog.test", "X-Deployed-Commit") == v3; }, 30s, 100ms)) << daemon_log();
    EXPECT_TRUE(settles_as("blog", "live"));
}

// A Hugo site sends / to /en/; here Caddy's file_server sends /en to /en/ in the same way: a
// redirect the site makes on its own domain is followed, and the page it leads to is judged.
TEST_F(Health, TheSitesOwnRedirectOnItsDomainIsFollowed) {
    const std::string v1 = repo_->commit({{"en/index.html", "<p>English</p>\n"}, {"index.html", "x\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n") << daemon_log();
    ASSERT_TRUE(shell("echo '/en English' > blog/check"));
    EXPECT_EQ(wait("blog"), "live " + v1 + "\n");
    const std::string v2 = repo_->commit({{"en/index.html", "<p>Anglais</p>\n"}, {"index.html", "x\n"}});
    ASSERT_TRUE(settles_as("blog", "failed")) << daemon_log();
    const std::string error = status_line("blog", "error");
    EXPECT_EQ(error, "health: GET http://blog.test/en/ (redirected from http://blog.test/en) via 127.0.0.1:" +
                         std::to_string(health_port_) + " answered 200 without \"English\" in the first 64 KiB of its body")
        << status_of("blog");
    const std::string v3 = repo_->commit({{"en/index.html", "<p>English again</p>\n"}, {"index.html", "x\n"}});
    EXPECT_TRUE(eventually([&] { return header("blog.test", "X-Deployed-Commit") == v3; }, 30s, 100ms)) << daemon_log();
    EXPECT_TRUE(settles_as("blog", "live"));
}

class PendingCertificate : public Health {
protected:
    PendingCertificate() { caddy_mode_ = CaddyServer::Mode::PendingCertificates; }
};

// In production a new domain has no certificate for seconds to hours (ACME, rate limits): the
// release is judged all the same, goes live, and `status` says the certificate is still missing.
TEST_F(PendingCertificate, ANewDomainGoesLiveBeforeItsCertificateExists) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n") << daemon_log();
    EXPECT_EQ(status_line("blog", "tls"), "blog.test none yet") << status_of("blog");
    const Run https = fetch("blog.test");
    EXPECT_NE(https.code, 0) << "no certificate, no TLS: " << https.out;
    const std::string m = read(".metrics");
    EXPECT_NE(m.find("sitesfs_tls_certificate_missing{site=\"blog\",domain=\"blog.test\"} 1\n"), std::string::npos) << m;
}

}  // namespace
}  // namespace sitesfs::it
