// The webhook's parts on their own: the HTTP parser's limits, each sender's signature (right,
// wrong, missing), push payloads and repository matching, and the listener over a unix socket
// with a real file store.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <mutex>

#include "store/file_store.hpp"
#include "tests/support/exchange.hpp"
#include "webhook/http_request.hpp"
#include "webhook/listener.hpp"
#include "webhook/push_event.hpp"
#include "webhook/signature.hpp"

namespace sitesfs::webhook {
namespace {

namespace fsys = std::filesystem;
using State = HttpParse::State;

std::string post(const std::string& headers, const std::string& body) {
    return "POST /hook HTTP/1.1\r\nHost: x\r\n" + headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
           body;
}

HttpRequest parsed(const std::string& raw) {
    const HttpParse p = parse_request(raw, {});
    EXPECT_EQ(p.state, State::complete) << p.reason;
    return p.request;
}

// ---- the parser ----

TEST(HttpRequest, ReadsAWholeRequest) {
    const HttpParse p = parse_request(post("X-GitHub-Event:  push \r\n", "{}"), {});
    ASSERT_EQ(p.state, State::complete) << p.reason;
    EXPECT_EQ(p.request.method, "POST");
    EXPECT_EQ(p.request.target, "/hook");
    ASSERT_NE(p.request.header("x-github-event"), nullptr) << "names are lower-cased";
    EXPECT_EQ(*p.request.header("x-github-event"), "push") << "values are trimmed";
    EXPECT_EQ(p.request.body, "{}");
}

TEST(HttpRequest, WaitsForTheRestOfHeadAndBody) {
    const std::string raw = post("", "{\"a\":1}");
    EXPECT_EQ(parse_request(raw.substr(0, 20), {}).state, State::incomplete);
    EXPECT_EQ(parse_request(raw.substr(0, raw.size() - 1), {}).state, State::incomplete);
}

TEST(HttpRequest, RefusesWhatItDoesNotSpeak) {
    const auto status = [](const std::string& raw) {
        const HttpParse p = parse_request(raw, {});
        EXPECT_EQ(p.state, State::refused) << raw;
        return p.status;
    };
    EXPECT_EQ(status("POST /hook HTTP/1.1\r\nHost: x\r\n\r\n"), 411) << "a POST without Content-Length";
    EXPECT_EQ(status("POST /hook HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"), 411);
    EXPECT_EQ(status("POST /hook HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"), 400);
    EXPECT_EQ(status("POST /hook HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
    EXPECT_EQ(status("POST /hook HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n"), 400);
    EXPECT_EQ(status("POST /hook HTTP/1.1\r\nContent-Length: 010\r\n\r\n0123456789"), 400) << "a leading zero";
    EXPECT_EQ(status("POST /hook HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"), 413);
    EXPECT_EQ(status("POST /hook HTTP/1.1\nContent-Length: 0\n\n"), 400) << "bare LF";
    EXPECT_EQ(status("POST /hook HTTP/1.1\r\nA: b\r\n c\r\nContent-Length: 0\r\n\r\n"), 400) << "folding";
    EXPECT_EQ(status("POST /hook HTTP/1.1\r\nA: b\x01\r\nContent-Length: 0\r\n\r\n"), 400) << "a control byte";
    EXPECT_EQ(status("POST /hook HTTP/2.0\r\nContent-Length: 0\r\n\r\n"), 505);
    EXPECT_EQ(status("POST hook HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 400) << "a target not a path";
    EXPECT_EQ(status(post("", "{}") + "GET / HTTP/1.1\r\n\r\n"), 400) << "a second request";
}

TEST(HttpRequest, CapsHeadHeadersAndBody) {
    const HttpLimits limits{.max_head = 256, .max_headers = 4, .max_body = 100};
    const HttpParse big_head = parse_request("POST /hook HTTP/1.1\r\nA: " + std::string(300, 'a'), limits);
    EXPECT_EQ(big_head.state, State::refused) << "refused before the head ends";
    EXPECT_EQ(big_head.status, 431);
    std::string many;
    for (int i = 0; i < 5; ++i) many += "H" + std::to_string(i) + ": v\r\n";
    EXPECT_EQ(parse_request("POST /hook HTTP/1.1\r\n" + many + "Content-Length: 0\r\n\r\n", limits).status, 431);
    const HttpParse big_body = parse_request("POST /hook HTTP/1.1\r\nContent-Length: 101\r\n\r\n", limits);
    EXPECT_EQ(big_body.state, State::refused) << "refused from the head, before the body is read";
    EXPECT_EQ(big_body.status, 413);
    EXPECT_NE(big_body.reason.find("max_body"), std::string::npos) << big_body.reason;
    EXPECT_EQ(parse_request(post("", std::string(100, 'x')), limits).state, State::complete) << "exactly the cap";
}

// ---- signatures ----

constexpr std::string_view kSecret = "0123456789abcdef-secret";

TEST(Signature, HmacSha256MatchesRfc4231) {
    EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Signature, ProviderByEventHeader) {
    EXPECT_EQ(provider_of(parsed(post("X-GitHub-Event: push\r\n", ""))), Provider::github);
    EXPECT_EQ(provider_of(parsed(post("X-GitHub-Event: push\r\nX-Gitea-Event: push\r\n", ""))), Provider::gitea)
        << "Gitea also sends X-GitHub-Event";
    EXPECT_EQ(provider_of(parsed(post("X-Forgejo-Event: push\r\n", ""))), Provider::gitea);
    EXPECT_EQ(provider_of(parsed(post("X-Gitlab-Event: Push Hook\r\n", ""))), Provider::gitlab);
    EXPECT_EQ(provider_of(parsed(post("", ""))), std::nullopt);
}

TEST(Signature, GitHub) {
    const std::string body = R"({"ref":"refs/heads/main"})";
    const std::string sig = "sha256=" + hmac_sha256_hex(kSecret, body);
    EXPECT_EQ(verify(Provider::github, parsed(post("X-Hub-Signature-256: " + sig + "\r\n", body)), kSecret), Verdict::ok);
    std::string upper = sig;
    for (size_t i = 7; i < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(upper[i]));
    EXPECT_EQ(verify(Provider::github, parsed(post("X-Hub-Signature-256: " + upper + "\r\n", body)), kSecret), Verdict::ok);
    EXPECT_EQ(verify(Provider::github, parsed(post("X-Hub-Signature-256: " + sig + "\r\n", body + " ")), kSecret),
              Verdict::wrong)
        << "the body changed";
    EXPECT_EQ(verify(Provider::github, parsed(post("X-Hub-Signature-256: " + sig.substr(7) + "\r\n", body)), kSecret),
              Verdict::wrong)
        << "without sha256=";
    EXPECT_EQ(verify(Provider::github, parsed(post("X-Hub-Signature-256: " + sig + "\r\n", body)), "another secret"),
              Verdict::wrong);
    EXPECT_EQ(verify(Provider::github, parsed(post("X-Hub-Signature: sha1=00\r\n", body)), kSecret), Verdict::missing)
        << "SHA-1 signatures are not taken";
    EXPECT_EQ(verify(Provider::github, parsed(post("X-Hub-Signature-256: " + sig + "\r\n", body)), ""), Verdict::wrong)
        << "an empty secret verifies nothing";
}

TEST(Signature, GiteaAndForgejo) {
    const std::string body = R"({"ref":"refs/heads/main"})";
    const std::string sig = hmac_sha256_hex(kSecret, body);
    EXPECT_EQ(verify(Provider::gitea, parsed(post("X-Gitea-Signature: " + sig + "\r\n", body)), kSecret), Verdict::ok);
    EXPECT_EQ(verify(Provider::gitea, parsed(post("X-Forgejo-Signature: " + sig + "\r\n", body)), kSecret), Verdict::ok);
    EXPECT_EQ(verify(Provider::gitea, parsed(post("X-Gitea-Signature: sha256=" + sig + "\r\n", body)), kSecret),
              Verdict::wrong);
    EXPECT_EQ(verify(Provider::gitea, parsed(post("X-Gitea-Signature: " + sig.substr(1) + "0\r\n", body)), kSecret),
              Verdict::wrong);
    EXPECT_EQ(verify(Provider::gitea, parsed(post("", body)), kSecret), Verdict::missing);
}

TEST(Signature, GitLab) {
    const std::string body = R"({"ref":"refs/heads/main"})";
    EXPECT_EQ(verify(Provider::gitlab, parsed(post("X-Gitlab-Token: " + std::string(kSecret) + "\r\n", body)), kSecret),
              Verdict::ok);
    EXPECT_EQ(verify(Provider::gitlab, parsed(post("X-Gitlab-Token: " + std::string(kSecret) + "x\r\n", body)), kSecret),
              Verdict::wrong);
    EXPECT_EQ(verify(Provider::gitlab, parsed(post("X-Gitlab-Token: \r\n", body)), kSecret), Verdict::wrong);
    EXPECT_EQ(verify(Provider::gitlab, parsed(post("", body)), kSecret), Verdict::missing);
}

// ---- payloads and matching ----

TEST(RepoIdentity, OneRepositoryWrittenManyWays) {
    const std::string id = "github.com/owner/site";
    for (const char* form : {"owner/site", "owner/site.git", "https://github.com/owner/site",
                             "https://GitHub.com/Owner/Site.git", "ssh://git@github.com/owner/site.git",
                             "ssh://git@github.com:22/owner/site", "git@github.com:owner/site.git"}) {
        const Checked c = check_repo(form, {});
        ASSERT_TRUE(c.ok) << form << ": " << c.reason;
        EXPECT_EQ(repo_identity(c.value), id) << form;
    }
    for (const char* other : {"owner/site2", "https://gitlab.com/owner/site", "ssh://git@github.com:2222/owner/site",
                              "https://github.com/owner/site/sub"}) {
        const Checked c = check_repo(other, {});
        ASSERT_TRUE(c.ok) << other << ": " << c.reason;
        EXPECT_NE(repo_identity(c.value), id) << other;
    }
    EXPECT_EQ(repo_identity(check_repo("file:///srv/git/blog.git/", {.allow_local_repos = true}).value), "/srv/git/blog");
}

std::string github_push(const std::string& ref, const std::string& clone_url = "https://github.com/owner/site.git") {
    return R"({"ref":")" + ref + R"(","after":"0000000000000000000000000000000000000001","repository":{"full_name":"owner/site",)"
           R"("clone_url":")" + clone_url + R"(","ssh_url":"git@github.com:owner/site.git","default_branch":"main"}})";
}

TEST(PushEvent, GitHubPayload) {
    const PushParse p = parse_push_event(github_push("refs/heads/main"), {});
    ASSERT_TRUE(p.ok) << p.reason;
    EXPECT_EQ(p.event.branch(), "main");
    EXPECT_EQ(p.event.default_branch, "main");
    EXPECT_EQ(p.event.repositories, std::vector<std::string>{"github.com/owner/site"}) << "both URLs, one repository";
    EXPECT_EQ(parse_push_event(github_push("refs/tags/v1"), {}).event.branch(), "") << "a tag is no branch";
}

TEST(PushEvent, GitLabPayload) {
    const PushParse p = parse_push_event(
        R"({"object_kind":"push","ref":"refs/heads/dev","project":{"git_http_url":"https://gitlab.example/g/sub/site.git",)"
        R"("git_ssh_url":"git@gitlab.example:g/sub/site.git","default_branch":"main"}})",
        {});
    ASSERT_TRUE(p.ok) << p.reason;
    EXPECT_EQ(p.event.repositories, std::vector<std::string>{"gitlab.example/g/sub/site"});
    EXPECT_EQ(p.event.branch(), "dev");
}

TEST(PushEvent, RefusesWhatIsNotAPush) {
    EXPECT_FALSE(parse_push_event("not json", {}).ok);
    EXPECT_FALSE(parse_push_event("[1,2]", {}).ok);
    EXPECT_FALSE(parse_push_event(R"({"repository":{"clone_url":"https://github.com/o/r"}})", {}).ok) << "no ref";
    const PushParse hostile = parse_push_event(github_push("refs/heads/main", "ext::sh -c touch% /tmp/x"), {});
    ASSERT_TRUE(hostile.ok) << "the ssh_url is still fine";
    EXPECT_EQ(hostile.event.repositories, std::vector<std::string>{"github.com/owner/site"}) << "the ext:: URL is dropped";
    EXPECT_FALSE(parse_push_event(R"({"ref":"refs/heads/main","repository":{"clone_url":"file:///srv/x"}})", {}).ok)
        << "a local URL without --allow-local-repos";
    EXPECT_FALSE(parse_push_event(std::string(100000, '['), {}).ok) << "deep nesting";
}

SiteRecord site_of(const std::string& repo, const std::string& branch) {
    SiteRecord s;
    s.desired["repo"].value = check_repo(repo, {}).value;
    s.desired["branch"].value = branch;
    return s;
}

TEST(PushEvent, FollowsTheBranchOfTheRepository) {
    const PushEvent main = parse_push_event(github_push("refs/heads/main"), {}).event;
    const PushEvent dev = parse_push_event(github_push("refs/heads/dev"), {}).event;
    const PushEvent tag = parse_push_event(github_push("refs/tags/main"), {}).event;
    EXPECT_TRUE(follows(site_of("owner/site", ""), main)) << "no branch: the default branch";
    EXPECT_TRUE(follows(site_of("git@github.com:Owner/site", "main"), main));
    EXPECT_FALSE(follows(site_of("owner/site", ""), dev));
    EXPECT_TRUE(follows(site_of("owner/site", "dev"), dev));
    EXPECT_FALSE(follows(site_of("owner/site", "dev"), main));
    EXPECT_FALSE(follows(site_of("owner/site", "main"), tag));
    EXPECT_FALSE(follows(site_of("owner/other", "main"), main));
    EXPECT_FALSE(follows(site_of("", "main"), main));
}

// ---- the listener ----

class ListenerTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/sitesfs-webhook.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
        dir_ = tmpl;
        store_ = open_file_store({dir_ / "state", false, {}});
        for (const auto& [name, branch] : {std::pair{"blog", ""}, {"docs", "main"}, {"preview", "dev"}}) {
            ASSERT_TRUE(store_->create_site(name).ok());
            ASSERT_TRUE(store_->write_field(name, "repo", "owner/site").ok());
            if (*branch) {
                ASSERT_TRUE(store_->write_field(name, "branch", branch).ok());
            }
        }
        ASSERT_TRUE(store_->create_site("other").ok());
        ASSERT_TRUE(store_->write_field("other", "repo", "owner/other").ok());
        // What the reconciler hears: the listener writes `refresh` to ctl, as a person would.
        store_->subscribe([this](const Change& c) {
            if (c.kind != Change::Kind::Refresh) return;
            const std::lock_guard lock(mu_);
            refreshed_.push_back(c.site);
        });
    }
    void TearDown() override {
        listener_.reset();
        store_.reset();
        fsys::remove_all(dir_);
    }

    std::string socket_path() const { return (dir_ / "hook.sock").string(); }

    void start(ListenerOptions o = {}) {
        o.listen = "unix:" + socket_path();
        listener_ = std::make_unique<Listener>(*store_, o, hooks::SecretBuffer(std::string(kSecret)));
        listener_->start();
    }

    // Sends `parts` on a new connection, reading an interim answer between them, and returns all
    // the listener answers.
    std::string exchange(const std::vector<std::string>& parts) const {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, socket_path().c_str(), sizeof addr.sun_path - 1);
        return it::exchange(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), reinterpret_cast<sockaddr*>(&addr), sizeof addr,
                            parts);
    }
    std::string exchange(const std::string& raw) const { return exchange(std::vector<std::string>{raw}); }

    static std::string signed_github(const std::string& body) {
        return post("X-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=" + hmac_sha256_hex(kSecret, body) + "\r\n", body);
    }

    std::vector<std::string> refreshed() {
        const std::lock_guard lock(mu_);
        return refreshed_;
    }

    fsys::path dir_;
    std::unique_ptr<Store> store_;
    std::unique_ptr<Listener> listener_;
    std::mutex mu_;
    std::vector<std::string> refreshed_;
};

TEST_F(ListenerTest, AVerifiedPushRefreshesTheSitesFollowingIt) {
    start();
    const std::string answer = exchange(signed_github(github_push("refs/heads/main")));
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 200 ")) << answer;
    EXPECT_NE(answer.find("refreshed: blog docs"), std::string::npos) << answer;
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
    EXPECT_EQ(refreshed(), (std::vector<std::string>{"blog", "docs"}));

    const std::string tag = exchange(signed_github(github_push("refs/tags/v1")));
    EXPECT_NE(tag.find("is not a branch; no site follows it"), std::string::npos) << tag;
    const std::string elsewhere = exchange(signed_github(github_push("refs/heads/feature")));
    EXPECT_NE(elsewhere.find("no site follows github.com/owner/site branch feature"), std::string::npos) << elsewhere;
    EXPECT_EQ(refreshed().size(), 2u) << "a tag or another branch refreshes nothing";
}

TEST_F(ListenerTest, UnsignedAndWronglySignedPushesAre401AndCounted) {
    start();
    const std::string body = github_push("refs/heads/main");
    EXPECT_TRUE(exchange(post("X-GitHub-Event: push\r\n", body)).starts_with("HTTP/1.1 401 "));
    EXPECT_TRUE(exchange(post("X-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=" +
                                  hmac_sha256_hex("not the secret", body) + "\r\n",
                              body))
                    .starts_with("HTTP/1.1 401 "));
    EXPECT_TRUE(exchange(post("X-Gitlab-Event: Push Hook\r\nX-Gitlab-Token: guess\r\n", body)).starts_with("HTTP/1.1 401 "));
    EXPECT_TRUE(refreshed().empty());
    const std::string m = listener_->metrics();
    EXPECT_NE(m.find("sitesfs_webhook_requests_total{outcome=\"bad_signature\"} 2"), std::string::npos) << m;
    EXPECT_NE(m.find("sitesfs_webhook_requests_total{outcome=\"missing_signature\"} 1"), std::string::npos) << m;
    EXPECT_NE(m.find("sitesfs_webhook_requests_total{outcome=\"refreshed\"} 0"), std::string::npos) << m;
}

TEST_F(ListenerTest, PingAndOtherEvents) {
    start();
    const auto signed_event = [](const std::string& event) {
        return post("X-GitHub-Event: " + event + "\r\nX-Hub-Signature-256: sha256=" + hmac_sha256_hex(kSecret, "{}") + "\r\n",
                    "{}");
    };
    EXPECT_TRUE(exchange(signed_event("ping")).starts_with("HTTP/1.1 200 "));
    EXPECT_TRUE(exchange(signed_event("issues")).starts_with("HTTP/1.1 202 "));
    EXPECT_TRUE(exchange(signed_event("push")).starts_with("HTTP/1.1 400 ")) << "a push without a ref";
    EXPECT_TRUE(exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 405 "));
}

// A push the store could not take is not answered as done: the sender's delivery log shows it.
TEST_F(ListenerTest, ARefreshTheStoreRefusesIs503) {
    store_.reset();
    store_ = open_file_store({dir_ / "state", true, {}});  // read-only: every write is EROFS
    start();
    const std::string answer = exchange(signed_github(github_push("refs/heads/main")));
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 503 ")) << answer;
    EXPECT_NE(answer.find("the store did not take the refresh of blog docs"), std::string::npos) << answer;
    EXPECT_NE(listener_->metrics().find("outcome=\"unavailable\"} 1"), std::string::npos) << listener_->metrics();
}

TEST_F(ListenerTest, OversizedBodiesSlowClientsAndFloods) {
    ListenerOptions o;
    o.limits.max_body = 2048;
    o.read_timeout = std::chrono::milliseconds(300);
    o.rate = 1;
    o.burst = 3;
    start(o);
    const std::string big = exchange(signed_github(std::string(4096, ' ')));
    EXPECT_TRUE(big.starts_with("HTTP/1.1 413 ")) << "the answer survives the unread body: " << big;
    const std::string slow = exchange("POST /hook HTTP/1.1\r\nContent-Length: 10\r\n\r\n{");
    EXPECT_TRUE(slow.starts_with("HTTP/1.1 408 ")) << slow;
    int limited = 0;
    for (int i = 0; i < 5; ++i) limited += exchange(signed_github(github_push("refs/heads/x"))).starts_with("HTTP/1.1 429 ");
    EXPECT_GE(limited, 3) << "a burst of 3, one more a second";
    EXPECT_NE(listener_->metrics().find("outcome=\"rate_limited\"} " + std::to_string(limited)), std::string::npos);
}

// A client that sends "Expect: 100-continue" (libcurl before a body over 1 MiB) holds the body back
// until it hears "100 Continue" (or a second passes): a push is answered without that wait, and a
// body the head already shows too large is refused before it is sent.
TEST_F(ListenerTest, ExpectContinueIsAnsweredBeforeTheBody) {
    ListenerOptions o;
    o.limits.max_body = 4096;
    start(o);
    const std::string body = github_push("refs/heads/main");
    const std::string whole = signed_github(body);
    const std::string head = whole.substr(0, whole.size() - body.size());
    const std::string expect = "Expect: 100-continue\r\n";
    const std::string asking = head.substr(0, head.size() - 2) + expect + "\r\n";
    const std::string answer = exchange({asking, body});
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 ")) << answer;
    EXPECT_EQ(refreshed(), (std::vector<std::string>{"blog", "docs"}));

    const std::string too_large = exchange(
        {"POST /hook HTTP/1.1\r\nX-GitHub-Event: push\r\n" + expect + "Content-Length: 5000\r\n\r\n", std::string(5000, ' ')});
    EXPECT_TRUE(too_large.starts_with("HTTP/1.1 413 ")) << "no 100 for a body refused from the head: " << too_large;

    EXPECT_EQ(parse_request("POST /hook HTTP/1.0\r\n" + expect + "Content-Length: 2\r\n\r\n", {}).wants_continue, false)
        << "never a 1xx to an HTTP/1.0 client";
    const HttpParse other = parse_request("POST /hook HTTP/1.1\r\nExpect: something-else\r\nContent-Length: 2\r\n\r\n", {});
    EXPECT_EQ(other.state, State::refused);
    EXPECT_EQ(other.status, 417);
}

TEST_F(ListenerTest, TheSocketIsTheDaemonsAndGoesAtStop) {
    start();
    struct stat st{};
    ASSERT_EQ(lstat(socket_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0660u);
    listener_->stop();
    EXPECT_FALSE(fsys::exists(socket_path()));
}

TEST(ListenAddress, OnlyLoopbackOrAUnixSocket) {
    for (const char* ok : {"127.0.0.1:9418", "[::1]:9418", "127.0.0.2:1", "unix:/run/sitesfs/webhook.sock"})
        EXPECT_EQ(listen_address_problem(ok), "") << ok;
    for (const char* bad : {"0.0.0.0:9418", "192.0.2.1:9418", "[::]:9418", "localhost:9418", "127.0.0.1", "127.0.0.1:0",
                            "unix:relative.sock", "9418"})
        EXPECT_NE(listen_address_problem(bad), "") << bad;
}

}  // namespace
}  // namespace sitesfs::webhook
