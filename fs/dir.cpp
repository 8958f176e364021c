// opendir, readdir, readdirplus; a directory's entries (Filesystem::list).
//
// Listings live in the kernel's readdir cache (cache_readdir, keep_cache): a warm `ls`, `find` or
// glob does not reach the daemon, and every change to a listing invalidates the directory's
// cache (filesystem.cpp). Where the kernel can open directories itself, opendir answers ENOSYS
// and neither OPENDIR nor RELEASEDIR is ever sent; so there is no per-open handle, and each
// READDIR lists the directory anew from the cookie it is given (Filesystem::list).
#include <algorithm>
#include <cerrno>
#include <vector>

#include "fs/filesystem.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs {

namespace {

// READDIR cookies: 1 and 2 are . and ..; the root's export is 3 and a site's is 3 + its id; in a
// site, field i is 3 + i and a temporary file 3 + kSlotsPerSite + its number.
constexpr off_t kDotCookies = 2;

void sort_by_cookie(std::vector<DirEntry>::iterator from, std::vector<DirEntry>::iterator to) {
    std::sort(from, to, [](const DirEntry& a, const DirEntry& b) { return a.cookie < b.cookie; });
}

}  // namespace

std::vector<DirEntry> Filesystem::list(const Node& dir, off_t after) {
    std::vector<DirEntry> out;
    auto add = [&](std::string_view name, fuse_ino_t ino, mode_t type, off_t cookie) {
        if (cookie > after) out.push_back({std::string(name), ino, type, cookie});
    };
    add(".", dir.ino, S_IFDIR, 1);
    add("..", kRootIno, S_IFDIR, 2);
    if (dir.kind == NodeKind::Root) {
        // .metrics is reachable by name but not listed, like a site's `wait`: it changes on every
        // read, so tar, find and backups of the tree should not pick it up.
        add(kExportName, kExportIno, S_IFREG, kDotCookies + 1);
        const auto names = store_.site_names();
        std::lock_guard lock(mu_);
        const auto sites = out.size();
        for (const auto& name : names) {
            const uint64_t id = site_id_locked(name);
            add(name, site_ino(id), S_IFDIR, kDotCookies + 1 + static_cast<off_t>(id));
        }
        sort_by_cookie(out.begin() + static_cast<ptrdiff_t>(sites), out.end());
        return out;
    }
    const auto fields = site_fields();
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < fields.size(); ++i)
        if (is_listed(fields[i]) && !absent_locked(dir.site, &fields[i]))
            add(fields[i].name, field_ino(dir.site_id, i), S_IFREG, kDotCookies + 1 + static_cast<off_t>(i));
    const auto temps = out.size();
    if (auto s = temps_.find(dir.site); s != temps_.end())
        for (const auto& [name, temp] : s->second) {
            const auto number = static_cast<off_t>(temp->ino & ~kTempBit);
            add(name, temp->ino, S_IFREG, kDotCookies + 1 + static_cast<off_t>(kSlotsPerSite) + number);
        }
    sort_by_cookie(out.begin() + static_cast<ptrdiff_t>(temps), out.end());
    return out;
}

}  // namespace sitesfs::fs

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

}  // namespace sitesfs::fs::ops
