// open, create, mknod, flush, fsync, release.
#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <memory>

#include "fs/handles.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs::ops {

namespace {

bool opens_for_write(int flags) { return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC); }

int check_open(Filesystem& fs, const Node& node, int flags) {
    if (node.kind == NodeKind::Root || node.kind == NodeKind::SiteDir) return EISDIR;
    if (!opens_for_write(flags)) return 0;
    if (fs.options().read_only) return EROFS;
    if (node.kind == NodeKind::Export || (node.kind == NodeKind::Field && !is_writable(*node.field))) return EACCES;
    return 0;
}

// Hands the handle to the kernel; frees it if the opener was interrupted meanwhile.
void reply_open(fuse_req_t req, fuse_file_info* fi, std::unique_ptr<Handle> h) {
    const bool waits = h->node.kind == NodeKind::Field && h->node.field->settled;
    // Readers of a field that writers open share its inode with them, and the kernel moves that
    // inode's size for every writer: an O_TRUNC open sets it to 0, a direct write extends it.
    // A cached read is cut at that size, so a reader would get an empty, cut or NUL-padded value
    // (Concurrency.ReadersDuringWritesOnlyEverSeeWholeValues). Direct reads are not cut: each
    // returns the whole current value.
    const bool written_here = h->node.kind == NodeKind::Field && is_writable(*h->node.field);
    if (h->writable || h->node.kind == NodeKind::Temp || waits || written_here || Filesystem::uncached(h->node)) {
        // Writers must get their write() verdicts, and the page cache must only ever hold what
        // sitesfs rendered, never the raw bytes a writer sent (values are normalized). Every read
        // of a waiting file must reach the daemon.
        fi->direct_io = 1;
        h->direct_read = written_here && !h->writable;
    } else {
        // Readers share the page cache across opens, so repeated reads never reach the daemon;
        // every change invalidates it, and reads always serve the current value (read.cpp).
        fi->keep_cache = 1;
        fi->noflush = 1;
    }
    fi->fh = reinterpret_cast<uint64_t>(h.get());
    // Adopted before the reply: the release may run on another thread as soon as it is sent.
    fs_of(req).adopt(h.get());
    if (fuse_reply_open(req, fi) == 0) h.release();
    else fs_of(req).forget(h.get());
}

std::unique_ptr<Handle> new_handle(const Node& node, int flags) {
    auto h = std::make_unique<Handle>();
    h->node = node;
    h->flags = flags;
    h->writable = opens_for_write(flags);
    return h;
}

// What a field handle starts from: the site's generation (for `wait`), the stored value (put back
// if a later line is refused), and for a writer its buffer. An empty buffer (O_TRUNC, or a name
// just created) changes the stored value only when it commits, so `echo x > f` never passes
// through an empty value. A plain reader needs none of it: reads serve the current value.
// Returns an errno.
int start_field(Filesystem& fs, Handle& h, bool empty) {
    if (!h.writable && !h.node.field->settled) return 0;
    auto site = fs.store().site(h.node.site);
    if (!site) return ENOENT;
    h.generation = site->generation;
    h.original = site->field(FieldName::known(h.node.field->name)).value;
    if (!h.writable) return 0;
    if (empty) {
        h.pending = true;
        return 0;
    }
    auto content = fs.content(h.node);
    if (!content) return ENOENT;
    h.content = std::move(*content);
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
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    auto h = new_handle(*node, fi->flags);
    const bool truncating = h->writable && (fi->flags & O_TRUNC);
    if (node->kind == NodeKind::Field) err = start_field(fs, *h, truncating);
    else if (truncating) fs.with_temp(*node, [](TempFile& t) { t.data.clear(); t.mtime = Clock::now(); });
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    reply_open(req, fi, std::move(h));
}

void create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
    auto& fs = fs_of(req);
    auto dir = fs.node(parent);
    if (!dir || fs.options().read_only) {
        fuse_reply_err(req, dir ? EROFS : ENOENT);
        return;
    }
    auto made = fs.create(*dir, name, mode, fuse_req_ctx(req), fi->flags & O_EXCL);
    auto h = new_handle(made.node, fi->flags);
    // A field created anew starts empty, as a new file does; one that was there all along (the
    // kernel raced another creator) opens as open() would.
    if (!made.err && made.node.kind == NodeKind::Field) made.err = start_field(fs, *h, (fi->flags & O_TRUNC) || made.fresh);
    if (made.err) {
        fuse_reply_err(req, made.err);
        return;
    }
    fuse_entry_param e;
    fs.fill_entry(made.node, e);
    fi->direct_io = 1;
    fi->fh = reinterpret_cast<uint64_t>(h.get());
    fs.adopt(h.get());
    if (fuse_reply_create(req, &e, fi) == 0) h.release();
    else fs.forget(h.get());
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
    if (h.node.kind == NodeKind::Field) {
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
    if (h.node.kind == NodeKind::Field) {
        std::lock_guard lock(h.mu);
        err = commit_pending(fs, h);  // committed values are already on disk
    }
    fuse_reply_err(req, err);
}

void release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    auto& fs = fs_of(req);
    std::unique_ptr<Handle> h(handle_of(fi));
    fs.forget(h.get());
    if (h->node.kind == NodeKind::Field) {
        std::lock_guard lock(h->mu);
        // Nobody hears a release's error; a refusal still lands in status and the log.
        commit_pending(fs, *h);
    }
    fuse_reply_err(req, 0);
}

}  // namespace sitesfs::fs::ops
