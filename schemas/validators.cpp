#include "schemas/validators.hpp"

#include <git2.h>
#include <idn2.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "schemas/site_record.hpp"

namespace sitesfs {

namespace {

using namespace ascii;

constexpr size_t kMaxRepo = 2048;
constexpr size_t kMaxDomainList = 4096;
constexpr size_t kMaxDomainNames = 100;
constexpr size_t kMaxBranch = 255;
constexpr size_t kMaxPath = 1024;
constexpr size_t kMaxCheckPath = 1024;
constexpr size_t kMaxCheckText = 200;
constexpr size_t kMaxHostsList = 16384;
constexpr size_t kMaxHostsItems = 64;
constexpr size_t kShownBytes = 80;

constexpr std::string_view kRepoForms =
    "use https://host/path, ssh://[user@]host/path, user@host:path or GitHub owner/name";
constexpr std::string_view kCredentials = "credentials do not belong in the URL; use deploy_key_ref";

bool is_lower_alnum(char c) { return is_lower(c) || is_digit(c); }
bool is_alnum(char c) { return is_lower_alnum(c) || is_upper(c); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_repo_path_char(char c) { return is_alnum(c) || std::string_view("._~-").find(c) != std::string_view::npos; }
bool is_file_path_char(char c) { return is_alnum(c) || std::string_view("._~+-").find(c) != std::string_view::npos; }
bool is_branch_char(char c) { return is_alnum(c) || std::string_view("._-/+@=,").find(c) != std::string_view::npos; }
bool is_host_label_char(char c) { return is_lower_alnum(c) || c == '-'; }

template <typename Pred>
bool all_of(std::string_view s, Pred pred) { return std::all_of(s.begin(), s.end(), pred); }
template <typename Pred>
bool any_of(std::string_view s, Pred pred) { return std::any_of(s.begin(), s.end(), pred); }
bool has(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

}  // namespace

namespace {

std::string char_name(char c) { return "'" + printable(std::string_view(&c, 1)) + "'"; }

Checked refuse(std::string_view field, std::string_view v, std::string_view why) {
    return Checked::refuse(std::string(field) + " '" + printable_prefix(v, kShownBytes) + "': " + std::string(why));
}

std::string_view drop_trailing_slash(std::string_view v) {
    if (!v.empty() && v.back() == '/') v.remove_suffix(1);
    return v;
}

// Why a '/'-separated relative path is refused, or "" when every segment is made of allowed characters.
std::string path_problem(std::string_view path, bool (*allowed)(char)) {
    if (path.empty()) return "the path is empty";
    for (std::string_view seg : split(path, '/')) {
        if (seg.empty()) return "the path has an empty segment (//)";
        if (seg == "." || seg == "..") return "'.' and '..' segments are not allowed";
        for (char c : seg)
            if (!allowed(c)) return "character " + char_name(c) + " is not allowed in a path";
    }
    return {};
}

// ---- repo ----

// An all-digit last label means an IPv4 address; resolvers also read forms like 1.2.3 or 0x7f.1
// as addresses, so only the plain dotted quad is let through.
bool is_dotted_quad(const std::vector<std::string_view>& labels) {
    if (labels.size() != 4) return false;
    return std::all_of(labels.begin(), labels.end(), [](std::string_view l) {
        return !l.empty() && l.size() <= 3 && all_of(l, is_digit) && (l.size() == 1 || l.front() != '0') &&
               std::stoi(std::string(l)) <= 255;
    });
}

// `host` is already lowercased.
std::string host_problem(std::string_view host) {
    if (host.empty()) return "the host is missing";
    if (host.size() > 253) return "the host is longer than 253 characters";
    const auto labels = split(host, '.');
    for (std::string_view label : labels) {
        if (label.empty()) return "the host has an empty label";
        if (label.size() > 63) return "a host label is longer than 63 characters";
        for (char c : label)
            if (!is_host_label_char(c)) return "character " + char_name(c) + " is not allowed in a host name";
        if (label.front() == '-' || label.back() == '-') return "host labels cannot start or end with '-'";
    }
    if (all_of(labels.back(), is_digit) && !is_dotted_quad(labels))
        return "an IP address must be four numbers 0-255 without leading zeros, like 192.0.2.10";
    return {};
}

std::string port_problem(std::string_view port) {
    if (port.empty() || port.size() > 5 || !all_of(port, is_digit)) return "the port must be a number from 1 to 65535";
    const int n = std::stoi(std::string(port));
    return n >= 1 && n <= 65535 ? std::string() : "the port must be a number from 1 to 65535";
}

bool is_user(std::string_view u) {
    return !u.empty() && u.size() <= 32 && (is_lower(u.front()) || u.front() == '_') &&
           all_of(u, [](char c) { return is_lower_alnum(c) || c == '_' || c == '.' || c == '-'; });
}

std::string user_problem(std::string_view user) {
    if (has(user, ":") && !has(user, "/")) return std::string(kCredentials);
    if (!is_user(user)) return "the user name must be a-z or '_' first, then a-z, 0-9, '_', '.' or '-' (at most 32)";
    return {};
}

// https:// and ssh:// URLs: scheme://[user@]host[:port]/path. `rest` is what follows "://".
Checked check_url(std::string_view v, std::string_view scheme, std::string_view rest) {
    if (has(v, "?") || has(v, "#")) return refuse("repo", v, "a query (?) or fragment (#) is not allowed");
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return refuse("repo", v, "the URL has no repository path");
    std::string_view authority = rest.substr(0, slash);
    std::string user;
    if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
        user = authority.substr(0, at);
        authority = authority.substr(at + 1);
        if (scheme == "https") return refuse("repo", v, kCredentials);
        if (auto why = user_problem(user); !why.empty()) return refuse("repo", v, why);
    }
    const size_t colon = authority.find(':');
    const std::string host = ascii_lower(authority.substr(0, colon));
    const std::string_view port = colon == std::string_view::npos ? std::string_view() : authority.substr(colon + 1);
    if (auto why = host_problem(host); !why.empty()) return refuse("repo", v, why);
    if (colon != std::string_view::npos)
        if (auto why = port_problem(port); !why.empty()) return refuse("repo", v, why);
    const std::string_view path = drop_trailing_slash(rest.substr(slash + 1));
    if (auto why = path_problem(path, is_repo_path_char); !why.empty()) return refuse("repo", v, why);
    std::string out = std::string(scheme) + "://" + (user.empty() ? "" : user + "@") + host;
    if (colon != std::string_view::npos) out += ":" + std::string(port);
    return Checked::accept(out + "/" + std::string(path));
}

// scp-like user@host:path, as in git@github.com:owner/repo.git
Checked check_scp(std::string_view v) {
    const size_t at = v.find('@');
    const std::string_view user = v.substr(0, at);
    if (auto why = user_problem(user); !why.empty()) return refuse("repo", v, why);
    const size_t colon = v.find(':', at);
    if (colon == std::string_view::npos)
        return refuse("repo", v, "user@host needs ':' and a path, like git@github.com:owner/repo.git");
    const std::string host = ascii_lower(v.substr(at + 1, colon - at - 1));
    const std::string_view path = v.substr(colon + 1);
    if (auto why = host_problem(host); !why.empty()) return refuse("repo", v, why);
    if (path.empty() || path.front() == '/' || path.front() == '-' || path.front() == '~')
        return refuse("repo", v, "the path after ':' must be relative and not start with '/', '-' or '~', like owner/repo.git");
    const std::string_view trimmed = drop_trailing_slash(path);
    if (auto why = path_problem(trimmed, is_repo_path_char); !why.empty()) return refuse("repo", v, why);
    return Checked::accept(std::string(user) + "@" + host + ":" + std::string(trimmed));
}

// `path` is what follows "file://", or the whole value for a bare absolute path.
Checked check_local(std::string_view v, std::string_view scheme, std::string_view path, const ValidationPolicy& policy) {
    if (!policy.allow_local_repos) return refuse("repo", v, "local repositories need --allow-local-repos");
    if (path.empty() || path.front() != '/')
        return refuse("repo", v, "a local repository needs an absolute path, like file:///srv/git/blog.git");
    const std::string_view rel = drop_trailing_slash(path.substr(1));
    if (auto why = path_problem(rel, is_file_path_char); !why.empty()) return refuse("repo", v, why);
    return Checked::accept(std::string(scheme) + "/" + std::string(rel));
}

bool is_github_owner(std::string_view o) {
    return !o.empty() && o.size() <= 39 && is_alnum(o.front()) && o.back() != '-' &&
           all_of(o, [](char c) { return is_alnum(c) || c == '-'; });
}

// The ".git" suffix is optional, so it is not part of the name's 100-character budget.
bool is_github_name(std::string_view n) {
    if (n.ends_with(".git")) n.remove_suffix(4);
    return !n.empty() && n.size() <= 100 && n != "." && n != ".." &&
           all_of(n, [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '-'; });
}

bool is_github_shorthand(std::string_view v) {
    const auto parts = split(v, '/');
    return parts.size() == 2 && is_github_owner(parts[0]) && is_github_name(parts[1]);
}

bool is_scheme(std::string_view s) {
    return !s.empty() && is_alnum(s.front()) &&
           all_of(s, [](char c) { return is_alnum(c) || c == '+' || c == '.' || c == '-'; });
}

Checked check_scheme_url(std::string_view v, std::string_view scheme, std::string_view rest, const ValidationPolicy& policy) {
    if (scheme == "https" || scheme == "ssh") return check_url(v, scheme, rest);
    if (scheme == "file") return check_local(v, "file://", rest, policy);
    if (scheme == "http") return refuse("repo", v, "plain http is not allowed, use https://");
    if (scheme == "git") return refuse("repo", v, "git:// is unauthenticated, use https:// or ssh://");
    return refuse("repo", v, "the " + printable(scheme) + ":// transport is not allowed; " + std::string(kRepoForms));
}

// ---- domain ----

bool is_domain_separator(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_domain_ascii(char c) { return is_alnum(c) || c == '.' || c == '-' || c == '*'; }

bool is_valid_utf8(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        const size_t len = utf8_sequence_length(s.substr(i));
        if (len == 0) return false;
        i += len;
    }
    return true;
}

std::string idna_to_ascii(const std::string& s, int& rc) {
    char* out = nullptr;
    rc = idn2_to_ascii_8z(s.c_str(), &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
    std::string result = rc == IDN2_OK ? ascii_lower(out) : std::string();
    idn2_free(out);
    return result;
}

// A punycode label is only let through if decoding and encoding it again gives the same label:
// that rules out garbage after "xn--" and encodings of characters IDNA disallows.
bool punycode_round_trips(std::string_view label) {
    char* unicode = nullptr;
    int rc = idn2_to_unicode_8z8z(std::string(label).c_str(), &unicode, 0);
    const std::string decoded = rc == IDN2_OK && unicode ? unicode : "";
    idn2_free(unicode);
    if (rc != IDN2_OK || decoded.empty()) return false;
    return idna_to_ascii(decoded, rc) == label && rc == IDN2_OK;
}

std::string label_problem(std::string_view label, size_t index, size_t count) {
    const std::string n = "label " + std::to_string(index + 1);
    if (label == "*") {
        if (index != 0) return "'*' may only be the whole first label, as in *.example.com";
        return count < 3 ? "a wildcard needs at least two labels after '*.', as in *.example.com" : "";
    }
    if (label.empty()) return index + 1 == count && count > 1 ? "remove the trailing dot" : n + " is empty";
    if (has(label, "*")) return "'*' may only be the whole first label, as in *.example.com";
    if (label.size() > 63) return n + " is longer than 63 characters";
    for (char c : label)
        if (!is_host_label_char(c)) return n + " has " + char_name(c) + "; use a-z, 0-9 and '-'";
    if (label.front() == '-' || label.back() == '-') return n + " starts or ends with '-'";
    if (label.starts_with("xn--") && !punycode_round_trips(label)) return n + " is not valid punycode";
    return {};
}

// `name` is the lowercase ASCII form.
std::string hostname_problem(std::string_view name) {
    const auto labels = split(name, '.');
    for (size_t i = 0; i < labels.size(); ++i)
        if (auto why = label_problem(labels[i], i, labels.size()); !why.empty()) return why;
    if (name.size() > 253) return "longer than 253 characters";
    // The proxy renderer refuses it too, but only at deploy time: refused here, the write fails.
    if (name == "import") return "'import' is the Caddyfile's import directive, not a host name";
    if (all_of(labels.back(), is_digit)) return "the last label is all digits; IP addresses are not allowed, use a host name";
    return {};
}

// Mapping can produce characters nobody typed (fullwidth '｛' becomes '{', a no-break space a
// space), so the ASCII result is checked as strictly as typed ASCII.
Checked check_one_domain(std::string_view raw) {
    for (char c : raw)
        if (is_ascii(c) && !is_domain_ascii(c))
            return refuse("domain", raw, char_name(c) + " is not allowed; use letters, digits, '-', '.' and a leading '*.'");
    if (!is_valid_utf8(raw)) return refuse("domain", raw, "not valid UTF-8");
    std::string ascii = ascii_lower(raw);
    if (any_of(raw, [](char c) { return !is_ascii(c); })) {
        int rc = IDN2_OK;
        ascii = idna_to_ascii(std::string(raw), rc);
        if (rc != IDN2_OK) return refuse("domain", raw, std::string("not a valid international name: ") + idn2_strerror(rc));
    }
    if (auto why = hostname_problem(ascii); !why.empty())
        return refuse("domain", raw, ascii == ascii_lower(raw) ? why : why + " (as ASCII: '" + printable(ascii) + "')");
    return Checked::accept(ascii);
}

std::vector<std::string_view> split_names(std::string_view v) {
    std::vector<std::string_view> names;
    for (size_t i = 0; i < v.size();) {
        const size_t end = std::find_if(v.begin() + i, v.end(), is_domain_separator) - v.begin();
        if (end > i) names.push_back(v.substr(i, end - i));
        i = end + 1;
    }
    return names;
}

// ---- hosts ----

bool is_placement_char(char c) { return is_lower_alnum(c) || c == '-' || c == '.' || c == '_'; }

std::string placement_label_problem(std::string_view label) {
    if (label.empty() || label.size() > 63) return "the label after 'label:' must be 1 to 63 characters";
    for (char c : label)
        if (!is_placement_char(c)) return "the label has " + char_name(c) + "; use a-z, 0-9, '-', '.' and '_'";
    return {};
}

// Host names as hosts call themselves (gethostname), so '_' is allowed where DNS would refuse it.
std::string placement_host_problem(std::string_view host) {
    if (host.size() > 253) return "a host name is at most 253 characters";
    if (has(host, ":"))
        return "':' only follows 'label', as in label:eu; a host name has none";
    for (std::string_view label : split(host, '.')) {
        if (label.empty()) return "the host name has an empty label (..), or starts or ends with '.'";
        if (label.size() > 63) return "a label of the host name is longer than 63 characters";
        for (char c : label)
            if (!is_placement_char(c))
                return char_name(c) + " is not allowed in a host name; use a-z, 0-9, '-', '.' and '_'";
    }
    return {};
}

Checked check_one_placement(std::string_view raw) {
    const std::string item = ascii_lower(raw);
    const std::string why = item.starts_with(kHostLabelPrefix) ? placement_label_problem(item.substr(kHostLabelPrefix.size()))
                                                               : placement_host_problem(item);
    return why.empty() ? Checked::accept(item) : refuse("hosts", raw, why);
}

// ---- lists (domain, hosts) ----

// A whitespace-separated list, each item normalized by `one`, joined by one space. An item listed
// again changes nothing, so "append it unless present" tools (ansible's lineinfile, grep -qx ||
// echo >>) stay idempotent even when they append twice.
Checked check_list(std::string_view field, std::string_view v, size_t max_bytes, size_t max_items,
                   std::string_view items, Checked (*one)(std::string_view)) {
    if (v.empty()) return Checked::accept({});
    if (v.size() > max_bytes) return refuse(field, v, "the list is longer than " + std::to_string(max_bytes) + " bytes");
    const auto raw_items = split_names(v);
    if (raw_items.size() > max_items)
        return refuse(field, v, "at most " + std::to_string(max_items) + " " + std::string(items) + " per site, this lists " +
                                    std::to_string(raw_items.size()));
    std::string out;
    std::set<std::string> seen;
    for (std::string_view raw : raw_items) {
        Checked checked = one(raw);
        if (!checked.ok) return checked;
        if (!seen.insert(checked.value).second) continue;
        out += (out.empty() ? "" : " ") + checked.value;
    }
    return Checked::accept(out);
}

// ---- branch ----

// The first code point of `s` (valid UTF-8) and its length in bytes.
std::pair<uint32_t, size_t> code_point(std::string_view s) {
    const auto b = static_cast<unsigned char>(s[0]);
    const size_t len = b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
    uint32_t cp = len == 1 ? b : b & (0x7fu >> len);
    for (size_t k = 1; k < len; ++k) cp = cp << 6 | (static_cast<unsigned char>(s[k]) & 0x3f);
    return {cp, len};
}

// Non-ASCII spaces, C1 controls and the invisible marks that reorder or hide text (bidi
// overrides and isolates, zero-width characters, the BOM): a branch name holding one reads as
// another name in the status file and the terminal.
bool is_invisible(uint32_t cp) {
    return (cp >= 0x80 && cp <= 0xa0) || cp == 0xad || cp == 0x61c || cp == 0x1680 || cp == 0x180e ||
           (cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) || (cp >= 0x205f && cp <= 0x206f) ||
           cp == 0x3000 || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) || (cp >= 0xe0000 && cp <= 0xe007f);
}

std::optional<uint32_t> first_invisible(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        const auto [cp, len] = code_point(s.substr(i));
        if (is_invisible(cp)) return cp;
        i += len;
    }
    return std::nullopt;
}

std::string invisible_problem(std::string_view s) {
    const auto cp = first_invisible(s);
    if (!cp) return {};
    char hex[8];
    std::snprintf(hex, sizeof hex, "%04X", *cp);
    return "U+" + std::string(hex) + " (a non-ASCII space, control or invisible mark) is not allowed";
}

// Human reasons for the git ref rules people meet most; libgit2 stays the final judge.
std::string git_ref_rule_problem(std::string_view v) {
    if (v.back() == '/' || v.back() == '.') return "cannot end with '/' or '.'";
    if (has(v, "//")) return "has an empty part (//)";
    for (std::string_view part : split(v, '/')) {
        if (part.starts_with(".")) return "no part between '/' may start with '.'";
        if (part.ends_with(".lock")) return "no part between '/' may end with '.lock'";
    }
    return {};
}

std::string branch_problem(std::string_view v) {
    if (v.size() > kMaxBranch) return "longer than 255 characters";
    if (any_of(v, is_blank)) return "spaces are not allowed";
    if (any_of(v, is_control)) return "control characters are not allowed";
    if (v.front() == '-') return "a leading '-' would be read as a git option";
    if (v.front() == '/') return "cannot start with '/'";
    if (v.starts_with("refs/")) return "give the short branch name, e.g. 'main' rather than 'refs/heads/main'";
    if (v == "@" || v == "HEAD") return "'@' and 'HEAD' name the checked-out commit, not a branch";
    if (!is_valid_utf8(v)) return "not valid UTF-8";
    if (auto why = invisible_problem(v); !why.empty()) return why;
    for (std::string_view bad : {"..", "@{", "\\", "~", "^", ":", "?", "*", "["})
        if (has(v, bad)) return "'" + std::string(bad) + "' is not allowed in a branch name";
    // Allow-list: what git accepts beyond this (quotes, '$', braces, ';', '|', '#') only ever serves to
    // inject; non-ASCII letters stay allowed for branch names in other scripts.
    for (char c : v)
        if (is_ascii(c) && !is_branch_char(c))
            return "'" + std::string(1, c) + "' is not allowed in a branch name (use letters, digits and . _ - / + @ = ,)";
    return git_ref_rule_problem(v);
}

bool git_accepts_branch(std::string_view v) {
    static const int init = git_libgit2_init();
    int valid = 0;
    return init > 0 && git_reference_name_is_valid(&valid, ("refs/heads/" + std::string(v)).c_str()) == 0 && valid;
}

// ---- deploy_key_ref ----

bool is_key_provider(std::string_view p) {
    return !p.empty() && p.size() <= 32 && is_lower(p.front()) && all_of(p, [](char c) { return is_lower_alnum(c) || c == '-'; });
}

bool is_key_name(std::string_view n) {
    const auto allowed = [](char c) { return is_alnum(c) || std::string_view("._@+=-").find(c) != std::string_view::npos; };
    return !n.empty() && n.size() <= 128 && n.front() != '.' && all_of(n, allowed);
}

}  // namespace

Checked check_site_name(std::string_view name) {
    if (name.empty() || name.size() > 63) return refuse("site name", name, "use 1 to 63 characters");
    if (!is_lower_alnum(name.front())) return refuse("site name", name, "start with a lowercase letter or digit");
    for (char c : name)
        if (!is_lower_alnum(c) && c != '.' && c != '-')
            return refuse("site name", name, char_name(c) + " is not allowed; use only a-z, 0-9, '.' and '-'");
    return Checked::accept(std::string(name));
}

Checked check_repo(std::string_view v, const ValidationPolicy& policy) {
    if (v.empty()) return Checked::accept({});
    if (v.size() > kMaxRepo) return refuse("repo", v, "longer than 2048 bytes");
    if (any_of(v, is_blank) || any_of(v, is_control)) return refuse("repo", v, "spaces and control characters are not allowed");
    if (v.front() == '-') return refuse("repo", v, "a leading '-' would be read as a git option");
    if (const size_t sep = v.find("://"); sep != std::string_view::npos && is_scheme(v.substr(0, sep)))
        return check_scheme_url(v, ascii_lower(v.substr(0, sep)), v.substr(sep + 3), policy);
    if (const size_t sep = v.find("::"); sep != std::string_view::npos)
        return refuse("repo", v, "remote-helper transports (" + printable(v.substr(0, sep)) + "::) are not allowed; " +
                                     std::string(kRepoForms));
    if (v.front() == '/') return check_local(v, "", v, policy);
    if (has(v, "@")) return check_scp(v);
    if (is_github_shorthand(v)) return Checked::accept(std::string(v));
    return refuse("repo", v, "not a form sitesfs accepts; " + std::string(kRepoForms));
}

std::string repo_fetch_url(std::string_view stored) {
    if (!is_github_shorthand(stored)) return std::string(stored);
    const std::string url = "https://github.com/" + std::string(stored);
    return url.ends_with(".git") ? url : url + ".git";
}

std::string repo_identity(std::string_view stored) {
    const std::string url = repo_fetch_url(stored);
    std::string_view v = url;
    std::string id;
    if (const size_t sep = v.find("://"); sep != std::string_view::npos) {
        const std::string_view scheme = v.substr(0, sep), rest = v.substr(sep + 3);
        if (scheme == "file") {
            id = rest;
        } else {
            const size_t slash = rest.find('/');
            std::string_view authority = rest.substr(0, slash);
            if (const size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
            const std::string_view default_port = scheme == "ssh" ? ":22" : ":443";
            if (authority.ends_with(default_port)) authority.remove_suffix(default_port.size());
            id = std::string(authority) + std::string(rest.substr(slash));
        }
    } else if (const size_t at = v.find('@'); !v.starts_with("/") && at != std::string_view::npos) {
        const size_t colon = v.find(':', at);
        id = std::string(v.substr(at + 1, colon - at - 1)) + "/" + std::string(v.substr(colon + 1));
    } else {
        id = v;
    }
    if (id.ends_with(".git")) id.resize(id.size() - 4);
    if (id.ends_with("/")) id.pop_back();
    return ascii_lower(id);
}

Checked check_domain(std::string_view v, const ValidationPolicy&) {
    return check_list("domain", v, kMaxDomainList, kMaxDomainNames, "names", check_one_domain);
}

Checked check_branch(std::string_view v, const ValidationPolicy&) {
    if (v.empty()) return Checked::accept({});
    if (auto why = branch_problem(v); !why.empty()) return refuse("branch", v, why);
    if (!git_accepts_branch(v)) return refuse("branch", v, "git does not accept this branch name (see git check-ref-format)");
    return Checked::accept(std::string(v));
}

Checked check_path(std::string_view v, const ValidationPolicy&) {
    if (v.empty()) return Checked::accept({});
    if (v.size() > kMaxPath) return refuse("path", v, "longer than 1024 bytes");
    if (v.front() == '/') return refuse("path", v, "give a path relative to the repository root, without the leading '/'");
    const std::string_view rel = drop_trailing_slash(v);
    if (auto why = path_problem(rel, is_file_path_char); !why.empty()) return refuse("path", v, why);
    // Refused in any case, so a case-insensitive filesystem cannot serve .GIT as the repository.
    for (std::string_view seg : split(rel, '/'))
        if (ascii_lower(seg) == ".git") return refuse("path", v, "a .git directory is never served");
    return Checked::accept(std::string(rel));
}

// A secret named by PROVIDER:NAME ([keys] providers): a deploy key, or a site's password file.
Checked check_provider_ref(std::string_view field, std::string_view v, std::string_view unset_means) {
    if (v.empty()) return Checked::accept({});
    const size_t colon = v.find(':');
    if (colon == std::string_view::npos)
        return refuse(field, v, "write PROVIDER:NAME (e.g. file:blog), or nothing " + std::string(unset_means));
    if (!is_key_provider(v.substr(0, colon)))
        return refuse(field, v, "the provider before ':' must be a-z first, then a-z, 0-9 or '-' (at most 32)");
    if (!is_key_name(v.substr(colon + 1)))
        return refuse(field, v,
                      "the name after ':' must be 1-128 of A-Z, a-z, 0-9, '.', '_', '@', '+', '=', '-' and not start with '.'");
    return Checked::accept(std::string(v));
}

Checked check_deploy_key_ref(std::string_view v, const ValidationPolicy&) {
    return check_provider_ref("deploy_key_ref", v, "for a public repo");
}

Checked check_auth_ref(std::string_view v, const ValidationPolicy&) {
    return check_provider_ref("auth_ref", v, "for a site anyone may read");
}

// A word from a short list, any case on write, stored lower-case.
Checked check_choice(std::string_view field, std::string_view v, std::initializer_list<std::string_view> choices) {
    if (v.empty()) return Checked::accept({});
    const std::string lower = ascii_lower(v);
    std::string listed;
    for (const auto c : choices) {
        if (lower == c) return Checked::accept(lower);
        listed += (listed.empty() ? "" : ", ") + std::string(c);
    }
    return refuse(field, v, "write one of " + listed + ", or nothing for the default");
}

Checked check_routing(std::string_view v, const ValidationPolicy&) {
    return check_choice("routing", v, {"static", "spa"});
}

Checked check_aliases(std::string_view v, const ValidationPolicy&) {
    return check_choice("aliases", v, {"serve", "redirect"});
}

Checked check_submodules(std::string_view v, const ValidationPolicy&) {
    return check_choice("submodules", v, {"none", "recursive"});
}

Checked check_ctl(std::string_view v, const ValidationPolicy&) {
    std::optional<SiteRequest> strongest;
    size_t start = 0;
    while (start <= v.size()) {
        const size_t end = std::min(v.find('\n', start), v.size());
        const std::string_view verb = trim(v.substr(start, end - start));
        start = end + 1;
        if (verb.empty()) continue;
        const auto request = parse_site_request(verb);
        if (!request)
            return refuse("ctl", verb,
                          "no such request; write `refresh` (ask the remote now, deploy if the branch moved) or "
                          "`redeploy` (run the deploy again now)");
        strongest = std::max(strongest.value_or(*request), *request);
    }
    return Checked::accept(strongest ? std::string(to_string(*strongest)) : std::string());
}

std::string builder_name_problem(std::string_view name) {
    const auto ok = [](char c, bool first) { return is_lower_alnum(c) || (!first && (c == '_' || c == '-')); };
    bool fine = !name.empty() && name.size() <= 32;
    for (size_t i = 0; fine && i < name.size(); ++i) fine = ok(name[i], i == 0);
    return fine ? "" : "a builder's name is 1-32 of a-z, 0-9, '_', '-', starting with a letter or digit";
}

Checked check_build(std::string_view v, const ValidationPolicy& policy) {
    if (v.empty()) return Checked::accept({});
    if (const std::string why = builder_name_problem(v); !why.empty()) return refuse("build", v, why);
    if (policy.builders && std::find(policy.builders->begin(), policy.builders->end(), v) == policy.builders->end()) {
        std::string known;
        for (const auto& b : *policy.builders) known += (known.empty() ? "" : ", ") + b;
        return refuse("build", v,
                      known.empty() ? "this host's config defines no builders ([builders.NAME] in sitesfs.toml)"
                                    : "this host's config defines no such builder; it has " + known);
    }
    return Checked::accept(std::string(v));
}

Checked check_commit(std::string_view v, const ValidationPolicy&) {
    if (v.empty()) return Checked::accept({});
    if (v.size() < 7 || v.size() > 40 || !all_of(v, is_hex))
        return refuse("commit", v, "write 7 to 40 hex digits, or nothing to follow the branch");
    return Checked::accept(ascii_lower(v));
}

// A URL path with an optional query, in RFC 3986's characters: it goes into the health check's
// request line, where a space or control byte would start another header or request.
bool is_check_path_char(char c) {
    return is_alnum(c) || std::string_view("-._~!$&'()*+,;=:@/%?").find(c) != std::string_view::npos;
}

Checked check_health_check(std::string_view v, const ValidationPolicy&) {
    if (v.empty()) return Checked::accept({});
    const size_t gap = v.find_first_of(" \t");
    const std::string_view path = v.substr(0, gap);
    const std::string_view text = gap == std::string_view::npos ? std::string_view() : trim(v.substr(gap));
    if (path.front() != '/' || path.starts_with("//"))
        return refuse("check", v, "start with the path to fetch on the site, e.g. / or /en/ Welcome");
    if (path.size() > kMaxCheckPath) return refuse("check", v, "the path is longer than 1024 bytes");
    for (size_t i = 0; i < path.size(); ++i) {
        if (!is_check_path_char(path[i]))
            return refuse("check", v, "the path may hold A-Z, a-z, 0-9 and -._~!$&'()*+,;=:@/%? (not " +
                                          char_name(path[i]) + ")");
        if (path[i] == '%' && (i + 2 >= path.size() || !is_hex(path[i + 1]) || !is_hex(path[i + 2])))
            return refuse("check", v, "'%' must start a %XX escape");
    }
    if (text.size() > kMaxCheckText) return refuse("check", v, "the text is longer than 200 bytes");
    if (!is_valid_utf8(text)) return refuse("check", v, "the text is not valid UTF-8");
    if (any_of(text, is_control)) return refuse("check", v, "the text has a control character");
    if (auto why = invisible_problem(text); !why.empty()) return refuse("check", v, "in the text, " + why);
    return Checked::accept(text.empty() ? std::string(path) : std::string(path) + " " + std::string(text));
}

Checked check_hosts(std::string_view v, const ValidationPolicy&) {
    return check_list("hosts", v, kMaxHostsList, kMaxHostsItems, "hosts and labels", check_one_placement);
}

HealthCheck split_health_check(std::string_view stored) {
    const size_t gap = stored.find(' ');
    if (gap == std::string_view::npos) return {std::string(stored), {}};
    return {std::string(stored.substr(0, gap)), std::string(stored.substr(gap + 1))};
}

std::vector<std::string> split_domains(std::string_view stored_domain) {
    std::vector<std::string> out;
    for (std::string_view name : split_names(stored_domain)) out.emplace_back(name);
    return out;
}

std::vector<std::string> split_hosts(std::string_view stored_hosts) { return split_domains(stored_hosts); }

std::string host_name_problem(std::string_view host) {
    if (host.empty()) return "a host name is 1 to 253 characters";
    if (ascii_lower(host) != host) return "a host name is lower-case here";
    return placement_host_problem(host);
}

std::string host_label_problem(std::string_view label) {
    if (ascii_lower(label) != label) return "a label is lower-case here";
    return placement_label_problem(label);
}

}  // namespace sitesfs
