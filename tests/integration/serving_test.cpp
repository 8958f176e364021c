// The serving fields and a release's own rules files, end to end: written through the mount,
// deployed by the reconciler, served by a real Caddy (docs/serving.md). What each option makes
// Caddy answer in detail is proxy_tests' `Serving` suite; here it is the path from a write to it.
#include <sys/stat.h>

#include <map>

#include "tests/integration/deploy_fixture.hpp"

namespace sitesfs::it {
namespace {

class ServingOptions : public DeployTest {
protected:
    void before_start() override {
        const auto hashed = run({"caddy", "hash-password", "--plaintext", "s3cret"}, {.timeout = 20s});
        ASSERT_EQ(hashed.code, 0) << describe(hashed);
        stdfs::create_directories(tmp() / "keys");
        spit(tmp() / "keys" / "staff", "# who may read the staging site\nalice " + hashed.out);
        ::chmod((tmp() / "keys" / "staff").c_str(), 0600);
        spit(tmp() / "keys" / "broken", "alice not-a-hash\n");
        ::chmod((tmp() / "keys" / "broken").c_str(), 0600);
    }

    std::string extra_config() const override { return "[keys]\ndir = \"" + (tmp() / "keys").string() + "\"\n"; }

    // curl's status code for a path, with `extra` arguments (-u USER:PASSWORD).
    int status_of_get(const std::string& host, const std::string& path, const std::vector<std::string>& extra = {}) const {
        std::vector<std::string> argv{"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H", "Host: " + host};
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.push_back("http://" + caddy_->address() + path);
        const auto r = run(argv, {.timeout = 20s});
        return r.code == 0 ? std::stoi(r.out.substr(0, 3)) : -1;
    }
};

TEST_F(ServingOptions, ABadRedirectsLineFailsTheStageAndThePreviousReleaseKeepsServing) {
    const std::string good = repo_->commit({{"index.html", "v1\n"}, {"_redirects", "/old / 301\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + good + "\n") << daemon_log();
    EXPECT_EQ(status_of_get("blog.test", "/old"), 301);
    EXPECT_EQ(status_of_get("blog.test", "/_redirects"), 404);
    const std::string bad = repo_->commit({{"index.html", "v2\n"},
                                           {"_redirects", "# moved pages\n/old / 301\n/shop https://shop.test/ 303\n"}});
    ASSERT_TRUE(shell("echo main > blog/branch"));
    const std::string outcome = wait("blog");
    EXPECT_EQ(outcome.substr(0, 7), "failed ") << outcome;
    EXPECT_NE(status_line("blog", "error").find("stage: _redirects line 3: "), std::string::npos) << status_of("blog");
    EXPECT_NE(status_line("blog", "error").find("303"), std::string::npos) << status_of("blog");
    EXPECT_EQ(body("blog.test"), "v1\n");
    EXPECT_EQ(status_of_get("blog.test", "/old"), 301);
    EXPECT_FALSE(stdfs::exists(data() / "blog" / "releases" / bad)) << "a release that failed its stage is not kept";
}

TEST_F(ServingOptions, EachFieldChangesWhatVisitorsGetAndARestartKeepsIt) {
    const std::string sha = repo_->commit({{"index.html", "shell\n"}, {"app.js", "js\n"}});
    ASSERT_EQ(create_site("blog", "blog.test www.blog.test"), "live " + sha + "\n") << daemon_log();
    EXPECT_EQ(status_of_get("blog.test", "/dashboard"), 404);
    EXPECT_EQ(status_of_get("www.blog.test", "/"), 200);

    ASSERT_TRUE(shell("echo SPA > blog/routing && echo redirect > blog/aliases && cat blog/routing blog/aliases",
                      {.out = "spa\nredirect\n"}));
    EXPECT_EQ(wait("blog"), "live " + sha + "\n") << daemon_log();
    EXPECT_EQ(body("blog.test", "/dashboard/settings"), "shell\n");
    EXPECT_EQ(status_of_get("blog.test", "/missing.js"), 404);
    EXPECT_EQ(status_of_get("www.blog.test", "/a?b=1"), 308);

    // Behind basic auth the health check sees 401 with the new commit, and the deploy goes live.
    ASSERT_TRUE(shell("echo file:staff > blog/auth_ref"));
    EXPECT_EQ(wait("blog"), "live " + sha + "\n") << daemon_log();
    EXPECT_EQ(status_of_get("blog.test", "/"), 401);
    EXPECT_EQ(status_of_get("blog.test", "/", {"-u", "alice:s3cret"}), 200);
    EXPECT_EQ(status_of_get("blog.test", "/", {"-u", "alice:wrong"}), 401);
    // The hashes are read at deploy time and never stored by sitesfs.
    const std::string hash_line = slurp(tmp() / "keys" / "staff");
    const std::string hash = hash_line.substr(hash_line.rfind(' ') + 1, 60);
    EXPECT_EQ(run({"grep", "-rlF", hash, state().string()}).code, 1) << "a hash in the state dir";

    // A restart serves the site as it was deployed: password included.
    ASSERT_NO_FATAL_FAILURE(restart());
    ASSERT_TRUE(eventually([&] { return status_line("blog", "state") == "live"; }, 30s, 100ms)) << daemon_log();
    EXPECT_EQ(status_of_get("blog.test", "/"), 401);
    EXPECT_EQ(status_of_get("blog.test", "/dashboard", {"-u", "alice:s3cret"}), 200);
    EXPECT_EQ(status_of_get("www.blog.test", "/"), 308);
}

TEST_F(ServingOptions, AnAuthRefThatDoesNotResolveFailsTheDeployAndChangesNothingServed) {
    const std::string sha = repo_->commit({{"index.html", "open\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log();
    for (const std::string ref : {"file:broken", "file:nobody"}) {
        ASSERT_TRUE(shell("echo " + ref + " > blog/auth_ref"));
        const std::string outcome = wait("blog");
        EXPECT_EQ(outcome.substr(0, 7), "failed ") << outcome;
        EXPECT_NE(status_line("blog", "error").find("proxy: auth_ref " + ref), std::string::npos) << status_of("blog");
        EXPECT_EQ(body("blog.test"), "open\n");
    }
    ASSERT_TRUE(shell("echo nope > blog/auth_ref", {.code = 1, .err_has = "Invalid argument"}));
    EXPECT_NE(status_line("blog", "error").find("auth_ref 'nope': write PROVIDER:NAME"), std::string::npos) << status_of("blog");
}

// A real generator's output, as it would go to Netlify: Debian's Hugo builds a small site whose
// static/ holds _redirects and _headers and whose layouts make a 404 page; the built tree is
// committed and deployed through the mount.
TEST_F(ServingOptions, AHugoBuildBehavesAsOnNetlify) {
    const stdfs::path src = tmp() / "hugo-site";
    const std::map<std::string, std::string> site{
        {"hugo.toml", "baseURL = '/'\ntitle = 'Blog'\ndisableKinds = ['taxonomy', 'term']\n"},
        {"content/posts/hello.md", "---\ntitle: Hello\n---\nHello from Hugo.\n"},
        {"layouts/index.html", "<h1>{{ .Site.Title }}</h1>{{ range .Site.RegularPages }}<a href=\"{{ .RelPermalink }}\">{{ .Title }}</a>{{ end }}\n"},
        {"layouts/_default/single.html", "<article>{{ .Content }}</article>\n"},
        {"layouts/_default/list.html", "<ul>{{ range .Pages }}<li>{{ .Title }}</li>{{ end }}</ul>\n"},
        {"layouts/404.html", "<p>No such page on {{ .Site.Title }}.</p>\n"},
        {"static/_redirects", "/old-post  /posts/hello/  301\n/feed      /index.xml     302\n"},
        {"static/_headers", "/posts/*\n  X-Frame-Options: DENY\n"},
    };
    for (const auto& [path, text] : site) {
        stdfs::create_directories((src / path).parent_path());
        spit(src / path, text);
    }
    const stdfs::path out = tmp() / "hugo-public";
    const auto built = run({"hugo", "--source", src.string(), "--destination", out.string(), "--quiet"},
                           // Hugo's cache goes to TMPDIR/hugo_cache: the test's own, not /tmp's.
                           {.timeout = 60s, .env = {"HOME=" + (tmp() / "home").string(), "TMPDIR=" + (tmp() / "home").string()}});
    ASSERT_EQ(built.code, 0) << describe(built);
    std::map<std::string, std::string> files;
    for (const auto& e : stdfs::recursive_directory_iterator(out))
        if (e.is_regular_file()) files[e.path().lexically_relative(out).string()] = slurp(e.path());
    ASSERT_TRUE(files.contains("posts/hello/index.html") && files.contains("404.html") && files.contains("_redirects"))
        << files.size() << " files built";
    const std::string sha = repo_->commit(files);
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log();

    EXPECT_NE(body("blog.test", "/").find("<h1>Blog</h1>"), std::string::npos);
    EXPECT_NE(body("blog.test", "/posts/hello/").find("Hello from Hugo."), std::string::npos);
    EXPECT_EQ(status_of_get("blog.test", "/posts/hello"), 308);  // to the directory, as Netlify does
    EXPECT_EQ(status_of_get("blog.test", "/no/such/page"), 404);
    EXPECT_NE(body("blog.test", "/no/such/page").find("No such page on Blog."), std::string::npos);
    EXPECT_EQ(status_of_get("blog.test", "/old-post"), 301);
    EXPECT_EQ(status_of_get("blog.test", "/feed"), 302);
    EXPECT_EQ(status_of_get("blog.test", "/_redirects"), 404);
    EXPECT_EQ(header("blog.test", "X-Frame-Options"), "<no X-Frame-Options>") << "only under /posts/";
    const auto post = run({"curl", "-sI", "-H", "Host: blog.test", "http://" + caddy_->address() + "/posts/hello/"});
    EXPECT_NE(post.out.find("X-Frame-Options: DENY"), std::string::npos) << post.out;
}

}  // namespace
}  // namespace sitesfs::it
