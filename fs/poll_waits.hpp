// The poll handles kept for open files whose poller waits for a change (poll.cpp): one per open
// file, the newest the kernel sent, since one notification wakes every poll of that file. A store
// change that reaches a file wakes its pollers from the invalidator's thread, after the kernel
// dropped the file's cached pages and attributes, holding no lock a handler takes.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <functional>
#include <mutex>
#include <unordered_map>

namespace sitesfs::fs {

struct Handle;

class PollWaits {
public:
    PollWaits() = default;
    ~PollWaits();  // destroys the handles still kept (the session is gone: nobody waits)
    PollWaits(const PollWaits&) = delete;
    PollWaits& operator=(const PollWaits&) = delete;

    // Whether `changed()` holds; when it does not and the kernel asked for a notification (`ph`
    // set), keeps `ph` for `h` on inode `ino`. Both under the lock wake() takes, so a change that
    // lands after the check finds the handle kept: no wake-up is lost. `ph` is taken either way.
    bool changed_or_keep(const Handle& h, fuse_ino_t ino, fuse_pollhandle* ph, const std::function<bool()>& changed);
    // Notifies every poller of `ino`; the kernel polls again, with a new handle if it still waits.
    void wake(fuse_ino_t ino);
    // The file is released: its poller, if any, is gone with it.
    void drop(const Handle& h, fuse_ino_t ino);

private:
    std::mutex mu_;
    std::unordered_map<fuse_ino_t, std::unordered_map<const Handle*, fuse_pollhandle*>> kept_;
};

}  // namespace sitesfs::fs
