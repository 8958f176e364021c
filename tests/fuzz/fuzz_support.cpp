#include "tests/fuzz/fuzz_support.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "common/text.hpp"

namespace sitesfs::fuzz {

namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool one_of(char c, std::string_view set) { return set.find(c) != std::string_view::npos; }

// The code points that are whitespace, controls or invisible direction/joiner marks in UTF-8:
// they could hide or reorder what a person reads in a status file or a terminal.
bool has_unicode_space_or_control(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        uint32_t cp = b;
        size_t len = 1;
        if (b >= 0xf0) len = 4, cp = b & 0x07;
        else if (b >= 0xe0) len = 3, cp = b & 0x0f;
        else if (b >= 0xc0) len = 2, cp = b & 0x1f;
        for (size_t k = 1; k < len && i + k < s.size(); ++k) cp = cp << 6 | (static_cast<unsigned char>(s[i + k]) & 0x3f);
        i += len;
        if (cp < 0x21 || (cp >= 0x7f && cp <= 0xa0) || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200f) ||
            (cp >= 0x2028 && cp <= 0x202f) || (cp >= 0x205f && cp <= 0x206f) || cp == 0x3000 || cp == 0xfeff)
            return true;
    }
    return false;
}

std::string label_problem(std::string_view label) {
    if (label.empty() || label.size() > 63) return "a label is empty or longer than 63";
    if (!std::all_of(label.begin(), label.end(), [](char c) { return is_lower_alnum(c) || c == '-'; }))
        return "a label holds a byte outside [a-z0-9-]";
    if (label.front() == '-' || label.back() == '-') return "a label starts or ends with '-'";
    return {};
}

std::string relative_path_problem(std::string_view v, std::string_view extra) {
    for (std::string_view seg : split(v, '/')) {
        if (seg.empty() || seg == "." || seg == "..") return "an empty, '.' or '..' segment";
        if (!std::all_of(seg.begin(), seg.end(), [&](char c) { return is_alnum(c) || one_of(c, extra); }))
            return "a byte outside [A-Za-z0-9" + std::string(extra) + "]";
    }
    return {};
}

std::string domain_problem(std::string_view names) {
    if (names.front() == ' ' || names.back() == ' ') return "a leading or trailing separator";
    for (std::string_view name : split(names, ' ')) {
        if (name.empty()) return "two separators in a row";
        if (name == "import") return "'import' is a Caddyfile directive";
        if (name.size() > 253) return "a name longer than 253";
        if (name.starts_with("*.")) name.remove_prefix(2);
        for (std::string_view label : split(name, '.'))
            if (auto why = label_problem(label); !why.empty()) return why;
    }
    return {};
}

// Items each once, host names of [a-z0-9._-] labels or label:X, so placement compares plain strings.
std::string hosts_problem(std::string_view items) {
    if (items.front() == ' ' || items.back() == ' ') return "a leading or trailing separator";
    std::set<std::string_view> seen;
    size_t count = 0;
    for (std::string_view item : split(items, ' ')) {
        if (item.empty()) return "two separators in a row";
        if (!seen.insert(item).second) return "an item listed twice";
        if (++count > 64) return "more than 64 items";
        const bool label = item.starts_with("label:");
        if (label) item.remove_prefix(6);
        if (item.empty() || item.size() > (label ? 63 : 253)) return "an empty or over-long item";
        if (!std::all_of(item.begin(), item.end(), [](char c) { return is_lower_alnum(c) || one_of(c, "._-"); }))
            return "a byte outside [a-z0-9._-]";
        if (!label)
            for (std::string_view part : split(item, '.'))
                if (part.empty() || part.size() > 63) return "an empty or over-long label of a host name";
    }
    return {};
}

std::string repo_problem(std::string_view v) {
    if (v.front() == '-') return "a leading '-'";
    if (v.find("::") != std::string_view::npos) return "'::' (a remote helper)";
    if (!std::all_of(v.begin(), v.end(), [](char c) { return is_alnum(c) || one_of(c, "._~+-/:@"); }))
        return "a byte outside [A-Za-z0-9._~+-/:@]";
    return {};
}

std::string branch_problem(std::string_view v) {
    if (v.front() == '-' || v.front() == '/' || v.back() == '/' || v.back() == '.') return "a bad first or last byte";
    for (std::string_view bad : {"..", "@{", "//", "\\"})
        if (v.find(bad) != std::string_view::npos) return "'" + std::string(bad) + "'";
    for (char c : v)
        if (static_cast<unsigned char>(c) < 0x80 && !is_alnum(c) && !one_of(c, "._-/+@=,")) return "an ASCII byte outside [A-Za-z0-9._-/+@=,]";
    if (has_unicode_space_or_control(v)) return "a Unicode space, control or invisible mark";
    return {};
}

}  // namespace

void violation(std::string_view what, std::string_view detail) {
    std::fprintf(stderr, "\n==== fuzz property violated: %.*s\n%.*s\n", static_cast<int>(what.size()), what.data(),
                 static_cast<int>(detail.size()), detail.data());
    std::abort();
}

std::string alphabet_problem(std::string_view field, std::string_view v) {
    if (v.empty()) return field == "site_name" ? "empty" : "";  // an empty field means unset
    if (field == "site_name") {
        if (v.size() > 63 || !is_lower_alnum(v.front())) return "longer than 63 or a bad first byte";
        if (!std::all_of(v.begin(), v.end(), [](char c) { return is_lower_alnum(c) || c == '.' || c == '-'; }))
            return "a byte outside [a-z0-9.-]";
        return {};
    }
    if (field == "repo") return repo_problem(v);
    if (field == "domain") return domain_problem(v);
    if (field == "hosts") return hosts_problem(v);
    if (field == "branch") return branch_problem(v);
    if (field == "path") {
        if (v.front() == '/' || v.back() == '/') return "a leading or trailing '/'";
        for (std::string_view seg : split(v, '/')) {
            std::string lower(seg);
            for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (lower == ".git") return "a .git segment";
        }
        return relative_path_problem(v, "._~+-");
    }
    if (field == "routing") return v == "static" || v == "spa" ? "" : "not static or spa";
    if (field == "aliases") return v == "serve" || v == "redirect" ? "" : "not serve or redirect";
    if (field == "deploy_key_ref" || field == "auth_ref") {
        const size_t colon = v.find(':');
        if (colon == std::string_view::npos || colon == 0 || colon + 1 == v.size()) return "not PROVIDER:NAME";
        const std::string_view provider = v.substr(0, colon), name = v.substr(colon + 1);
        if (!std::all_of(provider.begin(), provider.end(), [](char c) { return is_lower_alnum(c) || c == '-'; }))
            return "a provider byte outside [a-z0-9-]";
        if (name.front() == '.' || !std::all_of(name.begin(), name.end(), [](char c) { return is_alnum(c) || one_of(c, "._@+=-"); }))
            return "a name byte outside [A-Za-z0-9._@+=-]";
        return {};
    }
    if (field == "check") {
        // A path for the request line (no byte that ends it or starts a header), then one space
        // and a text for a one-line status file.
        const size_t space = v.find(' ');
        const std::string_view path = v.substr(0, space);
        if (path.front() != '/' || path.starts_with("//")) return "the path does not start with one '/'";
        if (!std::all_of(path.begin(), path.end(), [](char c) { return is_alnum(c) || one_of(c, "-._~!$&'()*+,;=:@/%?"); }))
            return "a path byte outside RFC 3986's path and query characters";
        if (space == std::string_view::npos) return {};
        const std::string_view text = v.substr(space + 1);
        if (text.empty() || text.front() == ' ' || text.back() == ' ' || text.back() == '\t') return "blanks around the text";
        if (std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
            return "a control byte in the text";
        // ASCII spaces are the text's own; any other space or invisible mark is not.
        std::string words(text);
        std::erase(words, ' ');
        if (has_unicode_space_or_control(words)) return "a Unicode space, control or invisible mark in the text";
        return {};
    }
    if (field == "commit") {
        if (v.size() < 7 || v.size() > 40) return "not 7 to 40 digits";
        if (!std::all_of(v.begin(), v.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
            return "a byte outside [0-9a-f]";
        return {};
    }
    return "unknown field " + std::string(field);
}

std::string rules_regex_problem(std::string_view regex, size_t captures) {
    if (!regex.starts_with("^/") || !regex.ends_with('$')) return "not anchored, or not starting with '/'";
    std::string_view rest = regex.substr(1, regex.size() - 2);
    size_t groups = 0;
    while (!rest.empty()) {
        bool piece = false;
        for (std::string_view p : {"/?", "[.]", "[+]", "([^/]+)", "(.*)"}) {
            if (!rest.starts_with(p)) continue;
            if ((p == "/?" || p == "(.*)") && rest.size() != p.size()) return std::string(p) + " before the end";
            groups += p.starts_with('(') ? 1 : 0;
            rest.remove_prefix(p.size());
            piece = true;
            break;
        }
        if (piece) continue;
        if (!is_alnum(rest.front()) && !one_of(rest.front(), "_~/-")) return "a byte outside the pieces and [A-Za-z0-9_~/-]";
        rest.remove_prefix(1);
    }
    return groups == captures ? "" : "the groups are not one per capture name";
}

std::string rules_target_problem(std::string_view target, bool external) {
    const size_t q = target.find('?');
    std::string_view path = target.substr(0, q);
    if (q != std::string_view::npos) {
        const std::string_view query = target.substr(q + 1);
        if (query.empty() || !std::all_of(query.begin(), query.end(), [](char c) { return is_alnum(c) || one_of(c, "._~=&+-"); }))
            return "an empty query or a query byte outside [A-Za-z0-9._~=&+-]";
    }
    if (external) {
        const size_t scheme = path.starts_with("https://") ? 8 : path.starts_with("http://") ? 7 : 0;
        if (scheme == 0) return "a URL that is not http:// or https://";
        path.remove_prefix(scheme);
        const size_t end = std::min(path.find_first_of(":/"), path.size());
        const std::string_view host = path.substr(0, end);
        if (host.empty() || host.size() > 253) return "an empty or over-long host";
        for (std::string_view label : split(host, '.'))
            if (auto why = label_problem(label); !why.empty()) return "host: " + why;
        path.remove_prefix(end);
        if (path.starts_with(':')) {
            const size_t slash = std::min(path.find('/'), path.size());
            const std::string_view port = path.substr(1, slash - 1);
            if (port.empty() || port.size() > 5 || port.front() == '0' ||
                !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
                std::stoi(std::string(port)) > 65535)
                return "a port that is not 1..65535";
            path.remove_prefix(slash);
        }
        if (!path.empty() && path.front() != '/') return "a URL path that does not start with '/'";
    } else if (!path.starts_with('/') || path.starts_with("//")) {
        return "a site path that does not start with one '/'";
    }
    if (!std::all_of(path.begin(), path.end(), [](char c) { return is_alnum(c) || one_of(c, "._~/+-\x01"); }))
        return "a path byte outside [A-Za-z0-9._~/+-] and the captures";
    return {};
}

std::string header_value_problem(std::string_view v) {
    if (v.empty() || v.size() > 1024) return "empty or longer than 1024";
    if (v.front() == ' ' || v.back() == ' ') return "not trimmed";
    if (!std::all_of(v.begin(), v.end(), [](char c) { return c >= 0x20 && c <= 0x7e && !one_of(c, "\"\\{}`"); }))
        return "a byte outside printable ASCII without '\"', '\\', '{', '}' and '`'";
    return {};
}

std::string message_problem(std::string_view m) {
    if (m.empty()) return "empty";
    for (char c : m)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
            return "byte " + std::to_string(static_cast<unsigned char>(c)) + " is not printable ASCII";
    return {};
}

ScratchDir::ScratchDir(std::string_view tag) {
    // scripts/fuzz points this at a dir of its own, so what a crashed run leaves is removed with it.
    const char* env = std::getenv("SITESFS_FUZZ_SCRATCH");
    const std::filesystem::path base = env && *env ? env : std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string tmpl = (base / ("sitesfs-fuzz-" + std::string(tag) + ".XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) violation("cannot create a scratch dir", tmpl);
    path_ = tmpl;
}

ScratchDir::~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

void ScratchDir::clear() const {
    for (const auto& entry : std::filesystem::directory_iterator(path_)) std::filesystem::remove_all(entry.path());
}

void write_file(const std::filesystem::path& file, std::string_view bytes) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) violation("cannot write a scratch file", file.string());
}

std::string read_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

}  // namespace sitesfs::fuzz
