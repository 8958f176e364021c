#include "fs/handles.hpp"

#include <fcntl.h>

#include <cerrno>

namespace sitesfs::fs {

bool opens_for_write(int flags) { return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC); }

namespace {

HandleKind kind_of(const Node& node, int flags) {
    if (node.kind == NodeKind::Temp) return HandleKind::Temp;
    if (opens_for_write(flags)) return HandleKind::FieldWriter;  // open and create let only read-write fields through
    if (node.kind != NodeKind::Field) return HandleKind::Reader;
    if (node.field->settled) return HandleKind::Waiter;
    return is_writable(*node.field) ? HandleKind::FieldReader : HandleKind::Reader;
}

}  // namespace

std::unique_ptr<Handle> make_handle(const Node& node, int flags) {
    return std::make_unique<Handle>(node, kind_of(node, flags), (flags & O_APPEND) != 0);
}

int start_handle(Filesystem& fs, Handle& h, bool empty) {
    if (h.kind == HandleKind::Temp && empty) {
        fs.with_temp(h.node, [](TempFile& t) {
            t.data.clear();
            t.mtime = Clock::now();
        });
    }
    if (h.kind != HandleKind::FieldWriter && h.kind != HandleKind::Waiter) return 0;
    auto site = fs.store().site(h.node.site);
    if (!site) return ENOENT;
    if (h.kind == HandleKind::Waiter) {
        h.generation = site->generation;
        return 0;
    }
    // A request has no stored value to restore.
    if (is_writable(*h.node.field)) h.original = site->field(FieldName::known(h.node.field->name)).value;
    if (empty) {
        h.pending = true;
        return 0;
    }
    auto content = fs.content(h.node);
    if (!content) return ENOENT;
    h.content = std::move(*content);
    return 0;
}

void set_caching(const Handle& h, fuse_file_info* fi) {
    if (h.kind != HandleKind::Reader || Filesystem::uncached(h.node)) {
        // Writers must get their write() verdicts, and the page cache must only ever hold what
        // sitesfs rendered, never the raw bytes a writer sent (values are normalized). Readers of
        // a field that writers open share its inode with them, and the kernel moves that inode's
        // size for every writer: an O_TRUNC open sets it to 0, a direct write extends it. A cached
        // read is cut at that size, so a reader would get an empty, cut or NUL-padded value
        // (Concurrency.ReadersDuringWritesOnlyEverSeeWholeValues); direct reads are not cut.
        // Every read of a waiting file must reach the daemon.
        fi->direct_io = 1;
    } else {
        // Readers share the page cache across opens, so repeated reads never reach the daemon;
        // every change invalidates it, and reads always serve the current value (read.cpp).
        fi->keep_cache = 1;
        fi->noflush = 1;
    }
}

int commit_pending(Filesystem& fs, Handle& h) {
    if (!h.pending) return 0;
    h.pending = h.wrote = false;
    const int err = fs.commit(h.node, h.content).err;
    if (!err) {
        h.committed = h.content;
    } else if (h.committed) {
        fs.restore(h.node, h.original, *h.committed);
        h.committed.reset();
    }
    return err;
}

int splice_into(std::string& data, const char* buf, size_t size, off_t off, size_t limit) {
    if (off < 0) return EINVAL;
    const size_t end = static_cast<size_t>(off) + size;
    if (end > limit) return EFBIG;
    if (end > data.size()) data.resize(end);
    data.replace(static_cast<size_t>(off), size, buf, size);
    return 0;
}

}  // namespace sitesfs::fs
