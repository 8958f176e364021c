// A release's own serving rules: `_redirects` and `_headers` at the root of the served tree, in a
// documented subset of Netlify's formats (docs/serving.md). They are parsed once, when the release
// is staged, into the types below; the proxy renderer turns those into config by template, so
// nothing of a file's text reaches the proxy except values that passed the alphabets here.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sitesfs::hooks {

// Why a rules file was refused: "line N: reason", N counting from 1 (the Stage step prefixes the
// file's name: "_redirects line 3: status 303 is not one of 200, 301, 302, 307, 308, 404").
struct RulesError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Caps, so one release cannot make the proxy config (rendered for every site on every deploy)
// arbitrarily large.
inline constexpr size_t kMaxRulesFileBytes = 64 * 1024;
inline constexpr size_t kMaxRedirectRules = 1000;
inline constexpr size_t kMaxHeaderRules = 100;        // path patterns in _headers
inline constexpr size_t kMaxHeadersPerRule = 20;      // header lines under one pattern
inline constexpr size_t kMaxHeaderValueBytes = 1024;

// A request-path pattern: literal segments, `:name` placeholders (one whole segment each) and a
// final `*` splat. It is held as the anchored regular expression that matches it, built by
// template from an allow-listed alphabet: literal characters are [A-Za-z0-9_~/-], and '.' and '+'
// (written as the classes "[.]" and "[+]"); a placeholder is "([^/]+)", the splat "(.*)". So the
// regex holds no backslash, quote, brace, '#' or whitespace.
struct PathPattern {
    std::string regex;               // "^/blog/([^/]+)/(.*)$"
    std::vector<std::string> names;  // capture group i+1's name: the placeholder's, or "splat"
    bool operator==(const PathPattern&) const = default;
};

// One piece of a redirect's target: literal text, or a capture group of the rule's pattern.
struct TargetPart {
    std::string text;  // literal, in the target alphabet, when group == 0
    int group = 0;     // 1-based capture group of `from`; 0 for literal text
    bool operator==(const TargetPart&) const = default;
};

// `FROM TO [STATUS[!]]`. TO is a path on the site ("/new/:splat"), or for 301/302/307/308 an
// absolute http(s) URL whose host is a lower-case hostname. Its literal text is in
// [A-Za-z0-9._~/+-], with "https://" or "http://" first and a ":PORT" after the host when it is a
// URL, and an optional "?query" of [A-Za-z0-9._~=&+-].
struct RedirectRule {
    int line = 0;               // in the file, for messages
    PathPattern from;
    std::vector<TargetPart> to;
    bool external = false;      // TO is an absolute URL
    int status = 301;           // 200 (rewrite), 301, 302, 307, 308, 404 (TO's content, status 404)
    bool force = false;         // "!": applies even when a file exists at the path (Netlify's shadowing)
    bool operator==(const RedirectRule&) const = default;
};

// A header name from the allow-list (docs/serving.md), in its canonical spelling
// ("Cache-Control" whatever case the file used), and a value of printable ASCII without
// '"', '\\', '{', '}' or '`', trimmed, 1..kMaxHeaderValueBytes bytes.
struct HeaderLine {
    std::string name;
    std::string value;
    bool operator==(const HeaderLine&) const = default;
};

struct HeaderRule {
    int line = 0;
    PathPattern path;
    std::vector<HeaderLine> headers;
    bool operator==(const HeaderRule&) const = default;
};

struct SiteRules {
    std::vector<RedirectRule> redirects;  // in file order: the first that matches wins
    std::vector<HeaderRule> headers;      // in file order: every one that matches applies
    bool empty() const { return redirects.empty() && headers.empty(); }
    bool operator==(const SiteRules&) const = default;
};

// The allow-listed header names, canonical spelling.
const std::vector<std::string_view>& allowed_header_names();

// Parse a whole file's text. Blank lines and lines starting with '#' (after leading whitespace)
// are skipped; anything else that is not a well-formed rule throws RulesError naming the line.
std::vector<RedirectRule> parse_redirects(std::string_view text);
std::vector<HeaderRule> parse_headers(std::string_view text);

// Both files of a served tree, read without following links (a release holds none, but the
// reader must not rely on it) and capped at kMaxRulesFileBytes; a missing file is no rules.
// Throws RulesError with the file's name first: "_redirects line 3: ...".
SiteRules read_site_rules(const std::string& served_dir);

// What a served tree says about how it is served: its rules, and whether it has a 404 page.
struct ServedTree {
    SiteRules rules;
    bool not_found_page = false;  // /404.html is a regular file
};
// Throws RulesError, as read_site_rules.
ServedTree read_served_tree(const std::string& served_dir);

}  // namespace sitesfs::hooks
