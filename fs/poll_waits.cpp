#include "fs/poll_waits.hpp"

#include <spdlog/spdlog.h>

#include <cstring>
#include <vector>

namespace sitesfs::fs {

PollWaits::~PollWaits() {
    for (auto& [ino, by_handle] : kept_)
        for (auto& [h, ph] : by_handle) fuse_pollhandle_destroy(ph);
}

bool PollWaits::changed_or_keep(const Handle& h, fuse_ino_t ino, fuse_pollhandle* ph,
                                const std::function<bool()>& changed) {
    fuse_pollhandle* old = ph;
    bool yes;
    {
        std::lock_guard lock(mu_);
        yes = changed();
        if (!yes && ph) std::swap(old, kept_[ino][&h]);
    }
    if (old) fuse_pollhandle_destroy(old);
    return yes;
}

void PollWaits::wake(fuse_ino_t ino) {
    std::vector<fuse_pollhandle*> woken;
    {
        std::lock_guard lock(mu_);
        auto it = kept_.find(ino);
        if (it == kept_.end()) return;
        for (auto& [h, ph] : it->second) woken.push_back(ph);
        kept_.erase(it);
    }
    for (fuse_pollhandle* ph : woken) {
        // A poller that went away meanwhile is no error worth more than a debug line.
        if (int rc = fuse_lowlevel_notify_poll(ph); rc != 0)
            spdlog::debug("poll notification of inode {} failed: {}", ino, std::strerror(-rc));
        fuse_pollhandle_destroy(ph);
    }
}

void PollWaits::drop(const Handle& h, fuse_ino_t ino) {
    fuse_pollhandle* ph = nullptr;
    {
        std::lock_guard lock(mu_);
        auto it = kept_.find(ino);
        if (it == kept_.end()) return;
        auto k = it->second.find(&h);
        if (k == it->second.end()) return;
        ph = k->second;
        it->second.erase(k);
        if (it->second.empty()) kept_.erase(it);
    }
    fuse_pollhandle_destroy(ph);
}

}  // namespace sitesfs::fs
