// mkdir: a new site. Only the root holds directories, one per site; the site starts as an empty
// directory whose settings appear as they are created or gain a value (docs/filesystem.md).
#include <spdlog/spdlog.h>

#include <cerrno>

#include "fs/filesystem.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs {

int Filesystem::make_site(std::string_view name, fuse_entry_param& e) {
    if (auto outcome = store_.create_site(name); !outcome.ok()) {
        spdlog::warn("mkdir {} refused: {}", name, outcome.reason);
        return outcome.err;
    }
    if (const int err = lookup(kRootIno, name, e)) return err;
    std::lock_guard lock(mu_);
    const Node* dir = inodes_.find(e.ino);
    if (!dir) return ENOENT;
    for (const auto& f : site_fields())
        if (is_writable(f)) absent_[dir->site].emplace(&f, Absence::Unset);
    return 0;
}

}  // namespace sitesfs::fs

namespace sitesfs::fs::ops {

void mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t) {
    auto& fs = fs_of(req);
    fuse_entry_param e;
    int err = fs.options().read_only ? EROFS : parent != kRootIno ? EPERM : fs.make_site(name, e);
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    fuse_reply_entry(req, &e);
}

}  // namespace sitesfs::fs::ops
