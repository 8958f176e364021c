#include "hooks/site_rules.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "common/fd.hpp"
#include "common/text.hpp"

namespace sitesfs::hooks {

namespace {

using namespace ascii;

constexpr size_t kShownBytes = 80;
constexpr std::string_view kStatuses = "200, 301, 302, 307, 308, 404";
constexpr std::string_view kRuleForm = "a rule is `FROM TO [STATUS[!]]`";
constexpr std::string_view kPatternChars =
    "A-Z a-z 0-9 . _ ~ + - and '/', `:name` segments and a final `*`";

[[noreturn]] void fail(int line, const std::string& why) {
    throw RulesError("line " + std::to_string(line) + ": " + why);
}

// The file's own text in a message: escaped and cut, so it can neither break the line nor run on.
std::string shown(std::string_view v) { return "`" + printable_prefix(v, kShownBytes) + "`"; }
std::string char_name(char c) { return "'" + printable(std::string_view(&c, 1)) + "'"; }

bool is_alnum(char c) { return is_lower(c) || is_upper(c) || is_digit(c); }
bool is_one_of(char c, std::string_view set) { return set.find(c) != std::string_view::npos; }
// '/' separates segments and is handled by the callers.
bool is_path_char(char c) { return is_alnum(c) || is_one_of(c, "._~+-"); }
bool is_query_char(char c) { return is_alnum(c) || is_one_of(c, "._~=&+-"); }
bool is_value_char(char c) { return c >= 0x20 && c <= 0x7e && !is_one_of(c, "\"\\{}`"); }
bool is_name_char(char c) { return is_lower(c) || is_digit(c) || c == '_'; }
bool is_name(std::string_view n) { return !n.empty() && !is_digit(n.front()) && std::all_of(n.begin(), n.end(), is_name_char); }

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    for (size_t at = line.find_first_not_of(" \t"); at != std::string_view::npos; at = line.find_first_not_of(" \t", at)) {
        const size_t end = std::min(line.find_first_of(" \t", at), line.size());
        out.push_back(line.substr(at, end - at));
        at = end;
    }
    return out;
}

std::string too_big(size_t bytes) {
    return "is " + std::to_string(bytes) + " bytes, more than the " + std::to_string(kMaxRulesFileBytes) +
           " a rules file may have";
}

// Calls `rule(n, line)` for every line that is neither blank nor a comment, the line without its
// line ending. A control byte is refused even in a comment: the file is text, and a stray NUL or
// ESC means it is not the file its author thinks it is.
template <typename Rule>
void for_each_rule_line(std::string_view text, Rule&& rule) {
    if (text.size() > kMaxRulesFileBytes) throw RulesError("the file " + too_big(text.size()));
    size_t start = 0;
    for (int n = 1; start < text.size(); ++n) {
        const size_t end = std::min(text.find('\n', start), text.size());
        std::string_view line = text.substr(start, end - start);
        start = end + 1;
        if (line.ends_with('\r')) line.remove_suffix(1);
        for (char c : line)
            if (c != '\t' && is_control(c))
                fail(n, "control character " + char_name(c) + "; only tab may appear inside a line (line ends are LF or CRLF)");
        const std::string_view body = trim(line);
        if (body.empty() || body.front() == '#') continue;
        rule(n, line);
    }
}

// One pattern syntax for `_redirects`' FROM and `_headers`' paths, turned into a regex by template
// (site_rules.hpp). Segments are checked whole so that a placeholder can only be a segment and the
// splat only the end. "." and ".." segments are refused: clients resolve them before a request is
// sent, so such a rule would never match.
PathPattern path_pattern(int n, std::string_view p) {
    if (p.empty() || p.front() != '/') {
        if (p.find("://") != std::string_view::npos)
            fail(n, "pattern " + shown(p) + ": rules for a whole host are not supported; a pattern is a path starting with '/'");
        fail(n, "pattern " + shown(p) + " does not start with '/'");
    }
    if (p == "/") return {"^/$", {}};
    if (const size_t star = p.find('*'); star != std::string_view::npos && star + 1 != p.size())
        fail(n, "pattern " + shown(p) + ": '*' may only end a pattern, as in /news/* or /news*");
    std::string_view rest = p.substr(1);
    // Netlify treats a trailing slash as optional; the regex below makes it so for both spellings.
    if (rest.ends_with('/')) rest.remove_suffix(1);

    PathPattern out{"^", {}};
    const auto capture = [&](const std::string& name) {
        if (std::find(out.names.begin(), out.names.end(), name) != out.names.end())
            fail(n, "pattern " + shown(p) + " captures `" + name + "` twice; names must differ (`*` is named splat)");
        out.names.push_back(name);
    };
    bool splat = false;
    for (std::string_view seg : split(rest, '/')) {
        out.regex += '/';
        if (seg.empty()) fail(n, "pattern " + shown(p) + " has an empty segment (//)");
        if (seg == "." || seg == "..") fail(n, "pattern " + shown(p) + " has a '" + std::string(seg) + "' segment");
        if (seg.front() == ':') {
            if (!is_name(seg.substr(1)))
                fail(n, "placeholder " + shown(seg) + " in " + shown(p) +
                            ": a placeholder is a whole segment, ':' and a name of a-z, 0-9 and '_' not starting with a digit");
            capture(std::string(seg.substr(1)));
            out.regex += "([^/]+)";
            continue;
        }
        for (char c : seg) {
            if (c == '*') {
                capture("splat");
                out.regex += "(.*)";
                splat = true;
            } else if (c == '.') {
                out.regex += "[.]";
            } else if (c == '+') {
                out.regex += "[+]";
            } else if (is_path_char(c)) {
                out.regex += c;
            } else if (c == ':') {
                fail(n, "pattern " + shown(p) + ": ':' starts a placeholder only at the start of a segment, as in /blog/:slug");
            } else {
                fail(n, "pattern " + shown(p) + ": character " + char_name(c) + " is not allowed (allowed: " +
                            std::string(kPatternChars) + ")");
            }
        }
    }
    out.regex += splat ? "$" : "/?$";
    return out;
}

std::string host_problem(std::string_view host) {
    if (host.empty()) return "has no host";
    if (host.size() > 253) return "has a host longer than 253 characters";
    for (std::string_view label : split(host, '.')) {
        if (label.empty()) return "has an empty label in its host";
        if (label.size() > 63) return "has a host label longer than 63 characters";
        for (char c : label) {
            if (is_upper(c)) return "has upper-case letters in its host; write it in lower case";
            if (!is_lower(c) && !is_digit(c) && c != '-')
                return "has character " + char_name(c) + " in its host (a host is labels of a-z, 0-9 and inner '-')";
        }
        if (label.front() == '-' || label.back() == '-') return "has a host label starting or ending with '-'";
    }
    return {};
}

bool is_port(std::string_view port) {
    return !port.empty() && port.size() <= 5 && port.front() != '0' && std::all_of(port.begin(), port.end(), is_digit) &&
           std::stoi(std::string(port)) <= 65535;
}

// TO's parts: literal text in the target alphabet and references to FROM's captures. A reference
// is ':' and the longest name after it, so it may sit inside a segment ("/:splat.html").
std::vector<TargetPart> target(int n, std::string_view to, const PathPattern& from, bool& external) {
    const auto refuse = [&](const std::string& why) { fail(n, "TO " + shown(to) + " " + why); };
    std::string_view path = to;
    std::string_view query;
    if (const size_t q = to.find('?'); q != std::string_view::npos) {
        path = to.substr(0, q);
        query = to.substr(q + 1);
        if (query.empty()) refuse("ends in '?' without a query");
        for (char c : query)
            if (!is_query_char(c))
                refuse("has character " + char_name(c) + " in its query (a query is literal A-Z a-z 0-9 . _ ~ = & + -)");
    }

    std::string literal;
    external = path.starts_with("http://") || path.starts_with("https://");
    if (external) {
        const size_t authority = path.find("://") + 3;
        const size_t host_end = std::min(path.find_first_of(":/", authority), path.size());
        const std::string_view host = path.substr(authority, host_end - authority);
        if (auto why = host_problem(host); !why.empty()) refuse(why);
        size_t path_start = host_end;
        if (host_end < path.size() && path[host_end] == ':') {
            path_start = std::min(path.find('/', host_end), path.size());
            if (!is_port(path.substr(host_end + 1, path_start - host_end - 1)))
                refuse("has a port that is not a number from 1 to 65535");
        }
        literal = path.substr(0, path_start);
        path.remove_prefix(path_start);
    } else if (!path.starts_with('/')) {
        refuse("is neither a path starting with '/' nor an http:// or https:// URL");
    }

    const std::vector<std::string_view> segments = split(path, '/');
    for (size_t i = 1; i < segments.size(); ++i) {
        if (segments[i].empty() && i + 1 != segments.size()) refuse("has an empty segment (//)");
        if (segments[i] == "." || segments[i] == "..") refuse("has a '" + std::string(segments[i]) + "' segment");
    }

    std::vector<TargetPart> parts;
    for (size_t i = 0; i < path.size();) {
        const char c = path[i];
        if (c == '/' || is_path_char(c)) {
            literal += c;
            ++i;
            continue;
        }
        if (c != ':') refuse("has character " + char_name(c) + " (allowed: A-Z a-z 0-9 . _ ~ + - / and `:name`)");
        size_t end = i + 1;
        while (end < path.size() && is_name_char(path[end])) ++end;
        const std::string_view name = path.substr(i + 1, end - i - 1);
        if (!is_name(name)) refuse("has a ':' that is not followed by a capture's name");
        const auto at = std::find(from.names.begin(), from.names.end(), name);
        if (at == from.names.end()) {
            std::string captured;
            for (const auto& known : from.names) captured += (captured.empty() ? "" : ", ") + known;
            refuse("uses `:" + std::string(name) + "`, which FROM does not capture" +
                   (captured.empty() ? std::string(" (FROM captures nothing)") : " (FROM captures: " + captured + ")"));
        }
        if (!literal.empty()) parts.push_back({std::move(literal), 0});
        literal.clear();
        parts.push_back({{}, static_cast<int>(at - from.names.begin()) + 1});
        i = end;
    }
    if (!query.empty()) literal += "?" + std::string(query);
    if (!literal.empty()) parts.push_back({std::move(literal), 0});
    return parts;
}

// Netlify's query matching (`/store id=:id /items/:id`) puts `key=value` after FROM, and its
// conditions (`Country=us`, `Language=`, `Role=`, `Cookie=`) after the status. Neither exists
// here: say so by name instead of "not a status".
void refuse_netlify_extra(int n, std::string_view word) {
    const size_t eq = word.find('=');
    if (eq == std::string_view::npos || word.starts_with('/') || word.find("://") != std::string_view::npos) return;
    const std::string key = ascii_lower(word.substr(0, eq));
    if (key == "country" || key == "language" || key == "role" || key == "cookie")
        fail(n, "conditions (" + shown(word) + ") are not supported: no Country, Language, Role or Cookie matching");
    fail(n, "query-parameter matching (" + shown(word) + ") is not supported");
}

RedirectRule redirect_rule(int n, std::string_view line) {
    const std::vector<std::string_view> w = words(line);
    for (size_t i = 1; i < w.size(); ++i) refuse_netlify_extra(n, w[i]);
    if (w.size() < 2) fail(n, shown(w[0]) + " has no TO; " + std::string(kRuleForm));
    if (w.size() > 3) {
        if (w[3].starts_with('#')) fail(n, "a comment must be a line of its own, starting with '#'");
        fail(n, "unexpected " + shown(w[3]) + " after the status; " + std::string(kRuleForm));
    }

    RedirectRule rule;
    rule.line = n;
    if (w.size() == 3) {
        std::string_view status = w[2];
        rule.force = status.ends_with('!');
        if (rule.force) status.remove_suffix(1);
        if (status.empty() || !std::all_of(status.begin(), status.end(), is_digit))
            fail(n, shown(w[2]) + " is not a status (one of " + std::string(kStatuses) + ", '!' after it to force)");
        if (status.size() != 3 || std::string_view(kStatuses).find(status) == std::string_view::npos)
            fail(n, "status " + printable_prefix(status, kShownBytes) + " is not one of " + std::string(kStatuses));
        rule.status = std::stoi(std::string(status));
    }
    rule.from = path_pattern(n, w[0]);
    rule.to = target(n, w[1], rule.from, rule.external);
    if (rule.external && rule.status == 200)
        fail(n, "proxying (status 200 to a URL) is not supported; status 200 rewrites to a path of this site");
    if (rule.external && rule.status == 404)
        fail(n, "status 404 serves a page of this site; its TO is a path starting with '/', not a URL");
    return rule;
}

std::optional<std::string_view> canonical_header(std::string_view name) {
    const std::string lower = ascii_lower(name);
    for (std::string_view allowed : allowed_header_names())
        if (ascii_lower(allowed) == lower) return allowed;
    return std::nullopt;
}

std::string allowed_list() {
    std::string out;
    for (std::string_view name : allowed_header_names()) out += (out.empty() ? "" : ", ") + std::string(name);
    return out;
}

void add_header(int n, HeaderRule& rule, std::string_view body) {
    const size_t colon = body.find(':');
    if (colon == std::string_view::npos) fail(n, shown(body) + " is not a header line `Name: value`");
    const std::string_view name = trim(body.substr(0, colon));
    const std::string_view value = trim(body.substr(colon + 1));
    if (name.empty()) fail(n, shown(body) + " has no header name before the ':'");
    const auto canonical = canonical_header(name);
    if (!canonical)
        fail(n, "header " + printable_prefix(name, kShownBytes) + " is not allowed (allowed: " + allowed_list() + ")");
    if (value.empty()) fail(n, "header " + std::string(*canonical) + " has no value");
    for (char c : value)
        if (!is_value_char(c))
            fail(n, "header " + std::string(*canonical) + ": character " + char_name(c) +
                        " is not allowed in a value (printable ASCII without '\"', '\\', '{', '}' and '`')");
    const auto same = std::find_if(rule.headers.begin(), rule.headers.end(),
                                   [&](const HeaderLine& h) { return h.name == *canonical; });
    const bool fresh = same == rule.headers.end();
    // Netlify sends a header given twice under one path once, its values joined by ", ".
    if (fresh) rule.headers.push_back({std::string(*canonical), std::string(value)});
    else same->value += ", " + std::string(value);
    const std::string& joined = fresh ? rule.headers.back().value : same->value;
    if (joined.size() > kMaxHeaderValueBytes)
        fail(n, "header " + std::string(*canonical) + ": the value is longer than " +
                    std::to_string(kMaxHeaderValueBytes) + " bytes" + (fresh ? "" : " (joined with the lines above)"));
}

void require_headers(const HeaderRule& rule, std::string_view pattern) {
    if (rule.headers.empty())
        fail(rule.line, "path " + shown(pattern) + " has no header lines under it (indent them: `  Cache-Control: no-cache`)");
}

// The file's text, or nullopt when the file does not exist.
std::optional<std::string> read_rules_file(const std::string& dir, const std::string& name) {
    const std::string file = dir + "/" + name;
    // O_NONBLOCK: a FIFO under the name must not hang the stage step before it is refused below.
    const Fd fd(::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd.valid()) {
        const int err = errno;
        if (err == ENOENT) return std::nullopt;
        if (err == ELOOP) throw RulesError(name + ": is not a regular file (it is a symbolic link)");
        throw RulesError(name + ": cannot open " + file + ": " + std::strerror(err));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        const int err = errno;
        throw RulesError(name + ": cannot stat " + file + ": " + std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) throw RulesError(name + ": is not a regular file");
    if (static_cast<unsigned long long>(st.st_size) > kMaxRulesFileBytes)
        throw RulesError(name + ": " + too_big(static_cast<size_t>(st.st_size)));
    // Read one byte past the cap, so a file that grew after the fstat is refused too.
    std::string bytes;
    char buf[16384];
    while (bytes.size() <= kMaxRulesFileBytes) {
        const ssize_t got = ::read(fd.get(), buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            const int err = errno;
            throw RulesError(name + ": cannot read " + file + ": " + std::strerror(err));
        }
        if (got == 0) return bytes;
        bytes.append(buf, static_cast<size_t>(got));
    }
    throw RulesError(name + ": " + too_big(bytes.size()));
}

template <typename Parse>
auto parse_file(const std::string& name, const std::string& text, Parse&& parse) {
    try {
        return parse(text);
    } catch (const RulesError& e) {
        const std::string_view why = e.what();
        throw RulesError(name + (why.starts_with("line ") ? " " : ": ") + std::string(why));
    }
}

}  // namespace

const std::vector<std::string_view>& allowed_header_names() {
    static const std::vector<std::string_view> names = {
        "Cache-Control",
        "Content-Security-Policy",
        "Content-Security-Policy-Report-Only",
        "Cross-Origin-Embedder-Policy",
        "Cross-Origin-Opener-Policy",
        "Cross-Origin-Resource-Policy",
        "Permissions-Policy",
        "Referrer-Policy",
        "Strict-Transport-Security",
        "X-Content-Type-Options",
        "X-Frame-Options",
        "X-Robots-Tag",
        "X-XSS-Protection",
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Methods",
        "Access-Control-Allow-Headers",
        "Access-Control-Expose-Headers",
        "Access-Control-Max-Age",
        "Access-Control-Allow-Credentials",
        "Link",
        "Content-Language",
    };
    return names;
}

std::vector<RedirectRule> parse_redirects(std::string_view text) {
    std::vector<RedirectRule> rules;
    for_each_rule_line(text, [&](int n, std::string_view line) {
        if (rules.size() == kMaxRedirectRules) fail(n, "more than " + std::to_string(kMaxRedirectRules) + " rules");
        rules.push_back(redirect_rule(n, line));
    });
    return rules;
}

// A line at column 0 is a path; the indented lines after it are its headers.
std::vector<HeaderRule> parse_headers(std::string_view text) {
    std::vector<HeaderRule> rules;
    std::string_view pattern;
    size_t lines_under = 0;
    for_each_rule_line(text, [&](int n, std::string_view line) {
        const std::string_view body = trim(line);
        if (line.front() != ' ' && line.front() != '\t') {
            if (!rules.empty()) require_headers(rules.back(), pattern);
            if (rules.size() == kMaxHeaderRules) fail(n, "more than " + std::to_string(kMaxHeaderRules) + " paths");
            if (!body.starts_with('/') && body.find(':') != std::string_view::npos && body.find("://") == std::string_view::npos)
                fail(n, shown(body) + " looks like a header line; indent it under a path line such as `/*`");
            if (body.find_first_of(" \t") != std::string_view::npos)
                fail(n, "a path line holds only the path " + shown(body) + "; its headers go on the indented lines below it");
            pattern = body;
            rules.push_back({n, path_pattern(n, body), {}});
            lines_under = 0;
            return;
        }
        if (rules.empty()) fail(n, "header line before any path; write the path (like `/*`) on a line of its own at column 0 first");
        if (++lines_under > kMaxHeadersPerRule)
            fail(n, "more than " + std::to_string(kMaxHeadersPerRule) + " header lines under " + shown(pattern));
        add_header(n, rules.back(), body);
    });
    if (!rules.empty()) require_headers(rules.back(), pattern);
    return rules;
}

SiteRules read_site_rules(const std::string& served_dir) {
    SiteRules rules;
    if (auto text = read_rules_file(served_dir, "_redirects"))
        rules.redirects = parse_file("_redirects", *text, parse_redirects);
    if (auto text = read_rules_file(served_dir, "_headers"))
        rules.headers = parse_file("_headers", *text, parse_headers);
    return rules;
}

ServedTree read_served_tree(const std::string& served_dir) {
    ServedTree tree{read_site_rules(served_dir), false};
    struct stat st{};
    // lstat: a link named 404.html is not a page of the release.
    tree.not_found_page = ::lstat((served_dir + "/404.html").c_str(), &st) == 0 && S_ISREG(st.st_mode);
    return tree;
}

}  // namespace sitesfs::hooks
