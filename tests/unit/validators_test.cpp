#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "schemas/validators.hpp"

namespace sitesfs {
namespace {

using Check = Checked (*)(std::string_view, const ValidationPolicy&);

const ValidationPolicy kStrict{};
const ValidationPolicy kLocal{true};

bool has_control(std::string_view s) {
    for (char c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
    return false;
}

void expect_accepts(Check check, std::string_view in, std::string_view normalized, const ValidationPolicy& p = kStrict) {
    const Checked c = check(in, p);
    EXPECT_TRUE(c.ok) << "'" << in << "' refused: " << c.reason;
    EXPECT_EQ(c.value, normalized) << in;
}

// `shown` is how the reason quotes the offending value: the value itself, unless it holds bytes
// outside printable ASCII (those are escaped) or it is one name of a domain list.
void expect_refuses(Check check, std::string_view in, std::string_view shown, const ValidationPolicy& p = kStrict) {
    const Checked c = check(in, p);
    EXPECT_FALSE(c.ok) << "'" << in << "' was accepted as '" << c.value << "'";
    EXPECT_TRUE(c.value.empty()) << in;
    EXPECT_NE(c.reason.find("'" + std::string(shown) + "'"), std::string::npos) << "reason: " << c.reason;
    EXPECT_FALSE(has_control(c.reason)) << c.reason;
}

void expect_refuses(Check check, std::string_view in, const ValidationPolicy& p = kStrict) {
    expect_refuses(check, in, in, p);
}

void expect_reason_has(Check check, std::string_view in, std::string_view part, const ValidationPolicy& p = kStrict) {
    const Checked c = check(in, p);
    EXPECT_FALSE(c.ok) << in;
    EXPECT_NE(c.reason.find(part), std::string::npos) << "reason for '" << in << "': " << c.reason;
}

std::string random_string(std::mt19937& rng, const std::vector<std::string>& pieces, size_t max_pieces) {
    std::string out;
    const size_t n = 1 + rng() % max_pieces;
    for (size_t i = 0; i < n; ++i) out += pieces[rng() % pieces.size()];
    return out;
}

std::vector<std::string> single_chars(std::string_view alphabet) {
    std::vector<std::string> out;
    for (char c : alphabet) out.emplace_back(1, c);
    return out;
}

// ---- trim and site names ----

TEST(Trim, RemovesSurroundingAsciiWhitespaceOnly) {
    EXPECT_EQ(trim("  a b \n\t\r\v\f"), "a b");
    EXPECT_EQ(trim("\f\va\n"), "a");
    EXPECT_EQ(trim("\n"), "");
    EXPECT_EQ(trim(""), "");
    EXPECT_EQ(trim("a\nb"), "a\nb");
}

TEST(SiteName, AcceptsLowercaseNames) {
    for (auto ok : {"blog", "a", "0site", "my-site.example", "a-", "a."}) EXPECT_EQ(check_site_name(ok).value, ok);
    EXPECT_TRUE(check_site_name(std::string(63, 'a')).ok);
}

TEST(SiteName, RefusesEverythingElse) {
    for (auto bad : {"Blog", "-x", ".hidden", "a_b", "a/b", "..", ".", "a b", "a:b"}) {
        const Checked c = check_site_name(bad);
        EXPECT_FALSE(c.ok) << bad;
        EXPECT_NE(c.reason.find(std::string("'") + bad + "'"), std::string::npos) << c.reason;
    }
    EXPECT_FALSE(check_site_name("").ok);
    EXPECT_FALSE(check_site_name(std::string(64, 'a')).ok);
    EXPECT_NE(check_site_name("caf\xc3\xa9").reason.find("caf\\xc3\\xa9"), std::string::npos);
    EXPECT_EQ(check_site_name("a\nb").reason.find('\n'), std::string::npos);
}

// ---- every field ----

TEST(Fields, EmptyMeansUnset) {
    for (Check check : {check_repo, check_domain, check_branch, check_path, check_deploy_key_ref, check_commit, check_hosts}) {
        expect_accepts(check, "", "");
        expect_accepts(check, "", "", kLocal);
    }
}

TEST(Fields, ReasonsStartWithTheFieldAndNameTheValue) {
    EXPECT_EQ(check_domain("bad..com", kStrict).reason, "domain 'bad..com': label 2 is empty");
    EXPECT_EQ(check_repo("http://x/y", kStrict).reason, "repo 'http://x/y': plain http is not allowed, use https://");
    EXPECT_EQ(check_commit("xyz", kStrict).reason, "commit 'xyz': write 7 to 40 hex digits, or nothing to follow the branch");
    EXPECT_EQ(check_branch("a b", kStrict).reason.rfind("branch 'a b': ", 0), 0u);
    EXPECT_EQ(check_path("/x", kStrict).reason.rfind("path '/x': ", 0), 0u);
    EXPECT_EQ(check_deploy_key_ref("x", kStrict).reason.rfind("deploy_key_ref 'x': ", 0), 0u);
}

TEST(Fields, LongValuesAreShownShortened) {
    const std::string path(1025, 'a');
    const Checked c = check_path(path, kStrict);
    EXPECT_FALSE(c.ok);
    EXPECT_NE(c.reason.find("'" + std::string(80, 'a') + "...'"), std::string::npos) << c.reason;
    EXPECT_NE(c.reason.find("1024"), std::string::npos) << c.reason;
}

// Reasons land in the one-line `status` file: hostile values must not break or forge lines.
TEST(Fields, ReasonsNeverCarryControlCharacters) {
    std::mt19937 rng(7);
    const auto pieces = single_chars("ab.:/@-\n\r\t\x01\x1b\x7f\xe2\x80\xae{}'\"");
    for (int i = 0; i < 2000; ++i) {
        const std::string in = random_string(rng, pieces, 16);
        for (Check check : {check_repo, check_domain, check_branch, check_path, check_deploy_key_ref, check_commit, check_hosts}) {
            const Checked c = check(in, kLocal);
            ASSERT_FALSE(has_control(c.reason)) << c.reason;
            if (!c.ok) {
                ASSERT_FALSE(c.reason.empty()) << in;
            }
        }
        ASSERT_FALSE(has_control(check_site_name(in).reason));
    }
}

// ---- domain ----

TEST(Domain, NormalizesCaseAndIdna) {
    expect_accepts(check_domain, "blog.example.com", "blog.example.com");
    expect_accepts(check_domain, "BLOG.Example.COM", "blog.example.com");
    expect_accepts(check_domain, "bücher.de", "xn--bcher-kva.de");
    expect_accepts(check_domain, "Bücher.DE", "xn--bcher-kva.de");
    expect_accepts(check_domain, "xn--bcher-kva.de", "xn--bcher-kva.de");
    expect_accepts(check_domain, "\xef\xbd\x81\xef\xbd\x82\xef\xbd\x83.com", "abc.com");  // fullwidth letters map to ASCII
    expect_accepts(check_domain, "*.example.com", "*.example.com");
    expect_accepts(check_domain, "*.bücher.de", "*.xn--bcher-kva.de");
    expect_accepts(check_domain, "localhost", "localhost");
    expect_accepts(check_domain, "import.example.com", "import.example.com");
    expect_accepts(check_domain, "a1.example-2.com", "a1.example-2.com");
    expect_accepts(check_domain, "1.2.3.example", "1.2.3.example");
}

TEST(Domain, ListsAreSplitOnWhitespaceAndJoinedBySingleSpaces) {
    expect_accepts(check_domain, "a.com www.a.com", "a.com www.a.com");
    expect_accepts(check_domain, "a b", "a b");
    expect_accepts(check_domain, "a.com\nwww.a.com\t b.org\r\nc.net   d.io", "a.com www.a.com b.org c.net d.io");
}

TEST(Domain, OnlySpaceTabNewlineAndReturnSeparate) {
    expect_refuses(check_domain, "a.com\vb.com", "a.com\\x0bb.com");
    expect_refuses(check_domain, "a.com\fb.com", "a.com\\x0cb.com");
}

TEST(Domain, LengthLimits) {
    const std::string label63(63, 'a');
    expect_accepts(check_domain, label63 + ".com", label63 + ".com");
    expect_refuses(check_domain, label63 + "a.com");
    const std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
    ASSERT_EQ(name253.size(), 253u);
    expect_accepts(check_domain, name253, name253);
    expect_reason_has(check_domain, name253 + "b", "longer than 253");
    expect_reason_has(check_domain, std::string(4097, 'a'), "4096");
}

TEST(Domain, AtMostOneHundredNames) {
    std::string list;
    for (int i = 0; i < 100; ++i) list += "s" + std::to_string(i) + ".com ";
    EXPECT_TRUE(check_domain(trim(list), kStrict).ok);
    expect_reason_has(check_domain, list + "extra.com", "at most 100 names");
}

TEST(Domain, RefusesMalformedNames) {
    for (auto bad : {"bad..com", "..", ".", ".a.com", "-a.com", "a-.com", "a.-b.com", "*.", "*", "*.com", "a.*.com", "*a.com",
                     "a*.com", "*.*.com", "1.2.3.4", "127.0.0.1", "example.123", "0"})
        expect_refuses(check_domain, bad);
    expect_reason_has(check_domain, "a.com.", "remove the trailing dot");
    expect_reason_has(check_domain, "-a.com", "label 1 starts or ends with '-'");
    expect_reason_has(check_domain, "*.com", "at least two labels");
    expect_reason_has(check_domain, "a.*.com", "whole first label");
    expect_reason_has(check_domain, "1.2.3.4", "IP addresses are not allowed");
}

TEST(Domain, PunycodeMustRoundTrip) {
    for (auto bad : {"xn--zz.com", "xn--a.com", "xn--.com", "xn--ls8h.com", "xn--bcher-kva-.de"}) expect_refuses(check_domain, bad);
    expect_reason_has(check_domain, "xn--a.com", "label 1 is not valid punycode");
}

TEST(Domain, ANameListedAgainCountsOnce) {
    for (auto [raw, stored] : {std::pair{"a.com a.com", "a.com"}, {"a.com\nb.com\nA.COM\n", "a.com b.com"},
                               {"bücher.de xn--bcher-kva.de", "xn--bcher-kva.de"}}) {
        const Checked c = check_domain(raw, {});
        ASSERT_TRUE(c.ok) << raw << ": " << c.reason;
        EXPECT_EQ(c.value, stored) << raw;
    }
}

TEST(Domain, RefusesProxyConfigInjection) {
    expect_refuses(check_domain, "a.com\n}\nimport /etc/x", "}");
    expect_refuses(check_domain, "a.com {\n respond hi\n}", "{");
    for (auto bad : {"{", "}", "a.com}", "a.com{", "#", "#a.com", "a.com#x", "\"a.com\"", "'a.com'", "`a.com`", "{$HOME}",
                     "$", "$HOME.com", "a.com:8080", ":80", "http://a.com", "a.com/x", "a.com;b.com", "a,b.com",
                     "a@b.com", "a_b.com", "a(b).com", "a|b.com", "a=b.com", "a%2e.com", "a!b.com", "a+b.com", "a~b.com"})
        expect_refuses(check_domain, bad);
    expect_refuses(check_domain, "a.com\\", "a.com\\\\");
    expect_refuses(check_domain, "a.com\x01", "a.com\\x01");
    expect_refuses(check_domain, "a\x7f.com", "a\\x7f.com");
    expect_refuses(check_domain, std::string("a\0b.com", 7), "a\\x00b.com");
}

// Found by fuzz_domain: the validator took "import", which the proxy renderer must refuse (it is
// the Caddyfile's import directive), so every deploy of the site failed instead of the write.
TEST(Domain, RefusesTheProxyImportDirective) {
    for (auto bad : {"import", "IMPORT", "Import"}) expect_reason_has(check_domain, bad, "the Caddyfile's import directive");
    expect_refuses(check_domain, "a.com import", "import");
    expect_refuses(check_domain, "a.com\nimport", "import");
    expect_accepts(check_domain, "import.example.com *.import.com", "import.example.com *.import.com");
}

TEST(Domain, RefusesConfusablesAndNonNames) {
    expect_refuses(check_domain, "a\xe2\x80\xa4" "com", "a\\xe2\\x80\\xa4com");              // U+2024 ONE DOT LEADER
    expect_refuses(check_domain, "\xe2\x80\xae" "moc.a", "\\xe2\\x80\\xaemoc.a");            // U+202E RTL OVERRIDE
    expect_refuses(check_domain, "\xef\xbd\x9b.com", "\\xef\\xbd\\x9b.com");                 // fullwidth '{' maps to '{'
    expect_refuses(check_domain, "a\xc2\xa0.com", "a\\xc2\\xa0.com");                        // no-break space maps to ' '
    expect_refuses(check_domain, "a.com\xef\xbc\x9a" "80", "a.com\\xef\\xbc\\x9a80");        // fullwidth ':' maps to ':'
    expect_refuses(check_domain, "\xf0\x9f\x92\xa9.com", "\\xf0\\x9f\\x92\\xa9.com");        // emoji: disallowed
    expect_refuses(check_domain, "a\xff.com", "a\\xff.com");                                 // not UTF-8
    expect_refuses(check_domain, "a\xc3.com", "a\\xc3.com");                                 // truncated UTF-8
    expect_refuses(check_domain, "a\xc0\xae" "com", "a\\xc0\\xaecom");                             // overlong '.'
    expect_refuses(check_domain, "a\xed\xa0\x80.com", "a\\xed\\xa0\\x80.com");                    // UTF-16 surrogate
    expect_reason_has(check_domain, "a\xff.com", "not valid UTF-8");
    expect_reason_has(check_domain, "\xf0\x9f\x92\xa9.com", "not a valid international name");
}

TEST(Domain, PolicyDoesNotMatter) {
    EXPECT_EQ(check_domain("a.com", kLocal).value, "a.com");
    EXPECT_FALSE(check_domain("1.2.3.4", kLocal).ok);
}

TEST(Domain, RandomHostileInputNeverYieldsForeignCharacters) {
    std::mt19937 rng(42);
    const auto pieces = single_chars("{}#\"'`$\n :;/\\@abcxyzABC..-*0123456789\t\r");
    int accepted = 0;
    for (int i = 0; i < 5000; ++i) {
        const std::string in(trim(random_string(rng, pieces, 24)));
        const Checked c = check_domain(in, kStrict);
        if (!c.ok) {
            ASSERT_FALSE(c.reason.empty()) << in;
            continue;
        }
        ++accepted;
        for (char ch : c.value)
            ASSERT_TRUE((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '*' || ch == ' ')
                << "'" << in << "' -> '" << c.value << "'";
        ASSERT_EQ(c.value.find("  "), std::string::npos) << c.value;
        if (!c.value.empty()) {
            ASSERT_TRUE(c.value.front() != ' ' && c.value.back() != ' ') << c.value;
        }
    }
    EXPECT_GT(accepted, 50);
}

// ---- repo ----

TEST(Repo, AcceptsUrlForms) {
    expect_accepts(check_repo, "https://github.com/user/blog", "https://github.com/user/blog");
    expect_accepts(check_repo, "HTTPS://GitHub.com/User/Blog.git/", "https://github.com/User/Blog.git");
    expect_accepts(check_repo, "https://git.example.com:8443/a/b", "https://git.example.com:8443/a/b");
    expect_accepts(check_repo, "https://192.0.2.10/srv/x.git", "https://192.0.2.10/srv/x.git");
    expect_accepts(check_repo, "https://h.io/a_b/c~d/e-f.g", "https://h.io/a_b/c~d/e-f.g");
    expect_accepts(check_repo, "ssh://git@github.com/user/blog.git", "ssh://git@github.com/user/blog.git");
    expect_accepts(check_repo, "SSH://deploy_1@Host.Example:2222/~deploy/x", "ssh://deploy_1@host.example:2222/~deploy/x");
    expect_accepts(check_repo, "ssh://host.example/srv/x", "ssh://host.example/srv/x");
    expect_accepts(check_repo, "ssh://_svc@h.io:65535/x", "ssh://_svc@h.io:65535/x");
}

TEST(Repo, AcceptsScpAndGithubShorthand) {
    expect_accepts(check_repo, "git@github.com:owner/repo.git", "git@github.com:owner/repo.git");
    expect_accepts(check_repo, "git@GitHub.COM:owner/repo/", "git@github.com:owner/repo");
    expect_accepts(check_repo, "git@10.0.0.1:x", "git@10.0.0.1:x");
    expect_accepts(check_repo, "user/blog", "user/blog");
    expect_accepts(check_repo, "User-1/my.blog_2.git", "User-1/my.blog_2.git");
    expect_accepts(check_repo, std::string(39, 'o') + "/" + std::string(100, 'n') + ".git",
                   std::string(39, 'o') + "/" + std::string(100, 'n') + ".git");
}

TEST(Repo, LocalRepositoriesNeedTheFlag) {
    expect_accepts(check_repo, "file:///srv/git/blog.git", "file:///srv/git/blog.git", kLocal);
    expect_accepts(check_repo, "FILE:///srv/git/blog.git/", "file:///srv/git/blog.git", kLocal);
    expect_accepts(check_repo, "/srv/git/c++_x~1.git", "/srv/git/c++_x~1.git", kLocal);
    for (auto local : {"file:///srv/git/blog.git", "/srv/git/blog.git"}) {
        expect_refuses(check_repo, local);
        expect_reason_has(check_repo, local, "local repositories need --allow-local-repos");
    }
    for (auto bad : {"file://host/x", "file://", "file:///", "file:///srv/../etc", "/srv/./x", "//srv", "/srv//x", "/a/b:c",
                     "/a/b@c", "file:///a/b%20c"})
        expect_refuses(check_repo, bad, kLocal);
    expect_reason_has(check_repo, "file://host/x", "absolute path", kLocal);
}

TEST(Repo, RefusesOtherTransportsWithSpecificReasons) {
    expect_reason_has(check_repo, "http://github.com/u/b", "plain http is not allowed, use https://");
    expect_reason_has(check_repo, "git://github.com/u/b", "unauthenticated");
    expect_reason_has(check_repo, "ext::sh", "(ext::) are not allowed");
    expect_reason_has(check_repo, "fd::17", "(fd::) are not allowed");
    expect_reason_has(check_repo, "ftp://h.io/x", "the ftp:// transport is not allowed");
    expect_reason_has(check_repo, "git+ssh://h.io/x", "the git+ssh:// transport is not allowed");
    for (auto bad : {"http://github.com/u/b", "git://github.com/u/b", "ext::sh", "fd::17", "ftp://h.io/x", "git+ssh://h.io/x",
                     "transport::x", "https::x"})
        expect_refuses(check_repo, bad);
}

TEST(Repo, RefusesOptionInjection) {
    for (auto bad : {"-uhttps://x/y", "--upload-pack=touch", "-oProxyCommand=x", "-u/b"}) {
        expect_refuses(check_repo, bad);
        expect_reason_has(check_repo, bad, "git option");
    }
    for (auto bad : {"ssh://-oProxyCommand=x@h.io/x", "git@h.io:-x", "git@h.io:~x", "-x@h.io:a", "ssh://h.io:-1/x"})
        expect_refuses(check_repo, bad);
    expect_reason_has(check_repo, "ext::sh -c touch% /tmp/x", "spaces and control characters");
}

TEST(Repo, RefusesCredentialsQueriesAndFragments) {
    for (auto bad : {"https://user:pw@github.com/u/b", "https://user@github.com/u/b", "ssh://git:pw@h.io/x", "git:pw@h.io:x"}) {
        expect_refuses(check_repo, bad);
        expect_reason_has(check_repo, bad, "credentials do not belong in the URL; use deploy_key_ref");
    }
    for (auto bad : {"https://github.com/u/b?x=1", "https://github.com/u/b#main", "https://github.com?x/u"}) {
        expect_refuses(check_repo, bad);
        expect_reason_has(check_repo, bad, "query (?) or fragment (#)");
    }
}

TEST(Repo, RefusesBadHostsPortsAndPaths) {
    for (auto bad : {"https://-bad.com/x", "https://bad-.com/x", "https://a..b/x", "https:///x", "https://h_x.com/x",
                     "https://[::1]/x", "https://999.1.1.1/x", "https://1.2.3/x", "https://01.2.3.4/x",
                     "https://0x7f.0.0.1/x", "https://h.io:0/x", "https://h.io:65536/x", "https://h.io:/x", "https://h.io:8a/x",
                     "https://h.io:1:2/x", "https://github.com", "https://github.com/", "https://github.com/../etc",
                     "https://h.io/a/./b", "https://h.io/a//b", "https://h.io/a+b", "https://h.io/a%20b", "https://h.io/a:b",
                     "https://h.io/a@b", "ssh://Git@h.io/x", "ssh://@h.io/x"})
        expect_refuses(check_repo, bad);
    expect_refuses(check_repo, "https://h.io/caf\xc3\xa9", "https://h.io/caf\\xc3\\xa9");
    expect_reason_has(check_repo, "https://github.com", "no repository path");
    expect_reason_has(check_repo, "https://h.io:0/x", "1 to 65535");
    expect_reason_has(check_repo, "https://999.1.1.1/x", "four numbers 0-255");
    expect_reason_has(check_repo, "https://h.io/a/../b", "'.' and '..' segments");
    expect_reason_has(check_repo, "https://h.io/a%20b", "character '%'");
}

TEST(Repo, RefusesMalformedScpAndShorthand) {
    for (auto bad : {"git@github.com:/abs", "git@github.com:", "git@github.com", "git@:x", "@h.io:x", "Git@h.io:x",
                     "git@h.io:a//b", "git@h.io:a/../b", "git@h_x:a", "github.com:owner/repo", "u/b/c", "u/..", "u/.",
                     "u/.git", "owner-/x", "-owner/x", "ow_ner/x", "u/", "/", "u", "u/b c", "u/b$"})
        expect_refuses(check_repo, bad);
    expect_refuses(check_repo, "C:\\x", "C:\\\\x");
    expect_refuses(check_repo, std::string(40, 'o') + "/x");
    expect_reason_has(check_repo, "o/" + std::string(101, 'n'), "not a form sitesfs accepts");
    expect_reason_has(check_repo, "u/b/c", "use https://host/path, ssh://[user@]host/path, user@host:path or GitHub owner/name");
    expect_reason_has(check_repo, "git@github.com:/abs", "must be relative");
}

TEST(Repo, RefusesWhitespaceControlAndOverlongValues) {
    expect_refuses(check_repo, "https://github.com/u b");
    expect_refuses(check_repo, "https://gith ub.com/u/b");
    expect_refuses(check_repo, "https://x/y\x01", "https://x/y\\x01");
    expect_refuses(check_repo, "https://x/y\nimport z", "https://x/y\\nimport z");
    expect_refuses(check_repo, "u/b\t", "u/b\\t");
    const std::string base = "https://h.io/";
    expect_accepts(check_repo, base + std::string(2048 - base.size(), 'a'), base + std::string(2048 - base.size(), 'a'));
    expect_reason_has(check_repo, base + std::string(2049 - base.size(), 'a'), "longer than 2048");
}

TEST(Repo, RandomHostileInputNeverYieldsUnsafeValues) {
    std::mt19937 rng(1);
    const std::vector<std::string> pieces{"https://", "ssh://", "file://", "git@", "github.com", "h.io", ":", "/", "/", "a", "b",
                                          ".", "-", "_", "~", "@", "?", "#", "::", "{", "}", "$", "\"", "'", "`", " ", "\n",
                                          "\\", ";", "%", "git", "22", "ext", "owner/", "x.git", "\t", "\x01"};
    int accepted = 0;
    for (int i = 0; i < 20000; ++i) {
        const std::string in(trim(random_string(rng, pieces, 8)));
        const Checked c = check_repo(in, i % 2 ? kLocal : kStrict);
        if (!c.ok) {
            ASSERT_FALSE(c.reason.empty()) << in;
            continue;
        }
        ++accepted;
        ASSERT_EQ(c.value.find_first_of(" \t\n\r\v\f\"'`{}#$;\\?%\x01"), std::string::npos) << in << " -> " << c.value;
        if (!c.value.empty()) {
            ASSERT_NE(c.value.front(), '-') << c.value;
        }
    }
    EXPECT_GT(accepted, 100);
}

TEST(Repo, FetchUrlExpandsGithubShorthandOnly) {
    EXPECT_EQ(repo_fetch_url("user/blog"), "https://github.com/user/blog.git");
    EXPECT_EQ(repo_fetch_url("user/blog.git"), "https://github.com/user/blog.git");
    EXPECT_EQ(repo_fetch_url("https://x.org/a/b"), "https://x.org/a/b");
    EXPECT_EQ(repo_fetch_url("git@github.com:owner/repo.git"), "git@github.com:owner/repo.git");
    EXPECT_EQ(repo_fetch_url("/srv/git/blog.git"), "/srv/git/blog.git");
    EXPECT_EQ(repo_fetch_url(""), "");
}

// ---- branch ----

TEST(Branch, AcceptsGitBranchNames) {
    for (auto ok : {"main", "feature/x", "v1.2", "release-2026", "a@b", "fix_1/sub.part", "caf\xc3\xa9"})
        expect_accepts(check_branch, ok, ok);
    expect_accepts(check_branch, std::string(255, 'b'), std::string(255, 'b'));
}

TEST(Branch, RefusesWithHumanReasons) {
    const std::vector<std::pair<std::string, std::string>> cases{
        {"a..b", "'..'"},         {"a@{1}", "'@{'"},           {"a~1", "'~'"},         {"a^", "'^'"},
        {"a:b", "':'"},           {"a?", "'?'"},               {"a*", "'*'"},          {"a[b", "'['"},
        {"-x", "git option"},     {"/x", "start with '/'"},    {"refs/heads/main", "short branch name"},
        {"a b", "spaces"},        {"a/", "end with"},          {"a.", "end with"},     {"a//b", "empty part"},
        {"a/.b", "start with '.'"}, {".a", "start with '.'"},  {"x.lock", "'.lock'"},  {"a.lock/b", "'.lock'"},
        {"@", "checked-out"},     {"HEAD", "checked-out"},     {"a{b}", "'{'"},        {"a$b", "'$'"},
        {"a\"b", "'\"'"},         {"a'b", "'''"},              {"a;b", "';'"},         {"a|b", "'|'"},
        {"a#b", "'#'"},           {"a`b", "'`'"}};
    for (const auto& [in, part] : cases) {
        expect_refuses(check_branch, in);
        expect_reason_has(check_branch, in, part);
    }
    expect_refuses(check_branch, "a\\b", "a\\\\b");
    expect_refuses(check_branch, "a\tb", "a\\tb");
    expect_refuses(check_branch, "a\x01", "a\\x01");
    expect_reason_has(check_branch, "a\x7f", "control characters");
    expect_refuses(check_branch, "a\xff", "a\\xff");
    expect_reason_has(check_branch, "a\xff", "UTF-8");
    expect_accepts(check_branch, "\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac");  // letters of other scripts stay allowed
    expect_reason_has(check_branch, std::string(256, 'b'), "longer than 255");
}

// Found by fuzz_branch: non-ASCII spaces, C1 controls and invisible marks passed, so a branch
// name could read as another in `status`; and overlong UTF-8 (C0 8B is a vertical tab) passed as
// valid, then came back from the state file as U+FFFD after a restart.
TEST(Branch, RefusesInvisibleCharactersAndMalformedUtf8) {
    const std::vector<std::pair<std::string, std::string>> invisible{
        {"a\xc2\xa0z", "U+00A0"}, {"a\xc2\x85z", "U+0085"}, {"a\xe2\x80\xaez", "U+202E"}, {"a\xe2\x80\x8bz", "U+200B"},
        {"a\xe2\x81\xa6z", "U+2066"}, {"a\xe3\x80\x80z", "U+3000"}, {"a\xef\xbb\xbfz", "U+FEFF"}, {"a\xc2\xadz", "U+00AD"}};
    for (const auto& [in, code] : invisible) expect_reason_has(check_branch, in, code);
    for (const std::string bad : {"a\xc0\x8bM", "a\xc0\xae", "a\xe0\x80\xaf", "a\xed\xa0\x80", "a\xf4\x90\x80\x80", "a\xf8\x88\x80\x80\x80"})
        expect_reason_has(check_branch, bad, "not valid UTF-8");
    expect_accepts(check_branch, "zweig-\xc3\xa4\xe2\x82\xac\xf0\x9f\x8c\xb1", "zweig-\xc3\xa4\xe2\x82\xac\xf0\x9f\x8c\xb1");
}

// ---- path ----

TEST(Path, AcceptsRelativePaths) {
    expect_accepts(check_path, "public", "public");
    expect_accepts(check_path, "site/dist/", "site/dist");
    expect_accepts(check_path, "a/b+c~d_e.f-g/.well-known", "a/b+c~d_e.f-g/.well-known");
    expect_accepts(check_path, "x.git", "x.git");
    expect_accepts(check_path, std::string(1024, 'p'), std::string(1024, 'p'));
}

TEST(Path, RefusesEscapesAndGitDirectories) {
    for (auto bad : {"/etc", "/", "..", ".", "a/../b", "a/..", "./a", "a//b", "a//", ".git", "a/.git/b", "a/.git/", ".GIT",
                     "a b", "a:b", "a$b", "a{b}", "a#b", "a'b"})
        expect_refuses(check_path, bad);
    expect_refuses(check_path, "a\\b", "a\\\\b");
    expect_refuses(check_path, "caf\xc3\xa9", "caf\\xc3\\xa9");
    expect_refuses(check_path, "a\nb", "a\\nb");
    expect_reason_has(check_path, "a/.git/b", "a .git directory is never served");
    expect_reason_has(check_path, "/etc", "relative");
    expect_reason_has(check_path, "a//b", "empty segment");
    expect_reason_has(check_path, std::string(1025, 'p'), "longer than 1024");
}

// ---- deploy_key_ref ----

TEST(DeployKeyRef, AcceptsProviderColonName) {
    for (auto ok : {"file:blog", "cmd:blog-key.v2", "vault-2:a_b@c+d=e", "p:-x"}) expect_accepts(check_deploy_key_ref, ok, ok);
    expect_accepts(check_deploy_key_ref, "a" + std::string(31, 'b') + ":" + std::string(128, 'n'),
                   "a" + std::string(31, 'b') + ":" + std::string(128, 'n'));
}

TEST(DeployKeyRef, RefusesEverythingElse) {
    for (auto bad : {"blog", ":x", "file:", "File:x", "1p:x", "file:../x", "file:a/b", "file:.x", "cmd:a b", "cmd:$(x)",
                     "file:x:y", "file:a\"b", "file:{x}", "file:a#b"})
        expect_refuses(check_deploy_key_ref, bad);
    expect_reason_has(check_deploy_key_ref, "blog", "PROVIDER:NAME");
    expect_reason_has(check_deploy_key_ref, "File:x", "provider");
    expect_reason_has(check_deploy_key_ref, "file:a/b", "name after ':'");
    expect_refuses(check_deploy_key_ref, "p" + std::string(32, 'b') + ":x");
    expect_reason_has(check_deploy_key_ref, "p:" + std::string(129, 'n'), "1-128");
    expect_refuses(check_deploy_key_ref, "file:a\nb", "file:a\\nb");
}

// ---- commit ----

TEST(Commit, SevenToFortyHexLowercased) {
    expect_accepts(check_commit, "ABC1234", "abc1234");
    expect_accepts(check_commit, "0123456789abcdefABCDEF", "0123456789abcdefabcdef");
    expect_accepts(check_commit, std::string(40, 'f'), std::string(40, 'f'));
    for (auto bad : {"abc123", "xyz1234", "abc 1234", "HEAD", "main", "abc1234g", "-abc1234", "0xabc1234"})
        expect_refuses(check_commit, bad);
    expect_refuses(check_commit, std::string(41, 'a'));
    expect_refuses(check_commit, "abc1234\n", "abc1234\\n");
}


TEST(HealthCheckField, APathThenOptionalText) {
    const ValidationPolicy p;
    EXPECT_EQ(check_health_check("", p).value, "");
    EXPECT_EQ(check_health_check("/", p).value, "/");
    EXPECT_EQ(check_health_check("/en/", p).value, "/en/");
    EXPECT_EQ(check_health_check("/health?full=1&x=%2F", p).value, "/health?full=1&x=%2F");
    // Any run of blanks between path and text is one space; the text keeps its own spaces and quotes.
    EXPECT_EQ(check_health_check("/en/ \t Welcome to  \"my\" blog", p).value, "/en/ Welcome to  \"my\" blog");
    EXPECT_EQ(check_health_check("/ Grüße", p).value, "/ Grüße");
    const HealthCheck c = split_health_check("/en/ Welcome to  blog");
    EXPECT_EQ(c.path, "/en/");
    EXPECT_EQ(c.text, "Welcome to  blog");
    EXPECT_EQ(split_health_check("/x").text, "");
}

TEST(HealthCheckField, RefusalsSayWhatToWrite) {
    const ValidationPolicy p;
    EXPECT_THAT(check_health_check("index.html", p).reason, ::testing::HasSubstr("start with the path"));
    EXPECT_THAT(check_health_check("/a\"b", p).reason, ::testing::HasSubstr("(not '\"')"));
    EXPECT_THAT(check_health_check("/%zz", p).reason, ::testing::HasSubstr("%XX"));
    EXPECT_THAT(check_health_check("/ " + std::string(201, 't'), p).reason, ::testing::HasSubstr("longer than 200"));
    EXPECT_THAT(check_health_check("/ a\u200bb", p).reason, ::testing::HasSubstr("U+200B"));
}

}  // namespace
}  // namespace sitesfs

namespace sitesfs {
namespace {

// ---- hosts ----

TEST(Hosts, HostNamesAndLabelsLowercasedInTheOrderWrittenEachOnce) {
    expect_accepts(check_hosts, "web-1", "web-1");
    expect_accepts(check_hosts, "Web-1.Example.COM label:EU", "web-1.example.com label:eu");
    expect_accepts(check_hosts, "web_2\nweb-1\t label:ssd\r\nweb-1 WEB_2 label:ssd", "web_2 web-1 label:ssd");
    expect_accepts(check_hosts, "label:eu-west.2_a", "label:eu-west.2_a");
    expect_accepts(check_hosts, "label", "label");  // a host may be called label
    expect_accepts(check_hosts, "label:" + std::string(63, 'x'), "label:" + std::string(63, 'x'));
    const std::string label63(63, 'a');
    const std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'a');
    expect_accepts(check_hosts, name253, name253);
}

TEST(Hosts, RefusalsNameTheItemAndSayWhatToWrite) {
    EXPECT_EQ(check_hosts("web-1 Web!1", kStrict).reason,
              "hosts 'Web!1': '!' is not allowed in a host name; use a-z, 0-9, '-', '.' and '_'");
    EXPECT_EQ(check_hosts("label:", kStrict).reason, "hosts 'label:': the label after 'label:' must be 1 to 63 characters");
    EXPECT_EQ(check_hosts("label:e/u", kStrict).reason, "hosts 'label:e/u': the label has '/'; use a-z, 0-9, '-', '.' and '_'");
    EXPECT_EQ(check_hosts("zone:eu", kStrict).reason,
              "hosts 'zone:eu': ':' only follows 'label', as in label:eu; a host name has none");
    expect_reason_has(check_hosts, "label:" + std::string(64, 'x'), "1 to 63 characters");
    for (auto bad : {"web..1", ".web", "web.", "caf\xc3\xa9", "a/b", "a;b", "$(id)", "web\x01"}) {
        const Checked c = check_hosts(bad, kStrict);
        EXPECT_FALSE(c.ok) << bad;
        EXPECT_THAT(c.reason, ::testing::StartsWith("hosts '")) << bad;
        EXPECT_FALSE(has_control(c.reason)) << c.reason;
    }
    expect_reason_has(check_hosts, std::string(64, 'a') + ".com", "longer than 63");
    const std::string label63(63, 'a');
    expect_reason_has(check_hosts, label63 + "." + label63 + "." + label63 + "." + std::string(62, 'a'), "at most 253");
}

TEST(Hosts, AtMostSixtyFourItems) {
    std::string list;
    for (int i = 0; i < 64; ++i) list += "web" + std::to_string(i) + " ";
    EXPECT_TRUE(check_hosts(trim(list), kStrict).ok);
    expect_reason_has(check_hosts, list + "web64", "at most 64 hosts and labels per site, this lists 65");
    expect_reason_has(check_hosts, std::string(16385, 'a'), "16384 bytes");
}

TEST(Hosts, SplitGivesBackTheStoredItems) {
    EXPECT_EQ(split_hosts("web-1 label:eu"), (std::vector<std::string>{"web-1", "label:eu"}));
    EXPECT_EQ(split_hosts(""), std::vector<std::string>{});
}

TEST(Text, APrefixIsQuotedPrintableAndCutToItsLength) {
    EXPECT_EQ(printable_prefix("short", 200), "short");
    EXPECT_EQ(printable_prefix(std::string(300, 'a'), 200), std::string(200, 'a') + "...");
    EXPECT_EQ(printable_prefix("\x1b[31m/x", 3), "\\x1b[3...") << "escaped after the cut, never split in an escape";
    EXPECT_EQ(printable_prefix("", 0), "");
}

// A write names a builder of this host's config; a stored value is read back by its form alone, so
// a builder removed from the config since fails the site's deploy instead of its state file.
TEST(Build, AWriteNamesAConfiguredBuilderAndAStoredValueOnlyAName) {
    const ValidationPolicy mount{.builders = std::vector<std::string>{"hugo", "npm-build"}};
    EXPECT_EQ(check_build("hugo", mount).value, "hugo");
    EXPECT_EQ(check_build("npm-build", mount).value, "npm-build");
    EXPECT_TRUE(check_build("", mount).ok);
    EXPECT_EQ(check_build("jekyll", mount).reason,
              "build 'jekyll': this host's config defines no such builder; it has hugo, npm-build");
    EXPECT_EQ(check_build("hugo", ValidationPolicy{.builders = std::vector<std::string>{}}).reason,
              "build 'hugo': this host's config defines no builders ([builders.NAME] in sitesfs.toml)");
    EXPECT_EQ(check_build("jekyll", ValidationPolicy{}).value, "jekyll");
    EXPECT_EQ(check_build("Hugo", ValidationPolicy{}).reason,
              "build 'Hugo': a builder's name is 1-32 of a-z, 0-9, '_', '-', starting with a letter or digit");
}

TEST(Ctl, OneVerbALineAndTheStrongestIsKept) {
    EXPECT_EQ(check_ctl("refresh", {}).value, "refresh");
    EXPECT_EQ(check_ctl("redeploy", {}).value, "redeploy");
    EXPECT_EQ(check_ctl("refresh\n\n  redeploy \nrefresh", {}).value, "redeploy") << "redeploy does all refresh does";
    const Checked blank = check_ctl("\n \n", {});
    EXPECT_TRUE(blank.ok);
    EXPECT_EQ(blank.value, "") << "blank lines ask nothing";
    for (const char* bad : {"Refresh", "refresh now", "deploy", "refresh\nrm -rf /", "--refresh", "refresh\x01"}) {
        const Checked c = check_ctl(bad, {});
        EXPECT_FALSE(c.ok) << bad;
        EXPECT_TRUE(c.reason.starts_with("ctl '")) << c.reason;
        EXPECT_NE(c.reason.find("write `refresh`"), std::string::npos) << c.reason;
    }
}

TEST(Submodules, NoneOrRecursiveInAnyCase) {
    EXPECT_EQ(check_submodules("Recursive", {}).value, "recursive");
    EXPECT_EQ(check_submodules("none", {}).value, "none");
    EXPECT_TRUE(check_submodules("", {}).ok);
    EXPECT_EQ(check_submodules("yes", {}).reason, "submodules 'yes': write one of none, recursive, or nothing for the default");
}

}  // namespace
}  // namespace sitesfs
