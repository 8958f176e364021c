// unlink, rmdir: names going away. Unlinking a temporary file drops it; unlinking a setting takes
// its name away in this mount and keeps its value; rmdir removes a site.
#include <spdlog/spdlog.h>

#include <cerrno>

#include "fs/filesystem.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs {

int Filesystem::unlink(const Node& dir, std::string_view name) {
    if (dir.kind != NodeKind::SiteDir) return dir.kind == NodeKind::Root ? EPERM : ENOTDIR;
    std::lock_guard lock(mu_);
    if (stale_locked(dir)) return ENOENT;
    if (const FieldSpec* f = find_field(name)) {
        // Reports are sitesfs's to write; they are not listed, so rm -r never meets them.
        if (!is_writable(*f)) return EPERM;
        // The name goes and the value stays: tar, install, mv and cp --remove-destination unlink,
        // then create the name anew, which brings it back with their value; rm -r unlinks every
        // file before its rmdir. Clearing the value would leave a site half-undone if the create
        // never came.
        if (absent_locked(dir.site, f)) return ENOENT;
        set_absent_locked(dir, f, true);
        return 0;
    }
    if (!drop_temp_locked(dir.site, name)) return ENOENT;
    listing_changed(dir);
    return 0;
}

int Filesystem::remove_site(std::string_view name) {
    {
        std::lock_guard lock(mu_);
        if (auto s = temps_.find(std::string(name)); s != temps_.end() && !s->second.empty()) {
            spdlog::info("rmdir {} refused: temporary files are still open in it ({})", name,
                         s->second.begin()->first);
            return ENOTEMPTY;
        }
    }
    if (auto outcome = store_.remove_site(name); !outcome.ok()) {
        spdlog::warn("rmdir {} refused: {}", name, outcome.reason);
        return outcome.err;
    }
    std::lock_guard lock(mu_);
    forget_site_locked(std::string(name));
    return 0;
}

}  // namespace sitesfs::fs

namespace sitesfs::fs::ops {

void unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    auto& fs = fs_of(req);
    auto dir = fs.node(parent);
    const int err = !dir ? ENOENT : fs.options().read_only ? EROFS : fs.unlink(*dir, name);
    fuse_reply_err(req, err);
}

void rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    auto& fs = fs_of(req);
    const int err = fs.options().read_only ? EROFS : parent != kRootIno ? ENOTDIR : fs.remove_site(name);
    fuse_reply_err(req, err);
}

}  // namespace sitesfs::fs::ops
