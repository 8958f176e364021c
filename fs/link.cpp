// symlink, link: refused. Links would let a web root or a field point elsewhere; editors that try
// (emacs' lock file) fall back to plain files.
#include <spdlog/spdlog.h>

#include <cerrno>

#include "fs/ops.hpp"

namespace sitesfs::fs::ops {

void symlink(fuse_req_t req, const char*, fuse_ino_t, const char* name) {
    spdlog::debug("refused symlink '{}': sitesfs holds no links", name);
    fuse_reply_err(req, EPERM);
}

void link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char* newname) {
    spdlog::debug("refused hard link '{}': sitesfs holds no links", newname);
    fuse_reply_err(req, EPERM);
}

}  // namespace sitesfs::fs::ops
