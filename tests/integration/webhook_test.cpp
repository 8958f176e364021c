// The push webhook end to end: sitesfs mounted with [webhook] listen over a real Caddy and real git
// repositories, and HTTP requests sent to the listener over a socket. The poll interval is an hour,
// so a deploy of the new commit within the test can only be the webhook's doing.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "tests/integration/deploy_fixture.hpp"
#include "tests/support/exchange.hpp"
#include "webhook/signature.hpp"

namespace sitesfs::it {
namespace {

constexpr std::string_view kSecret = "integration-webhook-secret-0123456789";

class Webhook : public DeployTest {
protected:
    void before_start() override {
        poll_interval_ = "3600";
        port_ = free_port();
        stdfs::create_directories(tmp() / "keys");
        spit(tmp() / "keys" / "webhook", std::string(kSecret) + "\n");
        stdfs::permissions(tmp() / "keys" / "webhook", stdfs::perms::owner_read | stdfs::perms::owner_write);
    }
    std::string extra_config() const override {
        return "[keys]\ndir = \"" + (tmp() / "keys").string() + "\"\n"
               "[webhook]\nlisten = \"127.0.0.1:" + std::to_string(port_) + "\"\nsecret_ref = \"file:webhook\"\n"
               "max_body = 65536\nrate = 5\nburst = 10\n";
    }

    // Sends `raw` to the listener on a connection of its own; returns everything it answers.
    std::string exchange(const std::string& raw) const {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port_));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return it::exchange(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), reinterpret_cast<sockaddr*>(&addr), sizeof addr,
                            raw);
    }

    static std::string post(const std::string& headers, const std::string& body) {
        return "POST /hooks/sitesfs HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers +
               "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    }

    // A push to the test repository's main branch as `sender` ("github", "gitea", "gitlab")
    // sends it, signed with `secret` (nullptr: unsigned).
    std::string push(const std::string& sender, const char* secret, const std::string& after = std::string(40, '0')) const {
        const std::string url = repo_->url();
        std::string body, headers;
        if (sender == "gitlab") {
            body = R"({"object_kind":"push","ref":"refs/heads/main","after":")" + after + R"(","project":{"git_http_url":")" +
                   url + R"(","default_branch":"main"}})";
            headers = "X-Gitlab-Event: Push Hook\r\n";
            if (secret) headers += "X-Gitlab-Token: " + std::string(secret) + "\r\n";
        } else {
            body = R"({"ref":"refs/heads/main","after":")" + after + R"(","repository":{"clone_url":")" + url +
                   R"(","default_branch":"main"}})";
            if (sender == "github") {
                headers = "X-GitHub-Event: push\r\n";
                if (secret) headers += "X-Hub-Signature-256: sha256=" + webhook::hmac_sha256_hex(secret, body) + "\r\n";
            } else {
                headers = "X-GitHub-Event: push\r\nX-Gitea-Event: push\r\n";
                if (secret) headers += "X-Gitea-Signature: " + webhook::hmac_sha256_hex(secret, body) + "\r\n";
            }
        }
        return post(headers, body);
    }

    double metric(const std::string& outcome) const {
        const std::string m = read(".metrics");
        const std::string key = "sitesfs_webhook_requests_total{outcome=\"" + outcome + "\"} ";
        const size_t at = m.find(key);
        return at == std::string::npos ? -1 : std::stod(m.substr(at + key.size()));
    }

    int port_ = 0;
};

TEST_F(Webhook, ASignedPushOfEachSenderIsLiveWellBeforeThePoll) {
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test").substr(0, 4), "live") << daemon_log();
    int version = 1;
    for (const std::string sender : {"github", "gitea", "gitlab"}) {
        const std::string text = "v" + std::to_string(++version) + " by " + sender + "\n";
        const std::string sha = repo_->commit({{"index.html", text}});
        const auto pushed = std::chrono::steady_clock::now();
        // The payload names a commit that does not exist: the reconciler asks the remote itself.
        const std::string answer = exchange(push(sender, kSecret.data()));
        EXPECT_TRUE(answer.starts_with("HTTP/1.1 200 ")) << sender << ": " << answer;
        EXPECT_NE(answer.find("refreshed: blog"), std::string::npos) << sender << ": " << answer;
        ASSERT_TRUE(eventually([&] { return body("blog.test") == text && header("blog.test", "X-Deployed-Commit") == sha; },
                               60s, 20ms))
            << sender << ": " << body("blog.test") << daemon_log();
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - pushed).count();
        std::printf("webhook push->live (%s): %.0f ms\n", sender.c_str(), ms);
    }
    EXPECT_EQ(metric("refreshed"), 3) << read(".metrics");
}

// A client that asks "Expect: 100-continue" (libcurl does before a body over 1 MiB, over 1 KiB
// before 7.69; here curl is told to) sends the body only after "100 Continue" or a second's wait:
// the listener answers at once.
TEST_F(Webhook, CurlAskingForContinueGetsItAndDeploys) {
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test").substr(0, 4), "live") << daemon_log();
    const std::string sha = repo_->commit({{"index.html", "v2\n"}});
    const std::string body = R"({"ref":"refs/heads/main","commits":[{"message":")" + std::string(4000, 'x') +
                             R"("}],"repository":{"clone_url":")" + repo_->url() + R"(","default_branch":"main"}})";
    spit(tmp() / "payload.json", body);
    const Run r = run({"curl", "-sS", "-v", "--max-time", "20", "-H", "Expect: 100-continue", "-H", "X-GitHub-Event: push", "-H",
                       "X-Hub-Signature-256: sha256=" + webhook::hmac_sha256_hex(kSecret, body), "-H",
                       "Content-Type: application/json", "--data-binary", "@" + (tmp() / "payload.json").string(),
                       "http://127.0.0.1:" + std::to_string(port_) + "/hooks/sitesfs"});
    ASSERT_EQ(r.code, 0) << describe(r);
    EXPECT_NE(r.err.find("< HTTP/1.1 100 Continue"), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "refreshed: blog\n") << describe(r);
    EXPECT_TRUE(eventually([&] { return header("blog.test", "X-Deployed-Commit") == sha; }, 60s, 20ms)) << daemon_log();
}

TEST_F(Webhook, WrongAndMissingSignaturesAre401DeployNothingAndAreCounted) {
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test").substr(0, 4), "live") << daemon_log();
    repo_->commit({{"index.html", "v2\n"}});
    for (const std::string sender : {"github", "gitea", "gitlab"}) {
        EXPECT_TRUE(exchange(push(sender, "a guess at the secret, long enough")).starts_with("HTTP/1.1 401 ")) << sender;
        EXPECT_TRUE(exchange(push(sender, nullptr)).starts_with("HTTP/1.1 401 ")) << sender;
    }
    std::this_thread::sleep_for(2s);  // what a refresh would have taken, several times over
    EXPECT_EQ(body("blog.test"), "v1\n") << daemon_log();
    EXPECT_EQ(metric("bad_signature"), 3) << read(".metrics");
    EXPECT_EQ(metric("missing_signature"), 3) << read(".metrics");
    EXPECT_EQ(metric("refreshed"), 0) << read(".metrics");
    EXPECT_EQ(daemon_log().find(kSecret), std::string::npos) << "the secret is never logged";
}

TEST_F(Webhook, OversizedBodiesAre413AndFloodsAre429) {
    const std::string big(70000, ' ');
    const std::string answer = exchange(post("X-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=" +
                                                 webhook::hmac_sha256_hex(kSecret, big) + "\r\n",
                                             big));
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 413 ")) << answer;
    int limited = 0;
    for (int i = 0; i < 30; ++i) limited += exchange(push("github", kSecret.data())).starts_with("HTTP/1.1 429 ");
    EXPECT_GE(limited, 10) << "a burst of 10 and 5 a second cannot answer 30 at once";
    EXPECT_EQ(metric("rate_limited"), limited) << read(".metrics");
    EXPECT_EQ(metric("too_large"), 1) << read(".metrics");
}

}  // namespace
}  // namespace sitesfs::it
