#include "tests/support/git.hpp"

#include <gtest/gtest.h>

#include "tests/integration/mount_fixture.hpp"

namespace sitesfs::it {

namespace {

// Nothing from the host (config, templates, identity, clock) reaches these repositories.
std::vector<std::string> git_env(const stdfs::path& dir) {
    return {"HOME=" + (dir / "home").string(),
            "XDG_CONFIG_HOME=" + (dir / "home" / ".config").string(),
            "GIT_CONFIG_NOSYSTEM=1",
            "GIT_TERMINAL_PROMPT=0",
            "GIT_AUTHOR_NAME=Site Author",
            "GIT_AUTHOR_EMAIL=author@example.com",
            "GIT_AUTHOR_DATE=2024-01-01T00:00:00Z",
            "GIT_COMMITTER_NAME=Site Author",
            "GIT_COMMITTER_EMAIL=author@example.com",
            "GIT_COMMITTER_DATE=2024-01-01T00:00:00Z",
            "LC_ALL=C"};
}

Run git_in(const stdfs::path& dir, const stdfs::path& cwd, const std::vector<std::string>& args) {
    std::vector<std::string> argv{"git"};
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions options;
    options.cwd = cwd;
    options.env = git_env(dir);
    return run(argv, options);
}

std::string command_line(const std::vector<std::string>& args) {
    std::string out = "git";
    for (const auto& a : args) out += " " + a;
    return out;
}

}  // namespace

TestRepo::TestRepo(const stdfs::path& dir, const std::string& default_branch) : dir_(dir) {
    std::error_code ec;
    stdfs::create_directories(dir / "home", ec);
    if (ec) ADD_FAILURE() << "creating " << (dir / "home") << ": " << ec.message();
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"init", "-q", "--bare", "--initial-branch=" + default_branch, bare().string()},
             {"init", "-q", "--initial-branch=" + default_branch, (dir / "work").string()}}) {
        const Run r = git_in(dir_, dir_, args);
        if (r.code != 0) ADD_FAILURE() << command_line(args) << ": " << describe(r);
    }
    git({"remote", "add", "origin", bare().string()});
}

stdfs::path TestRepo::bare() const { return dir_ / "origin.git"; }

std::string TestRepo::url() const { return "file://" + bare().string(); }

std::string TestRepo::git(const std::vector<std::string>& args) {
    const Run r = git_in(dir_, dir_ / "work", args);
    if (r.code != 0) {
        ADD_FAILURE() << command_line(args) << ": " << describe(r);
        return "";
    }
    return r.out;
}

std::string TestRepo::sh(const std::string& script) {
    const Run r = bash("set -e; " + script, {.cwd = dir_ / "work", .timeout = 300s, .env = git_env(dir_)});
    if (r.code != 0) {
        ADD_FAILURE() << "bash -c '" << script << "': " << describe(r);
        return "";
    }
    return r.out;
}

std::string TestRepo::commit(const std::map<std::string, std::string>& files, const std::string& branch,
                             const std::string& message) {
    const stdfs::path work = dir_ / "work";
    const Run current = git_in(dir_, work, {"symbolic-ref", "--short", "HEAD"});
    if (current.out != branch + "\n") {
        const bool exists = git_in(dir_, work, {"rev-parse", "--verify", "-q", "refs/heads/" + branch}).code == 0;
        // Before the first commit HEAD is unborn and there is nothing to branch from.
        const bool unborn = git_in(dir_, work, {"rev-parse", "--verify", "-q", "HEAD"}).code != 0;
        const std::vector<std::string> args =
            exists    ? std::vector<std::string>{"checkout", "-q", branch}
            : unborn  ? std::vector<std::string>{"symbolic-ref", "HEAD", "refs/heads/" + branch}
                      : std::vector<std::string>{"checkout", "-q", "-b", branch};
        const Run r = git_in(dir_, work, args);
        if (r.code != 0) {
            ADD_FAILURE() << command_line(args) << ": " << describe(r);
            return "";
        }
    }
    for (const auto& [rel, content] : files) {
        const stdfs::path p = work / rel;
        std::error_code ec;
        stdfs::remove_all(p, ec);  // a file may become a link or a directory, and back
        if (ec) {
            ADD_FAILURE() << "removing " << p << ": " << ec.message();
            return "";
        }
        if (content.empty()) continue;
        stdfs::create_directories(p.parent_path(), ec);
        if (content.starts_with("symlink:")) {
            if (!ec) stdfs::create_symlink(content.substr(8), p, ec);
        } else if (!ec) {
            spit(p, content);
            if (slurp(p) != content) ec = std::make_error_code(std::errc::io_error);
        }
        if (ec) {
            ADD_FAILURE() << "writing " << p << ": " << ec.message();
            return "";
        }
    }
    for (const auto& args : std::vector<std::vector<std::string>>{{"add", "-A"},
                                                                   {"commit", "-q", "--allow-empty", "-m", message},
                                                                   {"push", "-q", "origin", branch}}) {
        const Run r = git_in(dir_, work, args);
        if (r.code != 0) {
            ADD_FAILURE() << command_line(args) << ": " << describe(r);
            return "";
        }
    }
    const Run head = git_in(dir_, work, {"rev-parse", "HEAD"});
    if (head.code != 0 || head.out.size() != 41) {
        ADD_FAILURE() << "git rev-parse HEAD: " << describe(head);
        return "";
    }
    return head.out.substr(0, 40);
}

}  // namespace sitesfs::it
