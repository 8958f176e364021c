// write: a FieldWriter's buffer or a temporary file's bytes; other handles are not opened for
// writing.
#include <cerrno>

#include "fs/handles.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs::ops {

namespace {

int write_temp(Filesystem& fs, Handle& h, const char* buf, size_t size, off_t off) {
    return fs.with_temp(h.node, [&](TempFile& t) {
        if (h.append) off = static_cast<off_t>(t.data.size());
        const int err = splice_into(t.data, buf, size, off, fs.options().max_temp_bytes);
        if (!err) t.mtime = t.ctime = Clock::now();
        return err;
    });
}

// A write that ends a line completes a value (`echo` writes the whole value at once), so it
// commits now: bash hears only write(), never close(), so this write's success must mean the value
// is valid, its domain claimed and on disk. Content without a final newline waits for the flush.
int write_field(Filesystem& fs, Handle& h, const char* buf, size_t size, off_t off) {
    std::lock_guard lock(h.mu);
    if (h.append) off = static_cast<off_t>(h.content.size());
    std::string before = h.content;
    if (int err = splice_into(h.content, buf, size, off, fs.options().max_value_bytes)) return err;
    h.pending = h.wrote = true;
    if (size == 0 || buf[size - 1] != '\n') return 0;
    const int err = commit_pending(fs, h);
    // Refused bytes stay out of the buffer too, so a later flush cannot commit them, nor the
    // truncation of an `echo bad > f`.
    if (err) h.content = std::move(before);
    return err;
}

}  // namespace

void write(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
    auto& fs = fs_of(req);
    Handle* h = handle_of(fi);
    const int err = fs.options().read_only               ? EROFS
                    : h->kind == HandleKind::Temp        ? write_temp(fs, *h, buf, size, off)
                    : h->kind == HandleKind::FieldWriter ? write_field(fs, *h, buf, size, off)
                                                         : EBADF;
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    fuse_reply_write(req, size);
}

}  // namespace sitesfs::fs::ops
