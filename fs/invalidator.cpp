#include "fs/invalidator.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <set>

namespace sitesfs::fs {

Invalidator::Invalidator(Resolver resolver, Woken woken) : resolver_(std::move(resolver)), woken_(std::move(woken)) {}

Invalidator::~Invalidator() { stop(); }

void Invalidator::start(fuse_session* session) {
    std::lock_guard lock(mu_);
    session_ = session;
    running_ = true;
    thread_ = std::thread([this] { run(); });
}

void Invalidator::stop() {
    {
        std::lock_guard lock(mu_);
        if (!running_) return;
        running_ = false;
    }
    cv_.notify_all();
    thread_.join();
}

void Invalidator::push(Change change) {
    {
        std::lock_guard lock(mu_);
        if (!running_) return;
        queue_.emplace_back(std::move(change));
    }
    cv_.notify_one();
}

void Invalidator::push(InvalTarget target) {
    {
        std::lock_guard lock(mu_);
        if (!running_) return;
        queue_.emplace_back(std::move(target));
    }
    cv_.notify_one();
}

void Invalidator::run() {
    for (;;) {
        std::deque<std::variant<Change, InvalTarget>> batch;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return !running_ || !queue_.empty(); });
            if (!running_) return;
            batch.swap(queue_);
        }
        // A burst of writes to one site needs one round of invalidations, not one per write.
        std::set<std::pair<std::string, int>> seen;
        for (auto& job : batch) {
            if (auto* t = std::get_if<InvalTarget>(&job)) {
                notify(*t);
                continue;
            }
            const auto& change = std::get<Change>(job);
            if (!seen.emplace(change.site, static_cast<int>(change.kind)).second) continue;
            for (const auto& t : resolver_(change)) notify(t);
        }
    }
}

void Invalidator::notify(const InvalTarget& t) {
    const int rc = t.name.empty()
                       ? fuse_lowlevel_notify_inval_inode(session_, t.ino, 0, 0)
                       : fuse_lowlevel_notify_inval_entry(session_, t.ino, t.name.c_str(), t.name.size());
    // ENOENT: the kernel had already dropped it, which is what we wanted.
    if (rc != 0 && rc != -ENOENT)
        spdlog::debug("cache invalidation of inode {} '{}' failed: {}", t.ino, t.name, std::strerror(-rc));
    if (t.name.empty()) woken_(t.ino);
}

}  // namespace sitesfs::fs
