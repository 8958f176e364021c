#include "fs/handles.hpp"

#include <cerrno>

namespace sitesfs::fs {

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
