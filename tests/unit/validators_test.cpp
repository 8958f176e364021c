#include <gtest/gtest.h>

#include <random>

#include "schemas/validators.hpp"

namespace sitesfs {
namespace {

const ValidationPolicy kStrict{};
const ValidationPolicy kLocal{true};

void expect_accepts(Checked (*check)(std::string_view, const ValidationPolicy&), std::string_view in,
                    std::string_view normalized, const ValidationPolicy& p = kStrict) {
    const Checked c = check(in, p);
    EXPECT_TRUE(c.ok) << "'" << in << "' refused: " << c.reason;
    EXPECT_EQ(c.value, normalized) << in;
}

void expect_refuses(Checked (*check)(std::string_view, const ValidationPolicy&), std::string_view in,
                    const ValidationPolicy& p = kStrict) {
    const Checked c = check(in, p);
    EXPECT_FALSE(c.ok) << "'" << in << "' was accepted as '" << c.value << "'";
    EXPECT_FALSE(c.reason.empty()) << in;
}

TEST(Trim, RemovesSurroundingWhitespaceOnly) {
    EXPECT_EQ(trim("  a b \n\t\r\v\f"), "a b");
    EXPECT_EQ(trim("\n"), "");
}

TEST(SiteName, AllowList) {
    for (auto ok : {"blog", "a", "0site", "my-site.example"}) EXPECT_TRUE(check_site_name(ok).ok) << ok;
    EXPECT_TRUE(check_site_name(std::string(63, 'a')).ok);
    for (auto bad : {"", "Blog", "-x", ".hidden", "a_b", "a/b", "..", ".", "a b", "é"})
        EXPECT_FALSE(check_site_name(bad).ok) << bad;
    EXPECT_FALSE(check_site_name(std::string(64, 'a')).ok);
}

TEST(Domain, NormalizesCaseIdnaAndLists) {
    expect_accepts(check_domain, "blog.example.com", "blog.example.com");
    expect_accepts(check_domain, "BLOG.Example.COM", "blog.example.com");
    expect_accepts(check_domain, "bücher.de", "xn--bcher-kva.de");
    expect_accepts(check_domain, "xn--bcher-kva.de", "xn--bcher-kva.de");
    expect_accepts(check_domain, "*.example.com", "*.example.com");
    expect_accepts(check_domain, "localhost", "localhost");
    expect_accepts(check_domain, "a.com\nwww.a.com\t b.org", "a.com www.a.com b.org");
    expect_accepts(check_domain, "", "");
}

TEST(Domain, RefusesMalformedNames) {
    for (auto bad : {"bad..com", ".a.com", "a.com.", "-a.com", "a-.com", "*.", "*.com", "a.*.com", "*a.com", "1.2.3.4",
                     "example.123", "a.com a.com", "xn--zz.com"})
        expect_refuses(check_domain, bad);
    expect_refuses(check_domain, std::string(64, 'a') + ".com");
    expect_refuses(check_domain, std::string(250, 'a').insert(60, ".").insert(120, ".").insert(180, ".") + ".com");
}

TEST(Domain, RefusesEveryProxyConfigInjection) {
    for (auto bad : {"a.com}", "a.com{", "{", "}", "#a.com", "a.com#x", "\"a.com\"", "'a.com'", "`a.com`", "{$HOME}",
                     "$HOME.com", "a.com:8080", ":80", "http://a.com", "a.com/x", "a.com;b.com", "a.com\n}\nimport x",
                     "a\xe2\x80\xa4" "com", "\xe2\x80\xae" "moc.a", "a.com\\", "a@b.com", "a.com\x01"})
        expect_refuses(check_domain, bad);
}

TEST(Domain, RandomHostileInputNeverYieldsForeignCharacters) {
    const std::string alphabet = "{}#\"'`$\n :;/\\@abcxyz.-*0123456789";
    std::mt19937 rng(42);
    for (int i = 0; i < 5000; ++i) {
        std::string in;
        const int len = 1 + static_cast<int>(rng() % 24);
        for (int j = 0; j < len; ++j) in += alphabet[rng() % alphabet.size()];
        const Checked c = check_domain(in, kStrict);
        if (!c.ok) continue;
        for (char ch : c.value)
            ASSERT_TRUE((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '*' || ch == ' ')
                << "'" << in << "' -> '" << c.value << "'";
        ASSERT_EQ(c.value.find("  "), std::string::npos);
    }
}

TEST(Repo, AcceptedForms) {
    expect_accepts(check_repo, "https://github.com/user/blog", "https://github.com/user/blog");
    expect_accepts(check_repo, "HTTPS://GitHub.com/user/blog.git/", "https://github.com/user/blog.git");
    expect_accepts(check_repo, "https://git.example.com:8443/a/b", "https://git.example.com:8443/a/b");
    expect_accepts(check_repo, "ssh://git@github.com/user/blog.git", "ssh://git@github.com/user/blog.git");
    expect_accepts(check_repo, "git@github.com:owner/repo.git", "git@github.com:owner/repo.git");
    expect_accepts(check_repo, "user/blog", "user/blog");
    expect_accepts(check_repo, "file:///srv/git/blog.git", "file:///srv/git/blog.git", kLocal);
    expect_accepts(check_repo, "/srv/git/blog.git", "/srv/git/blog.git", kLocal);
}

TEST(Repo, RefusedForms) {
    for (auto bad : {"http://github.com/u/b", "git://github.com/u/b", "ext::sh -c touch% /tmp/x", "ext::sh", "-uhttps://x/y",
                     "--upload-pack=x", "https://user:pw@github.com/u/b", "https://github.com/u/b?x=1", "https://github.com/u/b#x",
                     "https://github.com/../etc", "https://github.com", "https://github.com/u b", "https://gith ub.com/u/b",
                     "git@github.com:/abs", "git@github.com:-x", "u/b/c", "-u/b", "u/..", "fd::x", "https://x/y\x01",
                     "file:///srv/git/blog.git", "/srv/git/blog.git", "https://-bad.com/x"})
        expect_refuses(check_repo, bad);
    EXPECT_NE(check_repo("file:///x", kStrict).reason.find("--allow-local-repos"), std::string::npos);
    expect_refuses(check_repo, "file:///srv/../etc", kLocal);
}

TEST(Repo, FetchUrlExpandsGithubShorthandOnly) {
    EXPECT_EQ(repo_fetch_url("user/blog"), "https://github.com/user/blog.git");
    EXPECT_EQ(repo_fetch_url("user/blog.git"), "https://github.com/user/blog.git");
    EXPECT_EQ(repo_fetch_url("https://x.org/a/b"), "https://x.org/a/b");
}

TEST(Branch, GitRefRules) {
    for (auto ok : {"main", "feature/x", "v1.2", "release-2026"}) expect_accepts(check_branch, ok, ok);
    for (auto bad : {"a..b", "a@{1}", "a\\b", "-x", "/x", "refs/heads/main", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[",
                     "x.lock", "a/", "@", "a/.b"})
        expect_refuses(check_branch, bad);
}

TEST(Path, RelativeAndNeverGit) {
    expect_accepts(check_path, "public", "public");
    expect_accepts(check_path, "site/dist/", "site/dist");
    for (auto bad : {"/etc", "..", "a/../b", "a//b", "./a", ".git", "a/.git/b", "a b", "a\nb"}) expect_refuses(check_path, bad);
}

TEST(DeployKeyRef, ProviderColonName) {
    expect_accepts(check_deploy_key_ref, "file:blog", "file:blog");
    expect_accepts(check_deploy_key_ref, "cmd:blog-key.v2", "cmd:blog-key.v2");
    for (auto bad : {"blog", ":x", "file:", "File:x", "file:../x", "file:a/b", "file:.x", "cmd:a b", "cmd:$(x)"})
        expect_refuses(check_deploy_key_ref, bad);
}

TEST(Commit, SevenToFortyHexLowercased) {
    expect_accepts(check_commit, "ABC1234", "abc1234");
    expect_accepts(check_commit, std::string(40, 'f'), std::string(40, 'f'));
    for (auto bad : {"abc123", "xyz1234", "abc1234 ", "HEAD"}) expect_refuses(check_commit, bad);
    expect_refuses(check_commit, std::string(41, 'a'));
}

TEST(Validators, EveryRefusalNamesTheValue) {
    EXPECT_NE(check_domain("bad..com", kStrict).reason.find("bad..com"), std::string::npos);
    EXPECT_NE(check_repo("http://x/y", kStrict).reason.find("http://x/y"), std::string::npos);
    EXPECT_NE(check_commit("xyz", kStrict).reason.find("xyz"), std::string::npos);
}

}  // namespace
}  // namespace sitesfs
