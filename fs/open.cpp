// open, create, mknod, flush, fsync, release.
#include <fcntl.h>

#include <cerrno>
#include <memory>

#include "fs/handles.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs::ops {

namespace {

int check_open(Filesystem& fs, const Node& node, int flags) {
    if (node.kind == NodeKind::Root || node.kind == NodeKind::SiteDir) return EISDIR;
    if (!opens_for_write(flags)) return 0;
    if (fs.options().read_only) return EROFS;
    if (node.kind == NodeKind::Export || (node.kind == NodeKind::Field && !is_writable(*node.field))) return EACCES;
    return 0;
}

}  // namespace

void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    auto& fs = fs_of(req);
    if (fs.open_in_kernel()) {
        // Not a failure: the kernel takes it as "open files yourself" for this open and every
        // later one, keeping the page cache across opens (its default for that case).
        fuse_reply_err(req, ENOSYS);
        return;
    }
    auto node = fs.node(ino);
    int err = node ? check_open(fs, *node, fi->flags) : ENOENT;
    std::unique_ptr<Handle> h;
    if (!err) {
        h = make_handle(*node, fi->flags);
        err = start_handle(fs, *h, fi->flags & O_TRUNC);
    }
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    set_caching(*h, fi);
    reply_with_handle(fs, std::move(h), fi, [&] { return fuse_reply_open(req, fi); });
}

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

void flush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    auto& fs = fs_of(req);
    if (fs.options().read_only) {
        // Nothing is written here to commit; ENOSYS makes the kernel stop sending FLUSH (as
        // success), which it would otherwise do at every close of a file it opened itself.
        fuse_reply_err(req, ENOSYS);
        return;
    }
    Handle& h = *handle_of(fi);
    int err = 0;
    if (h.kind == HandleKind::FieldWriter) {
        std::lock_guard lock(h.mu);
        // bash's `> f` opens, dup2s and closes the original fd before the command writes: that
        // first flush of a merely truncated handle is not the end of the value.
        if (h.pending && (h.wrote || h.flushes > 0)) err = commit_pending(fs, h);
        ++h.flushes;
    }
    fuse_reply_err(req, err);
}

void fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) {
    auto& fs = fs_of(req);
    if (fs.options().read_only) {
        fuse_reply_err(req, ENOSYS);  // as for flush: nothing to make durable, ever
        return;
    }
    Handle& h = *handle_of(fi);
    int err = 0;
    if (h.kind == HandleKind::FieldWriter) {
        std::lock_guard lock(h.mu);
        err = commit_pending(fs, h);  // committed values are already on disk
    }
    fuse_reply_err(req, err);
}

void release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    auto& fs = fs_of(req);
    std::unique_ptr<Handle> h(handle_of(fi));
    fs.forget(h.get());
    if (h->kind == HandleKind::FieldWriter) {
        std::lock_guard lock(h->mu);
        // Nobody hears a release's error; a refusal still lands in status and the log.
        commit_pending(fs, *h);
    }
    fuse_reply_err(req, 0);
}

}  // namespace sitesfs::fs::ops
