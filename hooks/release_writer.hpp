// What every release holds, whatever made it (a commit's tree, a build's output): directories
// 0755 and regular files 0644 or 0755, each made with O_EXCL|O_NOFOLLOW under a directory fd, no
// `.git` at any depth in any letter case, within the caps of [reconcile] max_files and max_bytes.
// Links, devices and anything else never reach a web root.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.hpp"

namespace sitesfs::hooks {

// Caps for a release tree; exceeding one fails the write cleanly (naming the cap).
struct TreeLimits {
    uint64_t max_files = 100000;
    uint64_t max_bytes = 1ull << 30;
};

struct TreeReport {
    uint64_t files = 0;
    uint64_t bytes = 0;
    std::vector<std::string> skipped;  // "path: why" for every entry not written (link, .git, submodule)
};

// A release could not be written: a cap, the depth, or the file system's reason, with the path.
struct ReleaseError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// "DOING PATH: strerror(errno)", for the system call that just failed.
ReleaseError release_os_error(const std::string& doing, const std::string& path);

// Entry names come from a repository or a build and end up in one-line status, log and journal
// lines: control bytes (a newline could forge a line) and '\\' are written as escapes.
std::string shown_name(std::string_view name);

class ReleaseWriter {
public:
    // Every level holds a directory fd open (and a tree object, for git): a web root is never this
    // deep, and a crafted tree nested thousands of levels would otherwise exhaust fds or the stack.
    static constexpr int kMaxDepth = 128;

    ReleaseWriter(const TreeLimits& limits, TreeReport& report) : limits_(limits), report_(report) {}

    // `.git` in any letter case: on a case-insensitive file system (or behind a server that folds
    // case) .GIT would be a repository too. Never written.
    static bool is_dot_git(std::string_view name);
    // Names that are not one entry of one directory (empty, ".", "..", with a '/').
    static bool is_unsafe_name(std::string_view name);

    static void check_depth(int depth, const std::string& path);
    // Makes directory `name` under `dirfd` with mode 0755, counted as an entry; returns its fd.
    Fd make_dir(int dirfd, const std::string& name, const std::string& path);
    // Creates regular file `name` under `dirfd` with `mode` (0644 or 0755), counted as an entry,
    // after checking that `size` more bytes fit the cap; returns its fd for write_all and close_file.
    Fd make_file(int dirfd, const std::string& name, const std::string& path, mode_t mode, uint64_t size);
    static void write_all(int fd, std::string_view data, const std::string& path);
    // Closes the file (a deferred write error surfaces here) and counts its bytes.
    void close_file(Fd& fd, uint64_t size, const std::string& path);

private:
    // Directories count against max_files too: identical subtrees cost nothing in git, so a small
    // repository could otherwise expand into millions of directories.
    void count_entry(const std::string& path);

    const TreeLimits& limits_;
    TreeReport& report_;
    uint64_t entries_ = 0;
};

}  // namespace sitesfs::hooks
