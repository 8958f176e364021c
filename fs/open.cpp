// open: a handle per open file, its kind decided here once (handles.hpp), and whether the kernel
// caches what it reads.
#include <fcntl.h>

#include <cerrno>
#include <memory>

#include "fs/handles.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs::ops {

namespace {

int check_open(Filesystem& fs, const Node& node, int flags) {
    if (node.kind == NodeKind::Root || node.kind == NodeKind::SiteDir) return EISDIR;
    const bool field = node.kind == NodeKind::Field;
    // Root reads a file its mode denies, so a request's mode alone would not keep readers out.
    if (field && !is_readable(*node.field) && (flags & O_ACCMODE) != O_WRONLY) return EACCES;
    if (!opens_for_write(flags)) return 0;
    if (fs.options().read_only) return EROFS;
    if (node.kind == NodeKind::Export || (field && !is_writable(*node.field) && !is_request(*node.field))) return EACCES;
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

}  // namespace sitesfs::fs::ops
