// rename: the commit point of editors that write a temporary file and move it over the original.
#include <cerrno>

#include "fs/filesystem.hpp"
#include "fs/ops.hpp"

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
