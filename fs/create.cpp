// create, mknod: a new name in a site. A setting's name this mount shows as absent comes back (the
// node is that field; a writer's first value commits it), any other name is an editor's temporary
// file, kept in memory only.
#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <memory>

#include "fs/handles.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs {

Filesystem::Created Filesystem::create(const Node& dir, std::string_view name, mode_t mode, const fuse_ctx* ctx,
                                      bool exclusive) {
    if (dir.kind == NodeKind::Root) {
        spdlog::info("refused to create '{}' in the root: only site directories live there (mkdir)", name);
        return {EPERM, {}};
    }
    if (dir.kind != NodeKind::SiteDir) return {ENOTDIR, {}};
    if (name.size() > 255) return {ENAMETOOLONG, {}};
    std::lock_guard lock(mu_);
    if (stale_locked(dir)) return {ENOENT, {}};
    if (const FieldSpec* f = find_field(name)) {
        if (is_request(*f)) return {exclusive ? EEXIST : 0, inodes_.remember(field_node(dir, f)), false};
        if (!is_writable(*f)) return {EACCES, {}};
        const bool fresh = absent_locked(dir.site, f);
        if (exclusive && !fresh) return {EEXIST, {}};
        set_absent_locked(dir, f, false);
        return {0, inodes_.remember(field_node(dir, f)), fresh};
    }
    if (temp_locked(dir.site, name)) return {EEXIST, {}};
    auto& site_temps = temps_[dir.site];
    if (site_temps.size() >= options_.max_temps_per_site) {
        spdlog::warn("site {}: refused temporary file '{}': already {} temporary files", dir.site, name,
                     site_temps.size());
        return {ENOSPC, {}};
    }
    auto temp = std::make_shared<TempFile>();
    temp->ino = kTempBit | next_temp_++;
    temp->name = std::string(name);
    temp->mode = mode & 07777;
    temp->uid = ctx->uid;
    temp->gid = ctx->gid;
    temp->mtime = temp->ctime = Clock::now();
    site_temps.emplace(temp->name, temp);
    listing_changed(dir);
    Node& node = inodes_.remember(Node{temp->ino, NodeKind::Temp, dir.site, dir.site_id, nullptr, temp});
    return {0, node};
}

}  // namespace sitesfs::fs

namespace sitesfs::fs::ops {

void create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
    auto& fs = fs_of(req);
    auto dir = fs.node(parent);
    if (!dir || fs.options().read_only) {
        fuse_reply_err(req, dir ? EROFS : ENOENT);
        return;
    }
    auto made = fs.create(*dir, name, mode, fuse_req_ctx(req), fi->flags & O_EXCL);
    std::unique_ptr<Handle> h;
    if (!made.err) {
        h = make_handle(made.node, fi->flags);
        // A field created anew starts empty, as a new file does; one that was there all along (the
        // kernel raced another creator) opens as open() would.
        made.err = start_handle(fs, *h, (fi->flags & O_TRUNC) || made.fresh);
    }
    if (made.err) {
        fuse_reply_err(req, made.err);
        return;
    }
    fuse_entry_param e;
    fs.fill_entry(made.node, e);
    set_caching(*h, fi);
    reply_with_handle(fs, std::move(h), fi, [&] { return fuse_reply_create(req, &e, fi); });
}

void mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t) {
    auto& fs = fs_of(req);
    auto dir = fs.node(parent);
    int err = !dir ? ENOENT : fs.options().read_only ? EROFS : !S_ISREG(mode) ? EPERM : 0;
    Filesystem::Created made;
    if (!err) made = fs.create(*dir, name, mode, fuse_req_ctx(req), true);
    // A field made by mknod is an empty file: its value is the empty one.
    if (!err && !made.err && made.node.kind == NodeKind::Field) made.err = fs.commit(made.node, "").err;
    if (err || made.err) {
        fuse_reply_err(req, err ? err : made.err);
        return;
    }
    fuse_entry_param e;
    fs.fill_entry(made.node, e);
    fuse_reply_entry(req, &e);
}

}  // namespace sitesfs::fs::ops
