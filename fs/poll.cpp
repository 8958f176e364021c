// poll: a reader of a site's field learns, as from a sysfs attribute, that the content changed
// since it last read it (POLLPRI|POLLERR), so a script can wait for a change without re-reading
// on a timer; inotify never sees what a FUSE daemon changes. A handle remembers what it read
// (`seen`, at open and at each read from the start); a store change that reaches the file wakes
// its kept poll handles (PollWaits, from the invalidator's thread) and the kernel polls again.
#include <poll.h>

#include <cerrno>

#include "fs/handles.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs::ops {

void poll(fuse_req_t req, fuse_ino_t, fuse_file_info* fi, fuse_pollhandle* ph) {
    auto& fs = fs_of(req);
    const Handle* h = handle_of(fi);
    if (!h) {
        // A file the kernel opened itself (read-only mounts) tells sitesfs nothing of what its
        // reader has read. ENOSYS has the kernel answer every later poll on this mount itself, as
        // for a regular file: readable, never a change.
        if (ph) fuse_pollhandle_destroy(ph);
        fuse_reply_err(req, ENOSYS);
        return;
    }
    // Always ready, as a regular file.
    unsigned events = POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM;
    if (!signals_changes(*h)) {
        if (ph) fuse_pollhandle_destroy(ph);
    } else if (fs.polls().changed_or_keep(*h, h->node.ino, ph, [&] {
                   // A removed site's file never comes back, so it counts as changed: the re-read
                   // answers ENOENT.
                   auto content = fs.content(h->node);
                   return !content || fingerprint(*content) != h->seen;
               })) {
        events |= POLLPRI | POLLERR;
    }
    fuse_reply_poll(req, events);
}

}  // namespace sitesfs::fs::ops
