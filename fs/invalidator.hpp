// Tells the kernel which cached entries and inodes went stale, and wakes the pollers of those
// inodes, from a thread of its own.
// libfuse's notify calls must not run inside a handler or while holding a lock a handler needs
// (the kernel may wait for that handler before it can drop its cache), so handlers and store
// listeners only queue work here.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "store/store.hpp"

namespace sitesfs::fs {

// An inode (name empty) or the entry `name` in directory `ino`.
struct InvalTarget {
    fuse_ino_t ino;
    std::string name;
};

class Invalidator {
public:
    // Turns a store change into targets; runs on the invalidator thread.
    using Resolver = std::function<std::vector<InvalTarget>(const Change&)>;

    // Runs on the invalidator thread after the kernel was told an inode changed.
    using Woken = std::function<void(fuse_ino_t)>;

    // `woken` wakes the pollers of an inode once its cached pages are gone, so that their re-read
    // reaches sitesfs.
    Invalidator(Resolver resolver, Woken woken);
    ~Invalidator();

    void start(fuse_session* session);
    void stop();  // joins the thread; later pushes are dropped

    void push(Change change);
    void push(InvalTarget target);

private:
    void run();
    void notify(const InvalTarget& t);

    Resolver resolver_;
    Woken woken_;
    fuse_session* session_ = nullptr;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::variant<Change, InvalTarget>> queue_;
    bool running_ = false;
    std::thread thread_;
};

}  // namespace sitesfs::fs
