// read.
#include <algorithm>
#include <cerrno>
#include <string>

#include "fs/handles.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs::ops {

namespace {

std::string slice_of(const std::string& data, size_t size, off_t off) {
    const size_t start = std::min(data.size(), static_cast<size_t>(std::max<off_t>(off, 0)));
    return data.substr(start, std::min(size, data.size() - start));
}

}  // namespace

// The reply is sent with no lock held and nothing of the handle in use: once the kernel has it,
// the reader may close the file and release() may free the handle on another thread.
void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    auto& fs = fs_of(req);
    Handle* h = handle_of(fi);  // none when the kernel opened the file itself (read-only mounts)
    std::string slice;
    if (h && h->node.kind == NodeKind::Temp) {
        slice = fs.with_temp(h->node, [&](const TempFile& t) { return slice_of(t.data, size, off); });
    } else if (h && h->node.kind == NodeKind::Field && h->node.field->settled && !h->answered && off == 0) {
        fs.parked().read(req, *h, size);
        return;
    } else if (h && (h->writable || h->answered)) {
        std::lock_guard lock(h->mu);
        slice = slice_of(h->content, size, off);  // a writer's own buffer, or the answer a wait gave
    } else if (h && h->direct_read) {
        std::lock_guard lock(h->mu);
        if (off == 0 || h->content.empty()) {  // a field reads as at least "\n"
            auto content = fs.content(h->node);
            if (!content) {
                fuse_reply_err(req, ENOENT);
                return;
            }
            h->content = std::move(*content);
        }
        slice = slice_of(h->content, size, off);
    } else {
        // The current value, as a regular file gives after someone rewrote it. Serving what was
        // there at open would put an old value into the page cache that later readers share.
        const auto node = h ? std::optional<Node>(h->node) : fs.node(ino);
        auto content = node ? fs.content(*node) : std::nullopt;
        if (!content) {
            fuse_reply_err(req, ENOENT);
            return;
        }
        slice = slice_of(*content, size, off);
    }
    fuse_reply_buf(req, slice.data(), slice.size());
}

}  // namespace sitesfs::fs::ops
