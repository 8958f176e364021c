// One site's bare repository under the data dir, driven with libgit2 in-process (no git CLI).
// Objects are not thread safe: one GitRepo is used by one thread at a time (the reconciler runs
// one reconcile per site at a time, so each site's repo is only ever touched by one thread).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "hooks/deploy_keys.hpp"
#include "hooks/git_stream.hpp"
#include "hooks/known_hosts.hpp"
#include "hooks/release_writer.hpp"
#include "schemas/validators.hpp"

struct git_repository;

namespace sitesfs::hooks {

// What went wrong, in words a person can act on: "fetch https://x/y.git: unexpected HTTP status
// code: 404", "commit 1a2b3c4 is not on branch main of https://x/y.git", ...
struct GitError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// fetch_commit: the server answered that it has no such commit.
struct NoSuchCommitError : GitError {
    using GitError::GitError;
};

// Call once in main before any thread starts: git_libgit2_init, and host git configuration
// (system/global/XDG search paths, so an insteadOf cannot rewrite a URL) switched off.
void init_git();

struct RemoteOptions {
    ValidationPolicy policy;                // the URL is re-checked right before connecting
    // Polled during transfers and while a connection waits for the server; true aborts with GitError.
    // Over SSH it is also called from the connection's watchdog thread, so it must be thread-safe.
    std::function<bool()> cancelled;
    StreamLimits timeouts;                  // a server that says nothing this long fails the operation
    // SSH: the private key offered (once; a refusal is not retried), and the pinned host keys every
    // server's key is checked against. Without known_hosts an SSH connection is refused.
    const SecretBuffer* key = nullptr;
    std::string key_ref;                    // for messages: "file:blog"
    KnownHosts* known_hosts = nullptr;
};

// What write_tree does with a submodule (a gitlink: a path in the tree that names a commit).
enum class Submodules {
    Skip,       // left out, with a note in TreeReport::skipped
    Recursive,  // the tree of its commit is written at its path, and so on for that commit's submodules
};

// Submodules inside submodules: a theme holding a library is common, eight levels are not. Bounds
// both what is fetched and what is written, so a crafted chain ends with a clear error.
constexpr int kMaxSubmoduleDepth = 8;

// A submodule as the tree records it: where it goes and the commit it pins.
struct Gitlink {
    std::string path;    // from the tree's root, '/'-separated, as committed (not escaped)
    std::string commit;  // 40 hex
};

class GitRepo {
public:
    // Opens the bare repository at `dir`, creating it (bare, core.symlinks=false) when it does not
    // exist. Throws GitError.
    explicit GitRepo(const std::filesystem::path& dir);
    ~GitRepo();
    GitRepo(const GitRepo&) = delete;
    GitRepo& operator=(const GitRepo&) = delete;

    // The commit the remote's branch points at (empty branch: the remote's default branch, from
    // its HEAD), asked without downloading anything (connect + ls). Throws GitError, including
    // when the branch does not exist ("branch 'x' not found on URL").
    std::string remote_head(const std::string& url, const std::string& branch, const RemoteOptions& options);

    // Fetches only that branch (no tags, no FETCH_HEAD, redirects not followed) into a private ref,
    // and returns the commit it points at (40 hex).
    std::string fetch_branch(const std::string& url, const std::string& branch, const RemoteOptions& options);

    // Fetches exactly one commit by its full id (for a pin not on the followed branch); returns it.
    // Throws NoSuchCommitError when the server says it has no such commit (git upload-pack's "not
    // our ref", or a local repository without it); GitError for everything else. Over HTTP a
    // missing commit cannot be told from a dropped connection (git-http-backend just closes): that
    // stays libgit2's "early EOF".
    std::string fetch_commit(const std::string& url, const std::string& sha40, const RemoteOptions& options);

    // Fetches a submodule's commit into refs/sitesfs/modules/SHA40, a ref of its own: the
    // superproject's refs stay as fetch_branch and fetch_commit left them, and each submodule
    // commit stays reachable whichever repository it came from. Asks for the commit by id; when
    // the server has no such commit or takes no ids (git upload-pack's default for an id that no
    // ref of its points at), fetches the remote's default branch instead and keeps the commit if
    // that brought it. Returns whether the commit is here now; throws GitError when a fetch failed
    // for another reason.
    bool fetch_module_commit(const std::string& url, const std::string& sha40, const RemoteOptions& options);

    // The full id of the commit named by 7-40 hex digits, when this repository has it; "" when it
    // does not. Throws GitError when the prefix is ambiguous or names something that is not a commit.
    std::string find_commit(const std::string& hex) const;

    // The content of the regular file at `path` (from the root, '/'-separated) in the tree of
    // commit `sha`; nullopt when there is nothing at that path. Throws GitError when it is larger
    // than `max_bytes` (checked before it is read) or is not a regular file.
    std::optional<std::string> read_file(const std::string& sha, const std::string& path, uint64_t max_bytes) const;

    // The gitlinks in the tree of commit `sha`, at any depth, in tree order; those under entries
    // write_tree skips (.git, unsafe names) are left out as write_tree leaves them out. Stops after
    // max + 1, so the caller can tell that there are more than `max`.
    std::vector<Gitlink> gitlinks(const std::string& sha, size_t max) const;

    // Writes the tree of commit `sha` into `dir`, which must not exist yet (its parent must).
    // Only directories (0755) and regular files (0644, or 0755 when executable in git) are made, with
    // O_EXCL|O_NOFOLLOW: a symlink in the repo becomes a plain file holding the link text (what
    // core.symlinks=false does), a `.git` entry at any depth and in any letter case is skipped, a
    // submodule is skipped unless `submodules` says otherwise. No filters (no smudge, no CRLF
    // conversion): bytes as committed. With Submodules::Recursive a submodule's commit must be in
    // this repository (fetch_module_commit); its files follow the same rules and count against the
    // same limits. Throws GitError, or ReleaseError for a cap, the depth or the file system. On
    // failure `dir` may be partly written; the caller removes it.
    TreeReport write_tree(const std::string& sha, const std::filesystem::path& dir, const TreeLimits& limits,
                          Submodules submodules = Submodules::Skip) const;

private:
    std::string fetch_branch_into(const std::string& url, const std::string& branch, const RemoteOptions& options,
                                  const std::string& ref);
    std::string fetch_commit_into(const std::string& url, const std::string& sha40, const RemoteOptions& options,
                                  const std::string& ref);

    git_repository* repo_ = nullptr;
    std::filesystem::path dir_;
};

}  // namespace sitesfs::hooks
