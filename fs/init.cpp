// init: what sitesfs asks of the kernel's FUSE connection, and what it learns from it.
#include "fs/filesystem.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs::ops {

void init(void* userdata, fuse_conn_info* conn) {
    auto& fs = *static_cast<Filesystem*>(userdata);
    // The kernel must not merge or defer writes: write() has to return our verdict on the value.
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    // A listing the kernel cached while a site came or went (the READDIR answered before the
    // change, the cache filled after its invalidation) is dropped at the next opendir only because
    // the kernel then compares the directory's mtime, which every such change moves.
    if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA) conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
    fs.set_opendir_in_kernel(conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT);
    // Read-only, no open needs state of its own (no writers; `wait` and .metrics are not served,
    // see child_locked), so files open in the kernel too: no OPEN and no RELEASE per file.
    fs.set_open_in_kernel(fs.options().read_only && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT));
}

}  // namespace sitesfs::fs::ops
