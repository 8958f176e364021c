#include "schemas/validators.hpp"

#include <git2.h>
#include <idn2.h>

#include <algorithm>
#include <set>
#include <vector>

namespace sitesfs {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool has_control(std::string_view v) {
    return std::any_of(v.begin(), v.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

std::string quoted(std::string_view field, std::string_view v) {
    std::string shown;
    for (char c : v.substr(0, 80)) shown += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
    return std::string(field) + " '" + shown + (v.size() > 80 ? "...'" : "'");
}

std::vector<std::string_view> split(std::string_view v, char sep) {
    std::vector<std::string_view> out;
    size_t start = 0;
    for (;;) {
        const size_t at = v.find(sep, start);
        out.push_back(v.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
        if (at == std::string_view::npos) return out;
        start = at + 1;
    }
}

// A path made of allowed segments; `extra` are the punctuation characters a segment may hold.
std::string check_segments(std::string_view path, std::string_view extra) {
    if (path.empty()) return "the path is empty";
    for (std::string_view seg : split(path, '/')) {
        if (seg.empty()) return "the path has an empty segment (//)";
        if (seg == "." || seg == "..") return "'.' and '..' segments are not allowed";
        for (char c : seg)
            if (!is_alnum(c) && extra.find(c) == std::string_view::npos)
                return std::string("character '") + c + "' is not allowed in a path";
    }
    return {};
}

// RFC 1123 host names (lowercase ASCII) and dotted IPv4 addresses, for repository URLs.
std::string check_host(std::string_view host) {
    if (host.empty() || host.size() > 253) return "the host name is empty or too long";
    for (std::string_view label : split(host, '.')) {
        if (label.empty() || label.size() > 63) return "host label '" + std::string(label) + "' is empty or too long";
        if (label.front() == '-' || label.back() == '-') return "host labels cannot start or end with '-'";
        for (char c : label)
            if (!is_lower_alnum(c) && c != '-') return std::string("character '") + c + "' is not allowed in a host name";
    }
    return {};
}

std::string check_port(std::string_view port) {
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return "the port must be a number";
    const int n = std::stoi(std::string(port));
    return n >= 1 && n <= 65535 ? std::string() : "the port must be 1-65535";
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

constexpr std::string_view kPathChars = "._~-";
constexpr std::string_view kRepoForms =
    "use https://host/path, ssh://[user@]host/path, user@host:path or GitHub owner/name";

// https:// and ssh:// URLs: scheme://[user@]host[:port]/path.
Checked check_url(std::string_view v, std::string_view scheme, bool user_allowed) {
    std::string_view rest = v.substr(scheme.size() + 3);
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return Checked::refuse(quoted("repo", v) + ": the URL has no path");
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = rest.substr(slash + 1);
    std::string user;
    if (const size_t at = authority.find('@'); at != std::string_view::npos) {
        if (!user_allowed) return Checked::refuse(quoted("repo", v) + ": credentials do not belong in the URL; use deploy_key_ref");
        user = std::string(authority.substr(0, at));
        authority = authority.substr(at + 1);
        if (user.empty() || !(std::islower(static_cast<unsigned char>(user[0])) || user[0] == '_') || user.size() > 32 ||
            !std::all_of(user.begin(), user.end(), [](char c) { return is_lower_alnum(c) || c == '_' || c == '.' || c == '-'; }))
            return Checked::refuse(quoted("repo", v) + ": the user name is not allowed");
    }
    std::string_view host = authority, port;
    if (const size_t colon = authority.find(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
        if (auto why = check_port(port); !why.empty()) return Checked::refuse(quoted("repo", v) + ": " + why);
    }
    const std::string lhost = lower(host);
    if (auto why = check_host(lhost); !why.empty()) return Checked::refuse(quoted("repo", v) + ": " + why);
    if (!path.empty() && path.back() == '/') path.remove_suffix(1);
    if (auto why = check_segments(path, kPathChars); !why.empty()) return Checked::refuse(quoted("repo", v) + ": " + why);
    std::string out = std::string(scheme) + "://" + (user.empty() ? "" : user + "@") + lhost;
    if (!port.empty()) out += ":" + std::string(port);
    return Checked::accept(out + "/" + std::string(path));
}

// git@host:owner/repo.git
Checked check_scp(std::string_view v) {
    const size_t at = v.find('@'), colon = v.find(':');
    if (at == std::string_view::npos || colon == std::string_view::npos || colon < at)
        return Checked::refuse(quoted("repo", v) + ": not a form sitesfs accepts; " + std::string(kRepoForms));
    const std::string_view user = v.substr(0, at), host = v.substr(at + 1, colon - at - 1);
    std::string_view path = v.substr(colon + 1);
    if (user.empty() || !(std::islower(static_cast<unsigned char>(user[0])) || user[0] == '_') || user.size() > 32 ||
        !std::all_of(user.begin(), user.end(), [](char c) { return is_lower_alnum(c) || c == '_' || c == '.' || c == '-'; }))
        return Checked::refuse(quoted("repo", v) + ": the user name is not allowed");
    const std::string lhost = lower(host);
    if (auto why = check_host(lhost); !why.empty()) return Checked::refuse(quoted("repo", v) + ": " + why);
    if (path.empty() || path.front() == '/' || path.front() == '-' || path.front() == '~')
        return Checked::refuse(quoted("repo", v) + ": the path after ':' must be relative, like owner/repo.git");
    if (path.back() == '/') path.remove_suffix(1);
    if (auto why = check_segments(path, kPathChars); !why.empty()) return Checked::refuse(quoted("repo", v) + ": " + why);
    return Checked::accept(std::string(user) + "@" + lhost + ":" + std::string(path));
}

bool is_github_shorthand(std::string_view v) {
    const auto parts = split(v, '/');
    if (parts.size() != 2) return false;
    const std::string_view owner = parts[0], name = parts[1];
    if (owner.empty() || owner.size() > 39 || !is_alnum(owner.front()) || owner.back() == '-' ||
        !std::all_of(owner.begin(), owner.end(), [](char c) { return is_alnum(c) || c == '-'; }))
        return false;
    return !name.empty() && name.size() <= 100 && name != "." && name != ".." &&
           std::all_of(name.begin(), name.end(), [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '-'; });
}

Checked check_local(std::string_view v, std::string_view path, const ValidationPolicy& policy) {
    if (!policy.allow_local_repos) return Checked::refuse(quoted("repo", v) + ": local repositories need --allow-local-repos");
    std::string_view p = path.substr(1);
    if (!p.empty() && p.back() == '/') p.remove_suffix(1);
    if (auto why = check_segments(p, "._~+-"); !why.empty()) return Checked::refuse(quoted("repo", v) + ": " + why);
    return Checked::accept(std::string(v.substr(0, v.size() - path.size())) + "/" + std::string(p));
}

// One host name of a domain list, already known to hold only allowed characters.
std::string check_hostname(const std::string& name) {
    if (name.size() > 253) return "longer than 253 characters";
    if (name.back() == '.') return "remove the trailing dot";
    const auto labels = split(name, '.');
    for (size_t i = 0; i < labels.size(); ++i) {
        const std::string_view label = labels[i];
        const std::string n = std::to_string(i + 1);
        if (label.empty()) return "label " + n + " is empty";
        if (label == "*") {
            if (i != 0) return "'*' is only allowed as the whole first label";
            if (labels.size() < 3) return "a wildcard needs at least two labels after '*.'";
            continue;
        }
        if (label.size() > 63) return "label " + n + " is longer than 63 characters";
        if (label.front() == '-' || label.back() == '-') return "label " + n + " starts or ends with '-'";
        for (char c : label)
            if (!is_lower_alnum(c) && c != '-') return "label " + n + " has '" + std::string(1, c) + "'";
        if (label.starts_with("xn--")) {
            char* unicode = nullptr;
            const int rc = idn2_to_unicode_8z8z(std::string(label).c_str(), &unicode, 0);
            idn2_free(unicode);
            if (rc != IDN2_OK) return "label " + n + " is not valid punycode";
        }
    }
    const std::string_view tld = labels.back();
    if (std::all_of(tld.begin(), tld.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return "the last label is all digits (IP addresses are not host names)";
    return {};
}

std::string to_ascii(std::string_view name, std::string& why) {
    const bool ascii = std::all_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    for (char c : name)
        if (static_cast<unsigned char>(c) < 0x80 && !is_alnum(c) && c != '.' && c != '-' && c != '*') {
            why = std::string("'") + (static_cast<unsigned char>(c) < 0x20 ? '?' : c) + "' is not allowed in a host name";
            return {};
        }
    if (ascii) return lower(name);
    char* out = nullptr;
    const int rc = idn2_to_ascii_8z(std::string(name).c_str(), &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
    if (rc != IDN2_OK) {
        why = std::string("not a valid international name: ") + idn2_strerror(rc);
        return {};
    }
    std::string result = lower(out);
    idn2_free(out);
    return result;
}

}  // namespace

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

Checked check_site_name(std::string_view name) {
    if (name.empty() || name.size() > 63)
        return Checked::refuse(quoted("site name", name) + ": use 1 to 63 characters");
    if (!is_lower_alnum(name.front()))
        return Checked::refuse(quoted("site name", name) + ": start with a lowercase letter or digit");
    for (char c : name)
        if (!is_lower_alnum(c) && c != '.' && c != '-')
            return Checked::refuse(quoted("site name", name) + ": use only a-z, 0-9, '.' and '-'");
    return Checked::accept(std::string(name));
}

Checked check_repo(std::string_view v, const ValidationPolicy& policy) {
    if (v.empty()) return Checked::accept({});
    if (v.size() > 2048) return Checked::refuse(quoted("repo", v) + ": longer than 2048 characters");
    if (has_control(v) || std::any_of(v.begin(), v.end(), is_space))
        return Checked::refuse(quoted("repo", v) + ": spaces and control characters are not allowed");
    if (v.front() == '-') return Checked::refuse(quoted("repo", v) + ": a repo cannot start with '-'");
    const std::string head = lower(v.substr(0, std::min<size_t>(v.size(), 8)));
    if (head.starts_with("https://")) return check_url(v, "https", false);
    if (head.starts_with("ssh://")) return check_url(v, "ssh", true);
    if (head.starts_with("http://")) return Checked::refuse(quoted("repo", v) + ": plain http is not allowed, use https://");
    if (head.starts_with("git://")) return Checked::refuse(quoted("repo", v) + ": git:// is unauthenticated, use https:// or ssh://");
    if (head.starts_with("file://")) return check_local(v, v.substr(7), policy);
    if (v.front() == '/') return check_local(v, v, policy);
    if (v.find("::") != std::string_view::npos || v.find("://") != std::string_view::npos)
        return Checked::refuse(quoted("repo", v) + ": this transport is not allowed; " + std::string(kRepoForms));
    if (v.find('@') != std::string_view::npos) return check_scp(v);
    if (is_github_shorthand(v)) return Checked::accept(std::string(v));
    return Checked::refuse(quoted("repo", v) + ": not a form sitesfs accepts; " + std::string(kRepoForms));
}

std::string repo_fetch_url(std::string_view stored) {
    if (!is_github_shorthand(stored)) return std::string(stored);
    std::string url = "https://github.com/" + std::string(stored);
    return url.ends_with(".git") ? url : url + ".git";
}

Checked check_domain(std::string_view v, const ValidationPolicy&) {
    if (v.empty()) return Checked::accept({});
    if (v.size() > 4096) return Checked::refuse(quoted("domain", v) + ": longer than 4096 characters");
    std::vector<std::string> names;
    std::set<std::string> seen;
    size_t i = 0;
    while (i < v.size()) {
        while (i < v.size() && is_space(v[i])) ++i;
        size_t end = i;
        while (end < v.size() && !is_space(v[end])) ++end;
        if (end == i) break;
        const std::string_view raw = v.substr(i, end - i);
        i = end;
        std::string why;
        const std::string ascii = to_ascii(raw, why);
        if (why.empty()) why = check_hostname(ascii);
        if (!why.empty()) return Checked::refuse(quoted("domain", raw) + ": " + why);
        if (!seen.insert(ascii).second) return Checked::refuse(quoted("domain", raw) + ": listed twice");
        names.push_back(ascii);
    }
    if (names.size() > 100) return Checked::refuse("domain: at most 100 names per site");
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : " ") + n;
    return Checked::accept(out);
}

Checked check_branch(std::string_view v, const ValidationPolicy&) {
    if (v.empty()) return Checked::accept({});
    if (v.size() > 255) return Checked::refuse(quoted("branch", v) + ": longer than 255 characters");
    if (has_control(v) || std::any_of(v.begin(), v.end(), is_space))
        return Checked::refuse(quoted("branch", v) + ": spaces and control characters are not allowed");
    if (v.front() == '-' || v.front() == '/') return Checked::refuse(quoted("branch", v) + ": cannot start with '-' or '/'");
    if (v == "@" || v == "HEAD") return Checked::refuse(quoted("branch", v) + ": '@' and 'HEAD' name the checked-out commit, not a branch");
    if (v.starts_with("refs/")) return Checked::refuse(quoted("branch", v) + ": give the short branch name, without refs/");
    for (std::string_view bad : {"..", "@{", "\\", "~", "^", ":", "?", "*", "["})
        if (v.find(bad) != std::string_view::npos)
            return Checked::refuse(quoted("branch", v) + ": '" + std::string(bad) + "' is not allowed in a branch name");
    static const int init = git_libgit2_init();
    (void)init;
    int valid = 0;
    if (git_reference_name_is_valid(&valid, ("refs/heads/" + std::string(v)).c_str()) != 0 || !valid)
        return Checked::refuse(quoted("branch", v) + ": not a valid git branch name");
    return Checked::accept(std::string(v));
}

Checked check_path(std::string_view v, const ValidationPolicy&) {
    if (v.empty()) return Checked::accept({});
    if (v.size() > 1024) return Checked::refuse(quoted("path", v) + ": longer than 1024 characters");
    if (v.front() == '/') return Checked::refuse(quoted("path", v) + ": give a path relative to the repo root");
    if (v.size() > 1 && v.back() == '/') v.remove_suffix(1);
    if (auto why = check_segments(v, "._~+-"); !why.empty()) return Checked::refuse(quoted("path", v) + ": " + why);
    for (std::string_view seg : split(v, '/'))
        if (seg == ".git") return Checked::refuse(quoted("path", v) + ": a .git directory is never served");
    return Checked::accept(std::string(v));
}

Checked check_deploy_key_ref(std::string_view v, const ValidationPolicy&) {
    if (v.empty()) return Checked::accept({});
    const size_t colon = v.find(':');
    const std::string_view provider = v.substr(0, colon);
    const std::string_view name = colon == std::string_view::npos ? std::string_view() : v.substr(colon + 1);
    const bool provider_ok = !provider.empty() && provider.size() <= 32 && provider.front() >= 'a' && provider.front() <= 'z' &&
                             std::all_of(provider.begin(), provider.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
    const bool name_ok = !name.empty() && name.size() <= 128 && name.front() != '.' &&
                         std::all_of(name.begin(), name.end(), [](char c) { return is_alnum(c) || std::string_view("._@+=-").find(c) != std::string_view::npos; });
    if (colon == std::string_view::npos || !provider_ok || !name_ok)
        return Checked::refuse(quoted("deploy_key_ref", v) + ": write PROVIDER:NAME (e.g. file:blog), or nothing for a public repo");
    return Checked::accept(std::string(v));
}

Checked check_commit(std::string_view v, const ValidationPolicy&) {
    if (v.empty()) return Checked::accept({});
    if (v.size() < 7 || v.size() > 40 || !std::all_of(v.begin(), v.end(), is_hex))
        return Checked::refuse(quoted("commit", v) + ": write 7 to 40 hex digits, or nothing to follow the branch");
    return Checked::accept(lower(v));
}

}  // namespace sitesfs
