// read: each kind of handle (handles.hpp) reads in its own way.
#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>

#include "fs/handles.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs::ops {

namespace {

std::string slice_of(const std::string& data, size_t size, off_t off) {
    const size_t start = std::min(data.size(), static_cast<size_t>(std::max<off_t>(off, 0)));
    return data.substr(start, std::min(size, data.size() - start));
}

// The current value, as a regular file gives after someone rewrote it. Serving what was there at
// open would put an old value into the page cache that later readers share. Returns an errno.
int read_current(Filesystem& fs, const std::optional<Node>& node, size_t size, off_t off, std::string& slice) {
    // Reached on a read-only mount, where the kernel opens files itself and root passes any mode.
    if (node && node->kind == NodeKind::Field && !is_readable(*node->field)) return EACCES;
    auto content = node ? fs.content(*node) : std::nullopt;
    if (!content) return ENOENT;
    slice = slice_of(*content, size, off);
    return 0;
}

// A FieldReader: a read at offset 0 takes the current value, reads further on continue it (a
// field reads as at least "\n", so an empty `content` was never taken). Returns an errno.
int read_continued(Filesystem& fs, Handle& h, size_t size, off_t off, std::string& slice) {
    std::lock_guard lock(h.mu);
    if (off == 0 || h.content.empty()) {
        auto content = fs.content(h.node);
        if (!content) return ENOENT;
        h.content = std::move(*content);
    }
    slice = slice_of(h.content, size, off);
    return 0;
}

}  // namespace

// The reply is sent with no lock held and nothing of the handle in use: once the kernel has it,
// the reader may close the file and release() may free the handle on another thread.
void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    auto& fs = fs_of(req);
    Handle* h = handle_of(fi);  // none when the kernel opened the file itself (read-only mounts)
    std::string slice;
    int err = 0;
    switch (h ? h->kind : HandleKind::Reader) {
        case HandleKind::Temp:
            slice = fs.with_temp(h->node, [&](const TempFile& t) { return slice_of(t.data, size, off); });
            break;
        case HandleKind::Waiter:
            if (!h->answered) {
                if (off == 0) {
                    fs.parked().read(req, *h, size);  // answers now, or later from another thread
                    return;
                }
                err = read_current(fs, h->node, size, off, slice);
                break;
            }
            [[fallthrough]];
        case HandleKind::FieldWriter: {
            std::lock_guard lock(h->mu);
            slice = slice_of(h->content, size, off);  // a writer's own buffer, or the answer a wait gave
            break;
        }
        case HandleKind::FieldReader:
            err = read_continued(fs, *h, size, off, slice);
            break;
        case HandleKind::Reader:
            err = read_current(fs, h ? std::optional<Node>(h->node) : fs.node(ino), size, off, slice);
            break;
    }
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    fuse_reply_buf(req, slice.data(), slice.size());
}

}  // namespace sitesfs::fs::ops
