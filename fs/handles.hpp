// Open files. A writer's handle holds the value being written; readers always read the current
// value (they share the kernel's page cache, which must never hold an old one). Writes are
// whole-value: a write that ends a line commits the content so far, so that write()'s result is
// the verdict and the value is durable when it returns (bash hears nothing else); content without
// a final newline commits at flush (close), fsync, rename or release.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>

#include "fs/filesystem.hpp"

namespace sitesfs::fs {

struct Handle {
    std::mutex mu;
    Node node;
    int flags = 0;
    bool writable = false;
    std::string content;   // a writer's value; temp files keep their bytes in TempFile
    std::string original;  // a field writer: the stored value at open, put back if a later line is refused
    std::optional<std::string> committed;  // what this handle last committed, while it has
    bool pending = false;  // content holds a value not yet committed
    bool wrote = false;    // data arrived (write or ftruncate) since the last commit
    unsigned flushes = 0;
    uint64_t generation = 0;  // waiting files: the site's generation at open
    std::atomic<bool> answered{false};  // waiting files: `content` holds the answer the first read gave (set under mu)
    // A reader of a read-write field (direct I/O): a read at offset 0 takes the current value into
    // `content`, and reads further on continue that value, so a reader that reads until a read
    // returns nothing (cat) never joins the head of one value to the tail of the next.
    bool direct_read = false;
};

inline Handle* handle_of(const fuse_file_info* fi) { return reinterpret_cast<Handle*>(fi->fh); }

// Commits a field handle's pending value; returns 0 or an errno. Clears `pending` either way: a
// refused value is reported once, not again at every later flush. A refusal after this handle
// committed earlier lines puts back the value from before the open, so a value written over
// several write() calls takes effect whole or not at all.
int commit_pending(Filesystem& fs, Handle& h);

// Writes `size` bytes at `off` into `data`, growing it; EFBIG past `limit`.
int splice_into(std::string& data, const char* buf, size_t size, off_t off, size_t limit);

}  // namespace sitesfs::fs
