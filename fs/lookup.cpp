// lookup, forget: the kernel's references to our inodes.
#include "fs/filesystem.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs::ops {

void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    fuse_entry_param e;
    if (int err = fs_of(req).lookup(parent, name, e)) {
        fuse_reply_err(req, err);
        return;
    }
    fuse_reply_entry(req, &e);
}

void forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    fs_of(req).forget(ino, nlookup);
    fuse_reply_none(req);
}

void forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
    auto& fs = fs_of(req);
    for (size_t i = 0; i < count; ++i) fs.forget(forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

}  // namespace sitesfs::fs::ops
