// A release's `_redirects` and `_headers`: what each supported form parses into, that everything
// outside the subset is refused naming its line and what is wrong, and how the files are read.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "hooks/site_rules.hpp"
#include "tests/integration/mount_fixture.hpp"
#include "tests/support/hostile_corpus.hpp"

namespace sitesfs::hooks {
namespace {

namespace stdfs = std::filesystem;
using it::spit;

// The RulesError's text, or "" when `f` did not throw one.
template <typename F>
std::string rules_error(F&& f) {
    try {
        f();
    } catch (const RulesError& e) {
        return e.what();
    }
    return {};
}

std::string redirects_error(const std::string& text) { return rules_error([&] { parse_redirects(text); }); }
std::string headers_error(const std::string& text) { return rules_error([&] { parse_headers(text); }); }

RedirectRule one_redirect(const std::string& text) {
    const auto rules = parse_redirects(text);
    EXPECT_EQ(rules.size(), 1u) << text;
    return rules.empty() ? RedirectRule{} : rules.front();
}

TargetPart lit(std::string text) { return {std::move(text), 0}; }
TargetPart group(int g) { return {{}, g}; }

bool has_control_or_non_ascii(const std::string& s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u >= 0x7f;
    });
}

// ---- _redirects ----

TEST(Redirects, APlainRuleIsAPermanentRedirectWithAnOptionalTrailingSlash) {
    const RedirectRule r = one_redirect("/old /new\n");
    EXPECT_EQ(r.line, 1);
    EXPECT_EQ(r.from, (PathPattern{"^/old/?$", {}}));
    EXPECT_EQ(r.to, std::vector<TargetPart>{lit("/new")});
    EXPECT_EQ(r.status, 301);
    EXPECT_FALSE(r.force);
    EXPECT_FALSE(r.external);
}

TEST(Redirects, EveryStatusWithAndWithoutForce) {
    for (int status : {200, 301, 302, 307, 308, 404}) {
        const std::string s = std::to_string(status);
        const RedirectRule plain = one_redirect("/a /b " + s);
        EXPECT_EQ(plain.status, status);
        EXPECT_FALSE(plain.force) << s;
        const RedirectRule forced = one_redirect("/a /b " + s + "!");
        EXPECT_EQ(forced.status, status);
        EXPECT_TRUE(forced.force) << s;
    }
}

TEST(Redirects, PlaceholdersAndTheSplatBecomeCaptureGroupsTheTargetRefersTo) {
    const RedirectRule r = one_redirect("/blog/:year/:slug/* /posts/:slug/:year/:splat 302");
    EXPECT_EQ(r.from.regex, "^/blog/([^/]+)/([^/]+)/(.*)$");
    EXPECT_EQ(r.from.names, (std::vector<std::string>{"year", "slug", "splat"}));
    EXPECT_EQ(r.to, (std::vector<TargetPart>{lit("/posts/"), group(2), lit("/"), group(1), lit("/"), group(3)}));
}

TEST(Redirects, PatternShapes) {
    EXPECT_EQ(one_redirect("/ /home").from.regex, "^/$");
    EXPECT_EQ(one_redirect("/* /index.html 200").from.regex, "^/(.*)$");
    EXPECT_EQ(one_redirect("/news* /n/:splat").from.regex, "^/news(.*)$");
    EXPECT_EQ(one_redirect("/about/ /us").from.regex, "^/about/?$");
    EXPECT_EQ(one_redirect("/about /us").from.regex, "^/about/?$");
    EXPECT_EQ(one_redirect("/u/:user_1/ /x").from.regex, "^/u/([^/]+)/?$");
    EXPECT_EQ(one_redirect("/a.b+c_~-D9 /x").from.regex, "^/a[.]b[+]c_~-D9/?$");
}

TEST(Redirects, AReferenceMayShareASegmentWithLiteralText) {
    const RedirectRule r = one_redirect("/docs/* /:splat.html 200");
    EXPECT_EQ(r.to, (std::vector<TargetPart>{lit("/"), group(1), lit(".html")}));
    EXPECT_FALSE(r.external);
}

TEST(Redirects, ExternalUrlsWithPortPathAndQuery) {
    const RedirectRule r = one_redirect("/a/:id https://example.com:8443/b/:id?x=1&y=a-b 308!");
    EXPECT_TRUE(r.external);
    EXPECT_TRUE(r.force);
    EXPECT_EQ(r.status, 308);
    EXPECT_EQ(r.to, (std::vector<TargetPart>{lit("https://example.com:8443/b/"), group(1), lit("?x=1&y=a-b")}));

    const RedirectRule bare = one_redirect("/x http://www.example-1.org");
    EXPECT_TRUE(bare.external);
    EXPECT_EQ(bare.to, std::vector<TargetPart>{lit("http://www.example-1.org")});
    EXPECT_EQ(one_redirect("/x https://localhost:65535/").to, std::vector<TargetPart>{lit("https://localhost:65535/")});
    for (int status : {301, 302, 307, 308}) EXPECT_EQ(one_redirect("/x https://a.example/ " + std::to_string(status)).status, status);
}

TEST(Redirects, ASitePathMayCarryALiteralQuery) {
    const RedirectRule r = one_redirect("/a /b/?utm_source=old.site&v=1.2+x~_- 302");
    EXPECT_EQ(r.to, std::vector<TargetPart>{lit("/b/?utm_source=old.site&v=1.2+x~_-")});
    EXPECT_FALSE(r.external);
}

TEST(Redirects, CommentsBlankLinesTabsAndCrlf) {
    const auto rules = parse_redirects("# moved pages\r\n\r\n   # indented comment\r\n/a\t/b  302\r\n \t\r\n\t/c /d\r\n/e /f");
    ASSERT_EQ(rules.size(), 3u);
    EXPECT_EQ(rules[0].line, 4);
    EXPECT_EQ(rules[0].to, std::vector<TargetPart>{lit("/b")});
    EXPECT_EQ(rules[0].status, 302);
    EXPECT_EQ(rules[1].line, 6);
    EXPECT_EQ(rules[1].from.regex, "^/c/?$");
    EXPECT_EQ(rules[2].line, 7);
    EXPECT_TRUE(parse_redirects("").empty());
    EXPECT_TRUE(parse_redirects("# only a comment\n\n").empty());
    // A comment may say anything in UTF-8; only control bytes are refused there.
    EXPECT_TRUE(parse_redirects("# Café → /new\n").empty());
}

TEST(Redirects, RulesKeepFileOrder) {
    const auto rules = parse_redirects("/b /1\n/a /2\n/* /3 200\n");
    ASSERT_EQ(rules.size(), 3u);
    EXPECT_EQ(rules[0].from.regex, "^/b/?$");
    EXPECT_EQ(rules[1].from.regex, "^/a/?$");
    EXPECT_EQ(rules[2].from.regex, "^/(.*)$");
}

TEST(Redirects, SomeRefusalsWordForWord) {
    const std::string before = "# moved\n\n/ok /fine\n";
    EXPECT_EQ(redirects_error(before + "/a /b 303\n"), "line 4: status 303 is not one of 200, 301, 302, 307, 308, 404");
    EXPECT_EQ(redirects_error(before + "/store id=:id /items/:id 301\n"),
              "line 4: query-parameter matching (`id=:id`) is not supported");
    EXPECT_EQ(redirects_error(before + "/a/:id /b/:slug\n"),
              "line 4: TO `/b/:slug` uses `:slug`, which FROM does not capture (FROM captures: id)");
    EXPECT_EQ(redirects_error(before + "/a https://example.com/ 200\n"),
              "line 4: proxying (status 200 to a URL) is not supported; status 200 rewrites to a path of this site");
}

// Each refused rule, as line 4 of a file, and a phrase its message must hold.
TEST(Redirects, EveryRefusalNamesItsLineAndWhy) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"/a /b 303", "status 303 is not one of"},
        {"/a /b 30", "status 30 is not one of"},
        {"/a /b 3010", "status 3010 is not one of"},
        {"/a /b 500!", "status 500 is not one of"},
        {"/a /b abc", "`abc` is not a status"},
        {"/a /b 301!!", "`301!!` is not a status"},
        {"/a /b !", "`!` is not a status"},
        {"/store id=:id /items/:id 301", "query-parameter matching (`id=:id`)"},
        {"/a /b 302 Country=us", "conditions (`Country=us`) are not supported"},
        {"/a /b 200 Role=admin", "conditions (`Role=admin`)"},
        {"/a /b 302 Language=en,de", "conditions (`Language=en,de`)"},
        {"/a /b 302 country=us", "conditions (`country=us`)"},
        {"/a /b Cookie=x", "conditions (`Cookie=x`)"},
        {"/a /b 301 extra", "unexpected `extra` after the status"},
        {"/a /b 301 # gone", "a comment must be a line of its own"},
        {"/a", "`/a` has no TO"},
        {"a /b", "pattern `a` does not start with '/'"},
        {"https://old.example.com/* https://new.example.com/:splat 301", "rules for a whole host are not supported"},
        {"/a//b /c", "has an empty segment (//)"},
        {"/a/../b /c", "has a '..' segment"},
        {"/a/./b /c", "has a '.' segment"},
        {"/a/*/b /c", "'*' may only end a pattern"},
        {"/*/ /c", "'*' may only end a pattern"},
        {"/a/** /c", "'*' may only end a pattern"},
        {"/a/:Year /c", "placeholder `:Year`"},
        {"/a/:1st /c", "placeholder `:1st`"},
        {"/a/: /c", "placeholder `:`"},
        {"/a/:id* /c", "placeholder `:id*`"},
        {"/a/:id-x /c", "placeholder `:id-x`"},
        {"/a/x:y /c", "':' starts a placeholder only at the start of a segment"},
        {"/a/:id/:id /c", "captures `id` twice"},
        {"/a/:splat/* /c", "captures `splat` twice"},
        {"/a%20b /c", "character '%' is not allowed"},
        {"/a?x=1 /c", "character '?' is not allowed"},
        {"/a\"b /c", "character '\"' is not allowed"},
        {"/a{b} /c", "character '{' is not allowed"},
        {"/a\\b /c", "character '\\\\' is not allowed"},
        {"/caf\xc3\xa9 /c", "character '\\xc3' is not allowed"},
        {"/a /b/:slug", "uses `:slug`, which FROM does not capture (FROM captures nothing)"},
        {"/a/* /b/:id", "uses `:id`, which FROM does not capture (FROM captures: splat)"},
        {"/a b", "TO `b` is neither a path starting with '/' nor an http:// or https:// URL"},
        {"/a ftp://example.com/x", "is neither a path"},
        {"/a HTTPS://example.com/x", "is neither a path"},
        {"/a //example.com/x", "has an empty segment"},
        {"/a https://example.com/x 404", "status 404 serves a page of this site"},
        {"/a https://Example.com/", "upper-case letters in its host"},
        {"/a https://exa_mple.com/", "character '_' in its host"},
        {"/a https://user@example.com/", "character '@' in its host"},
        {"/a https://-x.example/", "starting or ending with '-'"},
        {"/a https://example..com/", "an empty label"},
        {"/a https:///x", "has no host"},
        {"/a https://" + std::string(64, 'a') + ".com/", "longer than 63"},
        {"/a https://example.com:0/", "port that is not a number from 1 to 65535"},
        {"/a https://example.com:65536/", "port"},
        {"/a https://example.com:080/", "port"},
        {"/a https://example.com:/", "port"},
        {"/a https://example.com:http/", "port"},
        {"/a https://example.com:99999999999999999999/", "port"},
        {"/a /b?", "ends in '?' without a query"},
        {"/a/:id /b?x=:id", "character ':' in its query"},
        {"/a /b?x=1#frag", "character '#' in its query"},
        {"/a /b?x=1?y", "character '?' in its query"},
        {"/a /b#frag", "has character '#'"},
        {"/a /b%2f", "has character '%'"},
        {"/a /b\"c", "has character '\"'"},
        {"/a /b{c}", "has character '{'"},
        {"/a /b/*", "has character '*'"},
        {"/a /b//c", "has an empty segment (//)"},
        {"/a /b/../c", "has a '..' segment"},
        {"/a /b:", "':' that is not followed by a capture's name"},
        {"/a /b/:9", "':' that is not followed by a capture's name"},
        {"/a\x01 /b", "control character '\\x01'"},
        {std::string("/a\0 /b", 6), "control character '\\x00'"},
        {"/a /b\x1b[31m", "control character '\\x1b'"},
        {"/a /b\r301", "control character '\\r'"},
        {"/a /b\x7f", "control character '\\x7f'"},
        {"/a /b \v", "control character '\\x0b'"},
        {"# comment\x1b[2J", "control character '\\x1b'"},
    };
    for (const auto& [rule, phrase] : cases) {
        const std::string why = redirects_error("# moved\n\n/ok /fine\n" + rule + "\n/after /x\n");
        EXPECT_TRUE(why.starts_with("line 4: ")) << rule << " -> " << why;
        EXPECT_NE(why.find(phrase), std::string::npos) << rule << " -> " << why;
        EXPECT_FALSE(has_control_or_non_ascii(why)) << rule;
    }
}

TEST(Redirects, AtMostTheCapOfRules) {
    std::string text;
    for (size_t i = 0; i < kMaxRedirectRules; ++i) text += "/a" + std::to_string(i) + " /b\n";
    EXPECT_EQ(parse_redirects(text).size(), kMaxRedirectRules);
    text = "# many\n" + text + "/one-more /b\n";
    EXPECT_EQ(redirects_error(text), "line " + std::to_string(kMaxRedirectRules + 2) + ": more than 1000 rules");
}

TEST(Redirects, AtMostTheCapOfBytes) {
    std::string full = "/a /b\n";
    full += std::string(kMaxRulesFileBytes - full.size() - 1, '#') + "\n";
    ASSERT_EQ(full.size(), kMaxRulesFileBytes);
    EXPECT_EQ(parse_redirects(full).size(), 1u);
    EXPECT_EQ(redirects_error(full + "\n"), "the file is 65537 bytes, more than the 65536 a rules file may have");
}

// ---- _headers ----

TEST(Headers, PathsAndTheirIndentedHeaders) {
    const auto rules = parse_headers(
        "# security\n"
        "/*\n"
        "  X-Frame-Options: DENY\n"
        "  cache-control:   public, max-age=60  \n"
        "\n"
        "/assets/:name/*\n"
        "\tCACHE-CONTROL: max-age=31536000, immutable\n"
        "\tContent-Security-Policy: default-src 'self'; img-src https://*.example.com data:\n");
    ASSERT_EQ(rules.size(), 2u);
    EXPECT_EQ(rules[0].line, 2);
    EXPECT_EQ(rules[0].path, (PathPattern{"^/(.*)$", {"splat"}}));
    EXPECT_EQ(rules[0].headers, (std::vector<HeaderLine>{{"X-Frame-Options", "DENY"}, {"Cache-Control", "public, max-age=60"}}));
    EXPECT_EQ(rules[1].line, 6);
    EXPECT_EQ(rules[1].path, (PathPattern{"^/assets/([^/]+)/(.*)$", {"name", "splat"}}));
    EXPECT_EQ(rules[1].headers,
              (std::vector<HeaderLine>{{"Cache-Control", "max-age=31536000, immutable"},
                                       {"Content-Security-Policy", "default-src 'self'; img-src https://*.example.com data:"}}));
}

TEST(Headers, EveryAllowedNameInAnyCaseBecomesItsCanonicalSpelling) {
    ASSERT_EQ(allowed_header_names().size(), 21u);
    for (std::string_view name : allowed_header_names()) {
        std::string upper(name), lower(name);
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        for (const std::string& written : {upper, lower, std::string(name)}) {
            const auto rules = parse_headers("/x\n  " + written + ": v\n");
            ASSERT_EQ(rules.size(), 1u);
            EXPECT_EQ(rules[0].headers, (std::vector<HeaderLine>{{std::string(name), "v"}})) << written;
        }
    }
}

TEST(Headers, ANameGivenTwiceUnderOnePathIsJoinedWithACommaLikeNetlify) {
    const auto rules = parse_headers("/*\n  Link: </a.css>; rel=preload\n  X-Robots-Tag: noindex\n  link: </b.js>; rel=preload\n"
                                     "/other\n  Link: </c.css>\n");
    ASSERT_EQ(rules.size(), 2u);
    EXPECT_EQ(rules[0].headers, (std::vector<HeaderLine>{{"Link", "</a.css>; rel=preload, </b.js>; rel=preload"},
                                                         {"X-Robots-Tag", "noindex"}}));
    EXPECT_EQ(rules[1].headers, (std::vector<HeaderLine>{{"Link", "</c.css>"}}));
}

TEST(Headers, EveryPrintableCharacterButTheFiveIsAllowedInAValue) {
    std::string value = "v";
    for (char c = 0x20; c < 0x7f; ++c)
        if (std::string_view("\"\\{}`").find(c) == std::string_view::npos) value += c;
    const auto rules = parse_headers("/x\r\n  Cache-Control: " + value + "\r\n");
    ASSERT_EQ(rules.size(), 1u);
    EXPECT_EQ(rules[0].headers[0].value, value);
}

TEST(Headers, EveryRefusedValueCharacter) {
    for (const char c : std::string("\"\\{}`\x80\xff", 7)) {
        const std::string why = headers_error("/x\n  Cache-Control: a" + std::string(1, c) + "b\n");
        EXPECT_TRUE(why.starts_with("line 2: header Cache-Control: character '")) << why;
        EXPECT_NE(why.find("is not allowed in a value"), std::string::npos) << why;
    }
    for (const char c : std::string("\t\x01\x1b\x7f", 4)) {
        const std::string why = headers_error("/x\n  Cache-Control: a" + std::string(1, c) + "b\n");
        // A tab is not a control byte of the file, but it is outside a value's alphabet.
        EXPECT_TRUE(why.starts_with("line 2: ")) << why;
        EXPECT_NE(why.find(c == '\t' ? "character '\\t' is not allowed in a value" : "control character"), std::string::npos)
            << why;
    }
}

TEST(Headers, ValueLengthCapAlsoHoldsForJoinedValues) {
    const std::string full(kMaxHeaderValueBytes, 'a');
    EXPECT_EQ(parse_headers("/x\n  Link: " + full + "\n")[0].headers[0].value, full);
    EXPECT_EQ(headers_error("/x\n  Link: " + full + "a\n"), "line 2: header Link: the value is longer than 1024 bytes");
    const std::string half(kMaxHeaderValueBytes / 2, 'a');
    EXPECT_EQ(headers_error("/x\n  Link: " + half + "\n  Link: " + half + "\n"),
              "line 3: header Link: the value is longer than 1024 bytes (joined with the lines above)");
}

TEST(Headers, SomeRefusalsWordForWord) {
    EXPECT_EQ(headers_error("/*\n  X-Frame-Options: DENY\n\n# more\n/x\n  X-Powered-By: PHP\n"),
              "line 6: header X-Powered-By is not allowed (allowed: Cache-Control, Content-Security-Policy, "
              "Content-Security-Policy-Report-Only, Cross-Origin-Embedder-Policy, Cross-Origin-Opener-Policy, "
              "Cross-Origin-Resource-Policy, Permissions-Policy, Referrer-Policy, Strict-Transport-Security, "
              "X-Content-Type-Options, X-Frame-Options, X-Robots-Tag, X-XSS-Protection, Access-Control-Allow-Origin, "
              "Access-Control-Allow-Methods, Access-Control-Allow-Headers, Access-Control-Expose-Headers, "
              "Access-Control-Max-Age, Access-Control-Allow-Credentials, Link, Content-Language)");
    EXPECT_EQ(headers_error("# h\n  Cache-Control: no-cache\n"),
              "line 2: header line before any path; write the path (like `/*`) on a line of its own at column 0 first");
    EXPECT_EQ(headers_error("/a\n  Link: <x>\n/empty\n# nothing here\n/b\n  Link: <y>\n"),
              "line 3: path `/empty` has no header lines under it (indent them: `  Cache-Control: no-cache`)");
}

TEST(Headers, EveryRefusalNamesItsLineAndWhy) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"/x\n  Set-Cookie: a=b", "header Set-Cookie is not allowed"},
        {"/x\n  Server: x", "header Server is not allowed"},
        {"/x\n  X-Accel-Redirect: /etc/passwd", "header X-Accel-Redirect is not allowed"},
        {"/x\n  Cache Control: x", "header Cache Control is not allowed"},
        {"/x\n  : x", "`: x` has no header name"},
        {"/x\n  ! Cache-Control", "is not a header line `Name: value`"},
        {"/x\n  Cache-Control no-cache", "`Cache-Control no-cache` is not a header line"},
        {"/x\n  Cache-Control:", "header Cache-Control has no value"},
        {"/x\n  Cache-Control:   \t ", "header Cache-Control has no value"},
        {"/x\n  Cache-Control: {$SECRET}", "character '{'"},
        {"/x\n  Cache-Control: a\"b", "character '\"'"},
        {"/x\n  Cache-Control: `id`", "character '`'"},
        {"/x\n  Cache-Control: \\n", "character '\\\\'"},
        {"/x\n  Cache-Control: caf\xc3\xa9", "character '\\xc3'"},
        {"/x\n  Cache-Control: a\rb", "control character '\\r'"},
        {"/x\n/y\n  Link: <a>", "path `/x` has no header lines under it"},
        {"/x", "path `/x` has no header lines under it"},
        {"Cache-Control: no-cache", "looks like a header line; indent it under a path line"},
        {"/x Cache-Control: no-cache", "a path line holds only the path `/x Cache-Control: no-cache`"},
        {"x\n  Link: <a>", "pattern `x` does not start with '/'"},
        {"https://example.com/*\n  Link: <a>", "rules for a whole host are not supported"},
        {"/a//b\n  Link: <a>", "has an empty segment"},
        {"/a/*/b\n  Link: <a>", "'*' may only end a pattern"},
        {"/a/:A\n  Link: <a>", "placeholder `:A`"},
        {"/a%2f\n  Link: <a>", "character '%' is not allowed"},
        {std::string("/a\0\n  Link: <a>", 15), "control character '\\x00'"},
    };
    for (const auto& [text, phrase] : cases) {
        const std::string why = headers_error("/ok\n  Link: <x>\n# c\n" + text + "\n");
        EXPECT_TRUE(why.starts_with("line 4: ") || why.starts_with("line 5: ")) << text << " -> " << why;
        EXPECT_NE(why.find(phrase), std::string::npos) << text << " -> " << why;
        EXPECT_FALSE(has_control_or_non_ascii(why)) << text;
    }
}

TEST(Headers, Caps) {
    std::string paths;
    for (size_t i = 0; i < kMaxHeaderRules; ++i) paths += "/p" + std::to_string(i) + "\n  Link: <x>\n";
    EXPECT_EQ(parse_headers(paths).size(), kMaxHeaderRules);
    EXPECT_EQ(headers_error(paths + "/one-more\n  Link: <x>\n"),
              "line " + std::to_string(2 * kMaxHeaderRules + 1) + ": more than 100 paths");

    std::string lines = "/x\n";
    for (size_t i = 0; i < kMaxHeadersPerRule; ++i) lines += "  Link: <" + std::to_string(i) + ">\n";
    EXPECT_EQ(parse_headers(lines)[0].headers.size(), 1u);
    EXPECT_EQ(headers_error(lines + "  X-Robots-Tag: none\n"),
              "line " + std::to_string(kMaxHeadersPerRule + 2) + ": more than 20 header lines under `/x`");
    // The count restarts under the next path.
    EXPECT_EQ(parse_headers(lines + "/y\n" + lines.substr(3)).size(), 2u);

    EXPECT_NE(headers_error(std::string(kMaxRulesFileBytes + 1, '#')).find("more than the 65536"), std::string::npos);
}

// ---- the hostile corpus (tests/hostile/redirects.txt, headers.txt) ----

TEST(HostileRules, EveryCaseIsRefusedWithALineNumberAndAPrintableReason) {
    for (const auto& [file, error] : {std::pair{"redirects.txt", &redirects_error}, std::pair{"headers.txt", &headers_error}}) {
        const auto cases = corpus::load(file);
        EXPECT_GE(cases.size(), 15u) << file;
        for (const auto& k : cases) {
            const std::string why = error(k.value);
            EXPECT_TRUE(why.starts_with("line ")) << k.source << " -> " << (why.empty() ? "accepted" : why);
            EXPECT_FALSE(has_control_or_non_ascii(why)) << k.source;
        }
    }
}

// ---- read_site_rules ----

class ReadSiteRules : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/sitesfs-rules.XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        stdfs::remove_all(dir_, ec);
    }
    std::string dir() const { return dir_.string(); }
    std::string read_error() const { return rules_error([&] { read_site_rules(dir()); }); }

    stdfs::path dir_;
};

TEST_F(ReadSiteRules, MissingFilesAreNoRules) {
    EXPECT_TRUE(read_site_rules(dir()).empty());
    EXPECT_TRUE(read_site_rules(dir() + "/no-such-dir").empty());
}

TEST_F(ReadSiteRules, BothFilesAreParsed) {
    spit(dir_ / "_redirects", "/old /new 302\n");
    spit(dir_ / "_headers", "/*\n  X-Frame-Options: DENY\n");
    const SiteRules rules = read_site_rules(dir());
    ASSERT_EQ(rules.redirects.size(), 1u);
    EXPECT_EQ(rules.redirects[0].status, 302);
    ASSERT_EQ(rules.headers.size(), 1u);
    EXPECT_EQ(rules.headers[0].headers, (std::vector<HeaderLine>{{"X-Frame-Options", "DENY"}}));

    stdfs::remove(dir_ / "_redirects");
    const SiteRules only_headers = read_site_rules(dir());
    EXPECT_TRUE(only_headers.redirects.empty());
    EXPECT_EQ(only_headers.headers.size(), 1u);
}

TEST_F(ReadSiteRules, ParseErrorsNameTheFile) {
    spit(dir_ / "_redirects", "/ok /fine\n/a /b 303\n");
    EXPECT_EQ(read_error(), "_redirects line 2: status 303 is not one of 200, 301, 302, 307, 308, 404");
    spit(dir_ / "_redirects", "/ok /fine\n");
    spit(dir_ / "_headers", "  Link: <a>\n");
    EXPECT_TRUE(read_error().starts_with("_headers line 1: header line before any path")) << read_error();
}

TEST_F(ReadSiteRules, ASymlinkIsRefusedEvenToAGoodFile) {
    spit(dir_ / "real", "/a /b\n");
    stdfs::create_symlink("real", dir_ / "_redirects");
    EXPECT_EQ(read_error(), "_redirects: is not a regular file (it is a symbolic link)");
    stdfs::remove(dir_ / "_redirects");
    stdfs::create_symlink("/nonexistent", dir_ / "_headers");
    EXPECT_EQ(read_error(), "_headers: is not a regular file (it is a symbolic link)");
}

TEST_F(ReadSiteRules, AFifoOrADirectoryIsRefusedWithoutHanging) {
    ASSERT_EQ(mkfifo((dir_ / "_headers").c_str(), 0600), 0) << std::strerror(errno);
    EXPECT_EQ(read_error(), "_headers: is not a regular file");
    stdfs::remove(dir_ / "_headers");
    stdfs::create_directory(dir_ / "_redirects");
    EXPECT_EQ(read_error(), "_redirects: is not a regular file");
}

TEST_F(ReadSiteRules, AFileOverTheCapIsRefusedBeforeItIsParsed) {
    // Valid rules all the way, so only the size can refuse it.
    std::string text;
    while (text.size() <= kMaxRulesFileBytes) text += "/a /b\n";
    spit(dir_ / "_redirects", text);
    EXPECT_EQ(read_error(), "_redirects: is " + std::to_string(text.size()) + " bytes, more than the 65536 a rules file may have");
    text.resize(kMaxRulesFileBytes - kMaxRulesFileBytes % 6);
    spit(dir_ / "_redirects", text);
    EXPECT_EQ(read_error(), "_redirects line 1001: more than 1000 rules");
}

}  // namespace
}  // namespace sitesfs::hooks
