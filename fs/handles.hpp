// Open files. A writer's handle holds the value being written; readers always read the current
// value (they share the kernel's page cache, which must never hold an old one). Writes are
// whole-value: a write that ends a line commits the content so far, so that write()'s result is
// the verdict and the value is durable when it returns (bash hears nothing else); content without
// a final newline commits at flush (close), fsync, rename or release.
//
// open.cpp and create.cpp make handles (make_handle, start_handle, then reply_with_handle);
// read.cpp, write.cpp, attr.cpp and release.cpp act on them by kind.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "fs/filesystem.hpp"

namespace sitesfs::fs {

// What an open file is, decided once at open (make_handle) from its node and its open flags. Each
// kind reads (read.cpp), writes (write.cpp) and commits (release.cpp) in a way of its own.
enum class HandleKind {
    // A read-write field opened for writing (or truncating): `content` is its buffer, which a
    // line end, flush, fsync or release commits (commit_pending). Direct I/O.
    FieldWriter,
    // A read-write field opened for reading: direct I/O, so reads are not cut at the size a
    // writer gave the shared inode. A read at offset 0 takes the current value into `content`,
    // and reads further on continue that value, so a reader that reads until a read returns
    // nothing (cat) never joins the head of one value to the tail of the next.
    FieldReader,
    // A waiting file (a schema row with `settled`: a site's `wait`): the first read parks until
    // the site settles for `generation` (ParkedReads); its answer, kept in `content`, is what
    // later reads continue. Direct I/O.
    Waiter,
    // A file only sitesfs writes (reports, .sites.toml, .metrics): every read serves the current
    // content. The page cache keeps it across opens, except for uncached files (.metrics) and a
    // site's reports, whose poller's reads must reach sitesfs (signals_changes).
    Reader,
    // An editor's temporary file, read or written: its bytes live in its TempFile, shared by
    // every open of it (Filesystem::with_temp). Direct I/O.
    Temp,
};

struct Handle {
    Handle(const Node& node, HandleKind kind, bool append) : node(node), kind(kind), append(append) {}

    std::mutex mu;
    const Node node;
    const HandleKind kind;
    const bool append;  // O_APPEND: a FieldWriter's or Temp's writes go to the end

    // A FieldWriter's buffer, a FieldReader's value taken at offset 0, a Waiter's answer.
    std::string content;

    // FieldWriter only. Where the writer is in committing its buffer: these change with every
    // write, truncate and commit of one open, so they are its state, not a kind of its own.
    std::string original;  // the stored value at open, put back if a later line is refused
    std::optional<std::string> committed;  // what this handle last committed, while it has
    bool pending = false;  // content holds a value not yet committed
    bool wrote = false;    // data arrived (write or ftruncate) since the last commit
    unsigned flushes = 0;

    // Waiter only: the site's generation at open, and whether the first read has been answered
    // (`content` then holds that answer; set under mu, read without it by read.cpp to decide
    // whether a read parks). It turns once in a Waiter's life, so it is state, not a kind.
    uint64_t generation = 0;
    std::atomic<bool> answered{false};

    // Handles whose changes poll signals (signals_changes): the fingerprint of the content this
    // open last read from its start, at open and at every read at offset 0 (poll.cpp).
    std::atomic<size_t> seen{0};
};

inline Handle* handle_of(const fuse_file_info* fi) { return reinterpret_cast<Handle*>(fi->fh); }

// Whether poll tells `h`'s poller when the content changed since it last read it: readers of a
// site's fields, whose every change comes as a store change that wakes them (poll.cpp). Their
// reads reach sitesfs (direct I/O), or a re-read served from the page cache would never count.
bool signals_changes(const Handle& h);
// What `seen` holds for `content`.
size_t fingerprint(std::string_view content);

// Whether an open with `flags` may change the file (O_TRUNC alone does).
bool opens_for_write(int flags);

// A handle on `node` opened with `flags`, its kind decided here once. The caller has checked that
// the open is allowed (a writer's node is a read-write field or a temporary file).
std::unique_ptr<Handle> make_handle(const Node& node, int flags);

// Gives a handle what its kind starts from: a Waiter the site's generation; a FieldWriter the
// stored value (put back if a later line is refused) and its buffer. `empty` (O_TRUNC, or a field
// name just created) empties a FieldWriter's buffer, which changes the stored value only when it
// commits, so `echo x > f` never passes through an empty value; a Temp's file is emptied at once.
// Readers need none of it: they read the current value. Returns an errno.
int start_handle(Filesystem& fs, Handle& h, bool empty);

// Whether the kernel caches what `h` reads (keep_cache) or sends every read and write here
// (direct_io); set on `fi` before the open or create is answered.
void set_caching(const Handle& h, fuse_file_info* fi);

// Gives the kernel `h` as `fi->fh` through `reply` (a handler's fuse_reply_open or
// fuse_reply_create, which returns its result). The handle is adopted before the reply: the
// release may run on another thread as soon as it is sent. If the opener was interrupted meanwhile
// (the reply fails), no release will come, so it is freed here.
template <class Reply>
void reply_with_handle(Filesystem& fs, std::unique_ptr<Handle> h, fuse_file_info* fi, Reply&& reply) {
    fi->fh = reinterpret_cast<uint64_t>(h.get());
    fs.adopt(h.get());
    if (reply() == 0) h.release();
    else fs.forget(h.get());
}

// Commits a FieldWriter's pending value; returns 0 or an errno. Clears `pending` either way: a
// refused value is reported once, not again at every later flush. A refusal after this handle
// committed earlier lines puts back the value from before the open, so a value written over
// several write() calls takes effect whole or not at all.
int commit_pending(Filesystem& fs, Handle& h);

// Writes `size` bytes at `off` into `data`, growing it; EFBIG past `limit`.
int splice_into(std::string& data, const char* buf, size_t size, off_t off, size_t limit);

}  // namespace sitesfs::fs
