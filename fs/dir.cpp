// opendir, readdir, readdirplus, releasedir, mkdir, rmdir.
#include <cerrno>
#include <memory>
#include <vector>

#include "fs/filesystem.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs::ops {

namespace {

// The listing is taken once at opendir so offsets stay stable while the directory changes.
struct DirHandle {
    Node dir;
    std::vector<DirEntry> entries;
};

DirHandle* dir_handle_of(const fuse_file_info* fi) { return reinterpret_cast<DirHandle*>(fi->fh); }

void reply_listing(fuse_req_t req, size_t size, off_t off, fuse_file_info* fi, bool plus) {
    auto& fs = fs_of(req);
    const DirHandle& d = *dir_handle_of(fi);
    std::vector<char> buf(size);
    size_t used = 0;
    for (size_t i = static_cast<size_t>(off); i < d.entries.size(); ++i) {
        const DirEntry& entry = d.entries[i];
        const off_t next = static_cast<off_t>(i + 1);
        size_t len;
        if (!plus) {
            struct stat st{};
            st.st_ino = entry.ino;
            st.st_mode = entry.type;
            len = fuse_add_direntry(req, buf.data() + used, size - used, entry.name.c_str(), &st, next);
        } else {
            fuse_entry_param e{};
            const bool dots = entry.name == "." || entry.name == "..";
            if (dots) {
                e.attr.st_ino = entry.ino;
                e.attr.st_mode = entry.type;
            } else if (fs.lookup(d.dir.ino, entry.name, e) != 0) {
                continue;  // vanished since opendir
            }
            len = fuse_add_direntry_plus(req, buf.data() + used, size - used, entry.name.c_str(), &e, next);
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
    auto node = fs.node(ino);
    if (!node) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (node->kind != NodeKind::Root && node->kind != NodeKind::SiteDir) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    auto handle = std::make_unique<DirHandle>(DirHandle{*node, fs.list(*node)});
    fi->fh = reinterpret_cast<uint64_t>(handle.release());
    if (fuse_reply_open(req, fi) != 0) delete dir_handle_of(fi);  // the opener was interrupted
}

void readdir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
    reply_listing(req, size, off, fi, false);
}

void readdirplus(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
    reply_listing(req, size, off, fi, true);
}

void releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    delete dir_handle_of(fi);
    fuse_reply_err(req, 0);
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
