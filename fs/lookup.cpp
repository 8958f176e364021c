// lookup, forget: the kernel's references to our inodes. Filesystem::lookup and fill_entry are also
// how readdirplus (dir.cpp), mkdir (mkdir.cpp), create and mknod (create.cpp) give the kernel an
// entry.
#include <cerrno>

#include "fs/filesystem.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs {

int Filesystem::lookup(fuse_ino_t parent, std::string_view name, fuse_entry_param& e) {
    Node found;
    {
        std::lock_guard lock(mu_);
        const Node* dir = inodes_.find(parent);
        if (!dir || stale_locked(*dir)) return ENOENT;
        if (dir->kind != NodeKind::Root && dir->kind != NodeKind::SiteDir) return ENOTDIR;
        auto child = child_locked(*dir, name);
        if (!child) return ENOENT;
        found = inodes_.remember(*child);
    }
    fill_entry(found, e);
    return 0;
}

void Filesystem::fill_entry(const Node& node, fuse_entry_param& e) {
    e = fuse_entry_param{};
    e.ino = node.ino;
    e.attr_timeout = e.entry_timeout = options_.cache_timeout;
    if (uncached(node)) e.attr_timeout = 0;
    attr(node, e.attr);
}

void Filesystem::forget(fuse_ino_t ino, uint64_t n) {
    std::lock_guard lock(mu_);
    inodes_.forget(ino, n);
}

}  // namespace sitesfs::fs

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
