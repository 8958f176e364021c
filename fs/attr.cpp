// getattr, setattr, statfs; a node's attributes (Filesystem::attr, also every entry's).
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <cerrno>

#include "fs/handles.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs {

namespace {

timespec to_timespec(Timestamp t) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

void set_times(struct stat& st, Timestamp m, Timestamp c) {
    st.st_mtim = st.st_atim = to_timespec(m);
    st.st_ctim = to_timespec(c);
}

}  // namespace

bool Filesystem::attr(const Node& node, struct stat& st) {
    st = {};
    st.st_ino = node.ino;
    st.st_uid = options_.uid;
    st.st_gid = options_.gid;
    st.st_blksize = 4096;
    st.st_nlink = 1;
    switch (node.kind) {
        case NodeKind::Root: {
            st.st_mode = S_IFDIR | options_.dir_mode;
            st.st_nlink = 2 + store_.site_count();
            std::lock_guard lock(mu_);
            set_times(st, root_changed_, root_changed_);
            break;
        }
        case NodeKind::Export: {
            st.st_mode = S_IFREG | (options_.file_mode & ~0222);
            st.st_size = static_cast<off_t>(content(node).value_or("").size());
            std::lock_guard lock(mu_);
            set_times(st, root_changed_, root_changed_);
            break;
        }
        case NodeKind::SiteDir: {
            auto site = store_.site(node.site);
            if (!site) return false;
            st.st_mode = S_IFDIR | options_.dir_mode;
            st.st_nlink = 2;
            set_times(st, site->created, site->created);
            break;
        }
        case NodeKind::Field: {
            auto site = store_.site(node.site);
            if (!site) return false;
            st.st_mode = S_IFREG | (is_writable(*node.field)  ? options_.file_mode
                                    : is_request(*node.field) ? options_.file_mode & 0222
                                                              : options_.file_mode & ~0222);
            st.st_size = static_cast<off_t>(node.field->render(*site).size() + 1);
            const Timestamp changed = node.field->changed(*site);
            set_times(st, changed, changed);
            break;
        }
        case NodeKind::Temp: {
            std::lock_guard lock(mu_);
            const TempFile& t = *node.temp;
            st.st_mode = S_IFREG | t.mode;
            st.st_uid = t.uid;
            st.st_gid = t.gid;
            st.st_size = static_cast<off_t>(t.data.size());
            set_times(st, t.mtime, t.ctime);
            break;
        }
    }
    st.st_blocks = (st.st_size + 511) / 512;
    return true;
}

}  // namespace sitesfs::fs

namespace sitesfs::fs::ops {

namespace {

int truncate_field(Filesystem& fs, const Node& node, off_t size, Handle* h) {
    if (!is_writable(*node.field)) return EACCES;
    if (size < 0 || static_cast<size_t>(size) > fs.options().max_value_bytes) return EFBIG;
    if (h && h->kind == HandleKind::FieldWriter) {
        // ftruncate from an editor that rewrites in place (vim's backupcopy=yes): the new value
        // follows in writes, so this only edits the buffer.
        std::lock_guard lock(h->mu);
        h->content.resize(static_cast<size_t>(size));
        h->pending = h->wrote = true;
        return 0;
    }
    auto value = fs.content(node);
    if (!value) return ENOENT;
    value->resize(static_cast<size_t>(size));
    return fs.commit(node, *value).err;
}

int truncate_temp(Filesystem& fs, const Node& node, off_t size) {
    if (size < 0 || static_cast<size_t>(size) > fs.options().max_temp_bytes) return EFBIG;
    fs.with_temp(node, [&](TempFile& t) {
        t.data.resize(static_cast<size_t>(size));
        t.mtime = t.ctime = Clock::now();
    });
    return 0;
}

int truncate(Filesystem& fs, const Node& node, off_t size, fuse_file_info* fi) {
    if (node.kind != NodeKind::Field && node.kind != NodeKind::Temp) return node.kind == NodeKind::Export ? EACCES : EISDIR;
    // ftruncate truncates the file its descriptor has open: a temporary file's, also once that
    // file was renamed over a field (the descriptor still reads and writes the temporary file).
    Handle* h = fi ? handle_of(fi) : nullptr;
    if (h && h->kind == HandleKind::Temp) return truncate_temp(fs, h->node, size);
    return node.kind == NodeKind::Temp ? truncate_temp(fs, node, size) : truncate_field(fs, node, size, h);
}

// Only temporary files take on a new owner or mode; on sitesfs' own files a chown to the owner
// they already have succeeds (editors restore it after writing), another is refused. A setting's
// mode is the mount's (file_mode), and a chmod of it succeeds without changing it, as on vfat
// with `quiet`: install, cp -a and rsync -a set a mode on every file they copy (install first
// 0600, then its -m), and each would fail otherwise. Reports and directories keep the strict rule.
int change_owner_or_mode(Filesystem& fs, const Node& node, const struct stat& want, int to_set) {
    if (node.kind == NodeKind::Temp) {
        fs.with_temp(node, [&](TempFile& t) {
            if (to_set & FUSE_SET_ATTR_MODE) t.mode = want.st_mode & 07777;
            if (to_set & FUSE_SET_ATTR_UID) t.uid = want.st_uid;
            if (to_set & FUSE_SET_ATTR_GID) t.gid = want.st_gid;
            t.ctime = Clock::now();
        });
        return 0;
    }
    struct stat have;
    if (!fs.attr(node, have)) return ENOENT;
    const bool setting = node.kind == NodeKind::Field && is_writable(*node.field);
    const bool same = (!(to_set & FUSE_SET_ATTR_MODE) || setting || (want.st_mode & 07777) == (have.st_mode & 07777)) &&
                      (!(to_set & FUSE_SET_ATTR_UID) || want.st_uid == have.st_uid) &&
                      (!(to_set & FUSE_SET_ATTR_GID) || want.st_gid == have.st_gid);
    if (same) return 0;
    spdlog::info("refused chmod/chown of inode {}: owner and modes come from the sitesfs config", node.ino);
    return EPERM;
}

// A field keeps the mtime set on it, as a regular file does, so that rsync's size-and-mtime check
// finds an unchanged tree unchanged; a temporary file carries one set explicitly to the field it
// is renamed over (rsync sets times before that rename). A site directory's times are when it
// was made: setting them succeeds and keeps nothing (tar and cp -a set them after every file).
int set_mtime(Filesystem& fs, const Node& node, const struct stat& want, int to_set) {
    const bool now = to_set & FUSE_SET_ATTR_MTIME_NOW;
    const Timestamp t = now ? Clock::now()
                            : Timestamp(std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::seconds(want.st_mtim.tv_sec) + std::chrono::nanoseconds(want.st_mtim.tv_nsec)));
    switch (node.kind) {
        case NodeKind::Temp:
            fs.with_temp(node, [&](TempFile& temp) {
                temp.mtime = t;
                temp.mtime_set = !now;
            });
            return 0;
        case NodeKind::Field:
            if (!is_writable(*node.field)) return EPERM;
            return fs.store().set_field_time(node.site, node.field->name, t).err;
        case NodeKind::Export:
            return EPERM;
        default:
            return 0;
    }
}

// A writer that has truncated or partly rewritten a field sees its own size until it commits.
void report_pending_size(const Node& node, fuse_file_info* fi, struct stat& st) {
    if (node.kind != NodeKind::Field || !fi) return;  // a directory's fh is not a Handle
    Handle* h = handle_of(fi);
    if (!h || h->kind != HandleKind::FieldWriter) return;  // no handle: opened by the kernel itself (read-only mount)
    std::lock_guard lock(h->mu);
    if (h->pending) st.st_size = static_cast<off_t>(h->content.size());
}

}  // namespace

void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    auto& fs = fs_of(req);
    auto node = fs.node(ino);
    struct stat st;
    if (!node || !fs.attr(*node, st)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    report_pending_size(*node, fi, st);
    fuse_reply_attr(req, &st, Filesystem::uncached(*node) ? 0 : fs.options().cache_timeout);
}

void setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
    auto& fs = fs_of(req);
    auto node = fs.node(ino);
    if (!node) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (fs.options().read_only) {
        fuse_reply_err(req, EROFS);
        return;
    }
    int err = 0;
    if (to_set & FUSE_SET_ATTR_SIZE) err = truncate(fs, *node, attr->st_size, fi);
    if (!err && (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
        err = change_owner_or_mode(fs, *node, *attr, to_set);
    // The time that comes with a truncation (ftruncate sends one) is the value's business: a
    // field's mtime moves when its value commits, not at every ftruncate.
    const bool times = to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW);
    const bool sizing = to_set & FUSE_SET_ATTR_SIZE;
    if (!err && times && !(sizing && node->kind == NodeKind::Field)) err = set_mtime(fs, *node, *attr, to_set);
    struct stat st;
    if (!err && !fs.attr(*node, st)) err = ENOENT;
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    report_pending_size(*node, fi, st);
    fuse_reply_attr(req, &st, fs.options().cache_timeout);
}

void statfs(fuse_req_t req, fuse_ino_t) {
    auto& fs = fs_of(req);
    struct statvfs st{};
    st.f_bsize = st.f_frsize = 4096;
    st.f_files = fs.store().site_count() * (site_fields().size() + 1) + 2;
    st.f_namemax = 255;
    if (fs.options().read_only) st.f_flag |= ST_RDONLY;
    fuse_reply_statfs(req, &st);
}

}  // namespace sitesfs::fs::ops
