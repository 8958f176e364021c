// Submodules of a release: which commits of other repositories a commit's tree pins, where its
// .gitmodules says they come from, and fetching them into the site's own repository so that
// GitRepo::write_tree(..., Submodules::Recursive) can write them. Only `path` and `url` are read
// from .gitmodules; nothing in it is ever run (`update = !command` is read past like any other key).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "hooks/git_repo.hpp"
#include "schemas/validators.hpp"

namespace sitesfs::hooks {

// A .gitmodules larger than this is refused; real ones are a few hundred bytes.
constexpr uint64_t kMaxGitmodulesBytes = 64 * 1024;
// Submodules one release may have, nested ones included.
constexpr size_t kMaxSubmodules = 64;

// One [submodule "NAME"] section, with what sitesfs reads of it.
struct SubmoduleEntry {
    std::string name;
    std::string path;  // "" when the section sets none
    std::string url;   // as written; "" when the section sets none
    int line = 0;      // of the section's first header, for messages
};

// Parses .gitmodules text in git's config syntax (quotes, escapes, comments, continued lines).
// Sections other than [submodule "NAME"] and keys other than path and url are read past; a key
// set twice keeps its last value, as in git. `file` names the file in messages, e.g.
// ".gitmodules of commit 1a2b3c4d5e6f". Throws GitError naming the file and line.
std::vector<SubmoduleEntry> parse_gitmodules(std::string_view text, const std::string& file);

// The URL a submodule's `url` names when its superproject comes from `super_url`. As in git, a url
// starting with ./ or ../ is relative to super_url, each ../ taking off the last part of its path
// (https://, ssh:// and file:// URLs, user@host:path, local paths); any other url is returned
// unchanged. Throws GitError when the ../ parts climb above the top of super_url.
std::string resolve_submodule_url(const std::string& url, const std::string& super_url);

// Calls `fetch` once with the options to reach `url` with (deploy key, known hosts, cancellation,
// timeouts): the caller's policy for a remote, around GitRepo::fetch_module_commit.
using SubmoduleRemote =
    std::function<void(const std::string& url, const std::function<void(const RemoteOptions&)>& fetch)>;

// Makes sure the commit of every submodule in the tree of `commit` (which must be in `repo`) is in
// `repo` too, and so on for the submodules of those commits. Each gitlink is matched by path to an
// entry of the .gitmodules of the commit that holds it; its url is resolved against the URL that
// commit came from (`super_url` for `commit`), checked with check_repo(url, policy), and the commit
// fetched through `remote` when it is not here yet. Throws GitError naming the submodule's path
// for a missing entry, a refused url, a commit its repository does not have, and beyond
// kMaxSubmodules or kMaxSubmoduleDepth.
void fetch_submodules(GitRepo& repo, const std::string& commit, const std::string& super_url,
                      const ValidationPolicy& policy, const SubmoduleRemote& remote);

}  // namespace sitesfs::hooks
