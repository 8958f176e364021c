#include "hooks/submodules.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "common/text.hpp"

namespace sitesfs::hooks {

namespace {

bool is_alpha(char c) { return ascii::is_lower(c) || ascii::is_upper(c); }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r'; }
std::string quoted(char c) { return "'" + printable(std::string_view(&c, 1)) + "'"; }

// git's config syntax (config.c, git_parse_source), with the same results for what it accepts:
// what sitesfs reads must be what git would have read, or a release would hold other submodules
// than a clone.
class GitmodulesParser {
public:
    GitmodulesParser(std::string_view text, const std::string& file) : text_(text), file_(file) {
        if (text_.starts_with("\xef\xbb\xbf")) text_.remove_prefix(3);  // git skips a UTF-8 BOM
    }

    std::vector<SubmoduleEntry> parse() {
        while (!at_end()) {
            const char c = next();
            if (c == '\n' || is_space(c)) continue;
            if (c == '#' || c == ';') {
                skip_line();
            } else if (c == '[') {
                header();
            } else if (is_alpha(c)) {
                key_value(c);
            } else {
                fail(quoted(c) + " cannot start a line; write [submodule \"NAME\"], KEY = VALUE or a # comment");
            }
        }
        return std::move(entries_);
    }

private:
    bool at_end() const { return pos_ >= text_.size(); }

    // The next character, with "\r\n" read as "\n" (as git does) and the end of the text as "\n".
    // line_ is the line of the character last read; a newline belongs to the line it ends.
    char next() {
        if (at_end()) return '\n';
        if (ended_line_) ++line_;
        char c = text_[pos_++];
        if (c == '\r' && pos_ < text_.size() && text_[pos_] == '\n') c = text_[pos_++];
        if (c == '\0') fail("a NUL byte; .gitmodules is a text file");
        ended_line_ = c == '\n';
        return c;
    }

    [[noreturn]] void fail(const std::string& what) const {
        throw GitError(file_ + ", line " + std::to_string(line_) + ": " + what);
    }

    void skip_line() {
        while (!at_end() && next() != '\n') {
        }
    }

    // After '[': a section name, optionally a quoted subsection, then ']'.
    void header() {
        const int line = line_;
        std::string section;
        char c = next();
        for (; c != ']' && !is_space(c); c = next()) {
            if (c == '\n') fail("'[' without a closing ']'; write [submodule \"NAME\"]");
            if (!is_alpha(c) && !ascii::is_digit(c) && c != '-' && c != '.')
                fail(quoted(c) + " in a section name; write [submodule \"NAME\"]");
            section += ascii::is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c;
        }
        std::optional<std::string> subsection;
        if (c != ']') subsection = quoted_subsection();
        if (section.starts_with("submodule."))
            fail("[" + printable(section) + "] is the old form of a section name; write [submodule \"NAME\"]");
        current_.reset();
        if (section != "submodule") return;  // read past, as git reads past sections it does not use
        if (!subsection) fail("[submodule] needs a name; write [submodule \"NAME\"]");
        // A section named again adds to the first one, as in git.
        auto [it, added] = by_name_.try_emplace(*subsection, entries_.size());
        if (added) entries_.push_back({*subsection, "", "", line});
        current_ = it->second;
    }

    // After the section name and a blank: "NAME"] with \" and \\ (and \x for any x) escaped.
    std::string quoted_subsection() {
        char c = next();
        while (is_space(c)) c = next();
        if (c != '"') fail("a section name is followed by \"NAME\" in double quotes; write [submodule \"NAME\"]");
        std::string name;
        for (c = next(); c != '"'; c = next()) {
            if (c == '\n') fail("the name in [submodule \"...\"] has no closing '\"'");
            if (c == '\\') {
                c = next();
                if (c == '\n') fail("the name in [submodule \"...\"] has no closing '\"'");
            }
            name += c;
        }
        if (next() != ']') fail("\"NAME\" is followed by ']'; write [submodule \"NAME\"]");
        return name;
    }

    // `first` has been read: KEY [= VALUE]. A key without '=' is a boolean; neither path nor url is.
    void key_value(char first) {
        std::string key(1, first);
        char c = next();
        for (; is_alpha(c) || ascii::is_digit(c) || c == '-'; c = next()) key += c;
        key = ascii_lower(key);
        while (is_space(c)) c = next();
        if (c == '\n') {
            if (current_ && (key == "path" || key == "url"))
                fail(key + " has no value; write " + key + " = VALUE");
            return;
        }
        if (c != '=')
            fail(quoted(c) + " after key '" + printable(key) + "'; write KEY = VALUE");
        std::string v = value();
        if (!current_) return;
        if (key == "path") entries_[*current_].path = std::move(v);
        else if (key == "url") entries_[*current_].url = std::move(v);
    }

    // After '=': to the end of the line (or of the lines continued with '\'), blanks around it
    // dropped, "..." quoted, # and ; outside quotes starting a comment.
    std::string value() {
        std::string out;
        size_t blanks = 0;
        bool quoted = false;
        bool comment = false;
        for (;;) {
            char c = next();
            if (c == '\n') {
                if (quoted) fail("a value has no closing '\"'");
                return out;
            }
            if (comment) continue;
            if (is_space(c) && !quoted) {
                if (!out.empty()) ++blanks;
                continue;
            }
            if (!quoted && (c == '#' || c == ';')) {
                comment = true;
                continue;
            }
            out.append(blanks, ' ');
            blanks = 0;
            if (c == '\\') {
                c = next();
                switch (c) {
                case '\n': continue;  // the value goes on on the next line
                case 't': c = '\t'; break;
                case 'b': c = '\b'; break;
                case 'n': c = '\n'; break;
                case '\\':
                case '"': break;
                default: fail("unknown escape '\\" + printable(std::string_view(&c, 1)) + "'; write \\\\ for a backslash");
                }
                out += c;
            } else if (c == '"') {
                quoted = !quoted;
            } else {
                out += c;
            }
        }
    }

    std::string_view text_;
    const std::string& file_;
    size_t pos_ = 0;
    int line_ = 1;
    bool ended_line_ = false;
    std::vector<SubmoduleEntry> entries_;
    std::map<std::string, size_t> by_name_;
    std::optional<size_t> current_;  // the index of the [submodule] section being read, if any
};

}  // namespace

std::vector<SubmoduleEntry> parse_gitmodules(std::string_view text, const std::string& file) {
    return GitmodulesParser(text, file).parse();
}

std::string resolve_submodule_url(const std::string& url, const std::string& super_url) {
    if (!url.starts_with("./") && !url.starts_with("../")) return url;
    std::string base = repo_fetch_url(super_url);
    if (base.ends_with('/')) base.pop_back();
    // Where the path begins: ../ never takes off a scheme, host or user@host.
    size_t top = 0;
    bool scp = false;
    if (const size_t sep = base.find("://"); sep != std::string::npos) {
        top = std::min(base.find('/', sep + 3), base.size());
    } else if (!base.starts_with('/') && base.find(':') != std::string::npos) {
        top = base.find(':') + 1;
        scp = true;
    }
    // user@host:owner/repo: after the last '/' has gone, git takes the path after ':' off too and
    // joins with ':' again (git@host:repo.git + ../other.git is git@host:other.git).
    bool join_with_colon = false;
    std::string_view rest = url;
    for (;;) {
        if (rest.starts_with("./")) {
            rest.remove_prefix(2);
            continue;
        }
        if (!rest.starts_with("../")) break;
        rest.remove_prefix(3);
        const size_t slash = base.rfind('/');
        if (slash != std::string::npos && slash >= top && !join_with_colon) {
            base.resize(slash);
        } else if (scp && !join_with_colon && base.size() > top) {
            base.resize(top - 1);
            join_with_colon = true;
        } else {
            throw GitError("'" + printable(url) + "' climbs above the top of " + printable(super_url) +
                           " (each ../ takes off one part of its path)");
        }
    }
    if (rest.ends_with('/')) rest.remove_suffix(1);
    return base + (join_with_colon ? ":" : "/") + std::string(rest);
}

namespace {

std::string short_id(const std::string& sha) { return sha.substr(0, 12); }

// One fetch_submodules call: what it has counted and visited so far.
class SubmoduleFetch {
public:
    SubmoduleFetch(GitRepo& repo, const ValidationPolicy& policy, const SubmoduleRemote& remote)
        : repo_(repo), policy_(policy), remote_(remote) {}

    // `commit` is in the repository, came from `url`, and sits at `where` in the release ("" for the
    // release itself) `level` submodules deep.
    void visit(const std::string& commit, const std::string& where, const std::string& url, int level) {
        const std::vector<Gitlink> links = repo_.gitlinks(commit, kMaxSubmodules - counted_);
        if (links.size() > kMaxSubmodules - counted_)
            throw GitError("more than " + std::to_string(kMaxSubmodules) + " submodules, nested ones included (at " +
                           printable(in_release(where, links.back().path)) + "); a release holds at most that many");
        counted_ += links.size();
        if (links.empty()) return;

        const std::string file =
            where.empty() ? ".gitmodules of commit " + short_id(commit)
                          : ".gitmodules of submodule " + printable(where) + " (commit " + short_id(commit) + ")";
        const std::optional<std::string> text = repo_.read_file(commit, ".gitmodules", kMaxGitmodulesBytes);
        if (!text)
            throw GitError("submodule " + printable(in_release(where, links.front().path)) + ": commit " +
                           short_id(commit) + " has no .gitmodules to say where it comes from; add a [submodule] " +
                           "section with its path and url");
        const std::vector<SubmoduleEntry> entries = parse_gitmodules(*text, file);

        for (const Gitlink& link : links) {
            const std::string path = in_release(where, link.path);
            if (level + 1 > kMaxSubmoduleDepth)
                throw GitError("submodules nest deeper than " + std::to_string(kMaxSubmoduleDepth) + " levels at " +
                               printable(path));
            const SubmoduleEntry& entry = entry_for(entries, link, path, file);
            const std::string module_url = checked_url(entry, url, path, file);
            fetch(link.commit, module_url, path);
            if (visited_.emplace(link.commit, module_url).second) visit(link.commit, path, module_url, level + 1);
        }
    }

private:
    static std::string in_release(const std::string& where, const std::string& path) {
        return where.empty() ? path : where + "/" + path;
    }

    // The last section with this path, as git takes the last value of a key.
    static const SubmoduleEntry& entry_for(const std::vector<SubmoduleEntry>& entries, const Gitlink& link,
                                           const std::string& path, const std::string& file) {
        const SubmoduleEntry* found = nullptr;
        for (const SubmoduleEntry& entry : entries)
            if (entry.path == link.path) found = &entry;
        if (found == nullptr)
            throw GitError("submodule " + printable(path) + " (commit " + short_id(link.commit) + ") has no entry in " +
                           file + "; add [submodule \"NAME\"] with path = " + printable(link.path) + " and its url");
        if (found->url.empty())
            throw GitError(file + ", line " + std::to_string(found->line) + ": [submodule \"" + printable(found->name) +
                           "\"] (submodule " + printable(path) + ") has no url; add url = URL");
        return *found;
    }

    // The URL the submodule is fetched from, once the site's policy has accepted it.
    std::string checked_url(const SubmoduleEntry& entry, const std::string& super_url, const std::string& path,
                            const std::string& file) const {
        const std::string at = "submodule " + printable(path) + " (" + file + ", line " + std::to_string(entry.line) + ")";
        std::string resolved;
        try {
            resolved = resolve_submodule_url(entry.url, super_url);
        } catch (const GitError& e) {
            throw GitError(at + ": url " + e.what());
        }
        const Checked checked = check_repo(resolved, policy_);
        if (!checked.ok)
            throw GitError(at + ": " + checked.reason +
                           (resolved == entry.url ? "" : " (url = " + printable(entry.url) + " resolved against " +
                                                             printable(super_url) + ")"));
        return repo_fetch_url(checked.value);
    }

    void fetch(const std::string& commit, const std::string& url, const std::string& path) {
        bool here = false;
        try {
            here = !repo_.find_commit(commit).empty();
            if (!here) remote_(url, [&](const RemoteOptions& options) { here = repo_.fetch_module_commit(url, commit, options); });
        } catch (const GitError& e) {
            throw GitError("submodule " + printable(path) + ": " + e.what());
        }
        if (!here)
            throw GitError("submodule " + printable(path) + ": commit " + commit + " is not in " + printable(url) +
                           ": asked for it by id and fetched the default branch; push the commit there, or point the " +
                           "submodule at a commit that is");
    }

    GitRepo& repo_;
    const ValidationPolicy& policy_;
    const SubmoduleRemote& remote_;
    size_t counted_ = 0;
    std::set<std::pair<std::string, std::string>> visited_;  // (commit, url): the same .gitmodules is read once
};

}  // namespace

void fetch_submodules(GitRepo& repo, const std::string& commit, const std::string& super_url,
                      const ValidationPolicy& policy, const SubmoduleRemote& remote) {
    SubmoduleFetch(repo, policy, remote).visit(commit, "", repo_fetch_url(super_url), 0);
}

}  // namespace sitesfs::hooks
