// flush, fsync, release: where a FieldWriter's value without a final newline commits (handles.hpp).
// Other kinds of handle have nothing to commit.
#include <cerrno>
#include <memory>

#include "fs/handles.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs::ops {

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
    fs.polls().drop(*h, h->node.ino);
    if (h->kind == HandleKind::FieldWriter) {
        std::lock_guard lock(h->mu);
        // Nobody hears a release's error; a refusal still lands in status and the log.
        commit_pending(fs, *h);
    }
    fuse_reply_err(req, 0);
}

}  // namespace sitesfs::fs::ops
