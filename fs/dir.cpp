// opendir, readdir, readdirplus, mkdir, rmdir.
//
// Listings live in the kernel's readdir cache (cache_readdir, keep_cache): a warm `ls`, `find` or
// glob does not reach the daemon, and every change to a listing invalidates the directory's
// cache (filesystem.cpp). Where the kernel can open directories itself, opendir answers ENOSYS
// and neither OPENDIR nor RELEASEDIR is ever sent; so there is no per-open handle, and each
// READDIR lists the directory anew from the cookie it is given (Filesystem::list).
#include <cerrno>
#include <vector>

#include "fs/filesystem.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs::ops {

namespace {

void reply_listing(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
    auto& fs = fs_of(req);
    const auto dir = fs.node(ino);
    if (!dir) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    std::vector<char> buf(size);
    size_t used = 0;
    for (const DirEntry& entry : fs.list(*dir, off)) {
        size_t len;
        if (!plus) {
            struct stat st{};
            st.st_ino = entry.ino;
            st.st_mode = entry.type;
            len = fuse_add_direntry(req, buf.data() + used, size - used, entry.name.c_str(), &st, entry.cookie);
        } else {
            fuse_entry_param e{};
            const bool dots = entry.name == "." || entry.name == "..";
            if (dots) {
                e.attr.st_ino = entry.ino;
                e.attr.st_mode = entry.type;
            } else if (fs.lookup(dir->ino, entry.name, e) != 0) {
                continue;  // vanished since it was listed
            }
            len = fuse_add_direntry_plus(req, buf.data() + used, size - used, entry.name.c_str(), &e, entry.cookie);
            if (len > size - used && !dots) fs.forget(e.ino, 1);  // not sent: drop the reference
        }
        if (len > size - used) break;
        used += len;
    }
    fuse_reply_buf(req, buf.data(), used);
}

}  // namespace

void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    auto& fs = fs_of(req);
    if (fs.opendir_in_kernel()) {
        // Not a failure: the kernel takes it as "open directories yourself" for this opendir and
        // every later one, with the readdir cache on (its defaults for that case).
        fuse_reply_err(req, ENOSYS);
        return;
    }
    if (!fs.node(ino)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
}

void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    reply_listing(req, ino, size, off, false);
}

void readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    reply_listing(req, ino, size, off, true);
}

void mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t) {
    auto& fs = fs_of(req);
    fuse_entry_param e;
    int err = fs.options().read_only ? EROFS : parent != kRootIno ? EPERM : fs.make_site(name, e);
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    fuse_reply_entry(req, &e);
}

void rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    auto& fs = fs_of(req);
    const int err = fs.options().read_only ? EROFS : parent != kRootIno ? ENOTDIR : fs.remove_site(name);
    fuse_reply_err(req, err);
}

}  // namespace sitesfs::fs::ops
