// One site's bare repository under the data dir, driven with libgit2 in-process (no git CLI).
// Objects are not thread safe: one GitRepo is used by one thread at a time (the reconciler runs
// one reconcile per site at a time, so each site's repo is only ever touched by one thread).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
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

    // The full id of the commit named by 7-40 hex digits, when this repository has it; "" when it
    // does not. Throws GitError when the prefix is ambiguous or names something that is not a commit.
    std::string find_commit(const std::string& hex) const;

    // Writes the tree of commit `sha` into `dir`, which must not exist yet (its parent must).
    // Only directories (0755) and regular files (0644, or 0755 when executable in git) are made, with
    // O_EXCL|O_NOFOLLOW: a symlink in the repo becomes a plain file holding the link text (what
    // core.symlinks=false does), a `.git` entry at any depth and in any letter case is skipped, a
    // submodule is skipped. No filters (no smudge, no CRLF conversion): bytes as committed.
    // On failure `dir` may be partly written; the caller removes it.
    TreeReport write_tree(const std::string& sha, const std::filesystem::path& dir, const TreeLimits& limits) const;

private:
    git_repository* repo_ = nullptr;
    std::filesystem::path dir_;
};

}  // namespace sitesfs::hooks
