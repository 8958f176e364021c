// Real git repositories for tests, made with the git CLI (the tests may use it; sitesfs never does).
// Author, committer and dates are fixed and HOME/config are isolated, so runs are repeatable.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace sitesfs::it {

class TestRepo {
public:
    // Makes DIR/origin.git (bare, HEAD -> refs/heads/<default_branch>) and DIR/work (a clone).
    explicit TestRepo(const std::filesystem::path& dir, const std::string& default_branch = "main");

    std::filesystem::path bare() const;  // give "file://" + bare() or bare() to sitesfs
    std::string url() const;             // "file://" + bare()

    // Writes `files` into the work tree (relative path -> content; a content of "symlink:TARGET"
    // makes a symlink to TARGET; "" removes the path), commits everything on `branch` (created
    // from the current commit when new) and pushes it. Returns the new commit's 40-hex id.
    // Fails the current test (ADD_FAILURE) and returns "" when git fails.
    std::string commit(const std::map<std::string, std::string>& files, const std::string& branch = "main",
                       const std::string& message = "update");

    // Runs git with these arguments in the work tree (for what commit() does not cover, e.g. adding a
    // submodule or a .git directory with `git add -f`); returns stdout, ADD_FAILURE when it fails.
    std::string git(const std::vector<std::string>& args);

    // Runs a bash script (with `set -e`) in the work tree, with the same isolated git environment,
    // for trees porcelain cannot make (plumbing: hash-object, mktree, commit-tree); returns stdout,
    // ADD_FAILURE when it fails.
    std::string sh(const std::string& script);

private:
    std::filesystem::path dir_;
};

}  // namespace sitesfs::it
