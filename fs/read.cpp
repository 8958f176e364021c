// read.
#include <algorithm>
#include <string>

#include "fs/handles.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs::ops {

namespace {

void reply_slice(fuse_req_t req, const std::string& data, size_t size, off_t off) {
    const size_t start = std::min(data.size(), static_cast<size_t>(std::max<off_t>(off, 0)));
    const size_t len = std::min(size, data.size() - start);
    fuse_reply_buf(req, data.data() + start, len);
}

}  // namespace

void read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
    auto& fs = fs_of(req);
    Handle& h = *handle_of(fi);
    if (h.node.kind == NodeKind::Temp) {
        fs.with_temp(h.node, [&](const TempFile& t) { reply_slice(req, t.data, size, off); });
        return;
    }
    std::lock_guard lock(h.mu);
    reply_slice(req, h.content, size, off);
}

}  // namespace sitesfs::fs::ops
