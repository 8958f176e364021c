// rename: the commit point of editors that write a temporary file and move it over the original.
// Within one site directory: a temporary file renamed over a field commits its content as the
// field's value; a field renamed onto a new name leaves a temporary copy there and its own name
// absent; temporary files move among themselves.
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>  // RENAME_NOREPLACE

#include "fs/filesystem.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs {

int Filesystem::rename(const Node& dir, std::string_view from, std::string_view to, unsigned flags) {
    if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE)) return EINVAL;
    if (dir.kind != NodeKind::SiteDir) {
        spdlog::info("refused to rename '{}' to '{}': sites cannot be renamed; mkdir the new one", from, to);
        return EPERM;
    }
    if (from == to) return 0;
    const FieldSpec* from_field = find_field(from);
    const FieldSpec* to_field = find_field(to);
    if (from_field && to_field) return EINVAL;
    if (to_field) {
        if (!is_writable(*to_field)) return EACCES;
        std::shared_ptr<TempFile> temp;
        std::string value;
        std::optional<Timestamp> explicit_time;
        {
            std::lock_guard lock(mu_);
            if ((flags & RENAME_NOREPLACE) && !absent_locked(dir.site, to_field)) return EEXIST;
            temp = temp_locked(dir.site, from);
            if (!temp) return ENOENT;
            value = temp->data;
            if (temp->mtime_set) explicit_time = temp->mtime;
        }
        const Node field = field_node(dir, to_field);
        if (auto outcome = commit(field, value); !outcome.ok()) return outcome.err;
        if (explicit_time) {
            if (Outcome out = store_.set_field_time(dir.site, to_field->name, *explicit_time); !out.ok())
                spdlog::warn("site {}: {} keeps its own time, not the renamed file's: {}", dir.site, to_field->name, out.reason);
        }
        {
            std::lock_guard lock(mu_);
            if (temp_locked(dir.site, from) == temp && drop_temp_locked(dir.site, from)) listing_changed(dir);
            if (Node* n = inodes_.find(temp->ino)) inodes_.make_field(*n, to_field);
            set_absent_locked(dir, to_field, false);
        }
        // The kernel now maps `to` to the temp's inode; make it look the field up again.
        invalidator_->push(InvalTarget{dir.ino, std::string(to)});
        return 0;
    }
    std::lock_guard lock(mu_);
    if (stale_locked(dir)) return ENOENT;
    if ((flags & RENAME_NOREPLACE) && temp_locked(dir.site, to)) return EEXIST;
    std::shared_ptr<TempFile> moved;
    if (from_field) {
        // Editors rename the original away before writing a new one (vim's backupcopy=no): the
        // new name gets a temporary copy of the content, and the field's name becomes absent as
        // after an unlink (the value stays) until the editor creates it again.
        if (!is_writable(*from_field)) return EPERM;
        if (absent_locked(dir.site, from_field)) return ENOENT;
        auto site = store_.site(dir.site);
        if (!site) return ENOENT;
        moved = std::make_shared<TempFile>();
        moved->ino = kTempBit | next_temp_++;
        moved->data = from_field->render(*site) + "\n";
        moved->mode = options_.file_mode;
        moved->uid = options_.uid;
        moved->gid = options_.gid;
        moved->mtime = moved->ctime = from_field->changed(*site);
        set_absent_locked(dir, from_field, true);
    } else {
        moved = temp_locked(dir.site, from);
        if (!moved) return ENOENT;
        drop_temp_locked(dir.site, from);
    }
    if (temp_locked(dir.site, to)) drop_temp_locked(dir.site, to);
    moved->name = std::string(to);
    moved->ctime = Clock::now();
    temps_[dir.site].emplace(moved->name, moved);
    listing_changed(dir);
    invalidator_->push(InvalTarget{dir.ino, std::string(to)});
    return 0;
}

}  // namespace sitesfs::fs

namespace sitesfs::fs::ops {

void rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
            unsigned int flags) {
    auto& fs = fs_of(req);
    auto dir = fs.node(parent);
    // Temporary files belong to one site; across sites tools fall back to copying.
    const int err = !dir                      ? ENOENT
                    : fs.options().read_only ? EROFS
                    : parent != newparent    ? EXDEV
                                             : fs.rename(*dir, name, newname, flags);
    fuse_reply_err(req, err);
}

}  // namespace sitesfs::fs::ops
