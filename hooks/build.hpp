// A site's build (docs/builds.md): the release it makes is named by what made it, at most
// [build] jobs run at once, it runs sandboxed as the [build] user in a scratch dir of its own, and
// its output reaches the release only through the release rules (release_writer.hpp).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hooks/builders.hpp"
#include "hooks/release_writer.hpp"
#include "hooks/sandbox.hpp"
#include "schemas/site_record.hpp"

namespace sitesfs::hooks {

// The name of the site's release of `commit` under releases/: the commit alone for a tree served
// as committed; with submodules or a builder, the commit, '-' and 12 hex digits of a SHA-256 of
// what made it (the submodules setting, the builder's name, command, network and environment, not
// its limits), so a changed builder builds anew instead of serving what the old one made. nullopt
// when the site names a builder the config lacks.
std::optional<std::string> release_name(const std::string& commit, const SiteRecord& site, const BuildConfig& build);

// Makes [build] dir (root's, 0755) when missing, and refuses one that is not a directory of the
// daemon's own user writable by nobody else: a tmpfs like /dev/shm lets any user make names, and
// a dir another user made could be swapped for a link. Throws ReleaseError.
void ensure_build_root(const std::filesystem::path& dir);

// At most [build] jobs builds at once: each takes cores and memory, unlike a deploy that waits.
class BuildSlots {
public:
    explicit BuildSlots(unsigned jobs) : free_(jobs) {}

    class Slot {
    public:
        explicit Slot(BuildSlots& owner) : owner_(&owner) {}
        Slot(Slot&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)) {}
        Slot& operator=(Slot&&) = delete;
        ~Slot() {
            if (owner_) owner_->release();
        }

    private:
        BuildSlots* owner_;
    };

    // Waits for a free slot; nullopt once `cancelled` (asked a few times a second) says so first.
    std::optional<Slot> acquire(const std::function<bool()>& cancelled);

private:
    void release();

    std::mutex mu_;
    std::condition_variable freed_;
    unsigned free_;
};

// A build's scratch dir, removed with this object: DIR/src holds the tree and is where the build
// starts, DIR/out is where it must write the site. DIR is the sandbox's HOME; the build user owns it all.
class BuildDir {
public:
    // Makes DIR (removing what an interrupted run left there) and DIR/out. Throws ReleaseError.
    BuildDir(std::filesystem::path dir, uid_t uid, gid_t gid);
    ~BuildDir();
    BuildDir(const BuildDir&) = delete;
    BuildDir& operator=(const BuildDir&) = delete;

    const std::filesystem::path& dir() const { return dir_; }
    std::filesystem::path src() const { return dir_ / "src"; }
    std::filesystem::path out() const { return dir_ / "out"; }
    // Gives the tree written into src() (as the daemon's user) to the build user: builders write
    // into their source too (hugo's lock file and resources/). Throws ReleaseError.
    void hand_over() const;

private:
    std::filesystem::path dir_;
    uid_t uid_;
    gid_t gid_;
};

// Runs `builder` in `dir`, sandboxed as the [build] user, its command's "{src}" and "{out}"
// replaced by the two dirs. `cancelled` stops it (a newer change superseded it).
SandboxResult run_build(const Builder& builder, const BuildConfig& build, const BuildDir& dir,
                        std::function<bool()> cancelled);

// What `buildlog` shows: the end of the output (kBuildLogBytes at most, valid UTF-8), then a line
// "sitesfs: BUILDER for release RELEASE: SUMMARY in DURATION".
std::string build_log_text(const std::string& builder, const std::string& release, const SandboxResult& result,
                           std::chrono::milliseconds took);

// Appends "sitesfs: WHAT: NOTE" lines to a build log: the first 20 notes, then how many more (a
// build can leave any number of links; the daemon's log has them all).
void add_build_notes(std::string& log, std::string_view what, const std::vector<std::string>& notes);

// Copies the build's output dir `from` into `to` (which must not exist; its parent must) under the
// release rules: directories and regular files only, each opened without following links; a link,
// device, FIFO or socket is left out and named in `skipped`, as is `.git`. `from` itself must be a
// directory, not a link to one. Throws ReleaseError; on failure `to` may be partly written.
TreeReport copy_build_output(const std::filesystem::path& from, const std::filesystem::path& to, const TreeLimits& limits);

}  // namespace sitesfs::hooks
