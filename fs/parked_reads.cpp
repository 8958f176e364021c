#include "fs/parked_reads.hpp"

#include <algorithm>
#include <cerrno>
#include <vector>

#include "fs/handles.hpp"

namespace sitesfs::fs {

using SteadyClock = std::chrono::steady_clock;

ParkedReads::ParkedReads(Probe probe, std::chrono::milliseconds timeout)
    : probe_(std::move(probe)), timeout_(timeout) {}

ParkedReads::~ParkedReads() { stop(); }

void ParkedReads::start() {
    std::lock_guard lock(mu_);
    running_ = true;
    deadlines_ = std::thread([this] { expire(); });
}

void ParkedReads::stop() {
    std::multimap<std::string, Parked> left;
    {
        std::lock_guard lock(mu_);
        if (!running_) return;
        running_ = false;
        left.swap(parked_);
    }
    cv_.notify_all();
    deadlines_.join();
    for (const auto& [site, p] : left) answer(p, std::nullopt, EINTR);
}

void ParkedReads::answer(const Parked& p, const std::optional<std::string>& content, int err) {
    if (err || !content) {
        fuse_reply_err(p.req, err ? err : EINTR);
        return;
    }
    std::string slice;
    {
        std::lock_guard lock(p.handle->mu);
        p.handle->content = *content;
        p.handle->answered = true;
        slice = content->substr(0, p.size);
    }
    fuse_reply_buf(p.req, slice.data(), slice.size());
}

void ParkedReads::read(fuse_req_t req, Handle& handle, size_t size) {
    const std::string& site = handle.node.site;
    const Parked p{req, &handle, handle.node.field, site, handle.generation, size, SteadyClock::now() + timeout_};
    // The interrupt callback is registered before the read is parked: once parked, another thread
    // may answer it and libfuse frees the answered request, so registering after parking touched
    // freed memory (ThreadSanitizer, docs/reliability.md#sanitizers). An interrupt that comes
    // before the read is parked (libfuse calls back at once if the reader already gave up) is
    // noted in unparked_ and answered here.
    {
        std::lock_guard lock(mu_);
        unparked_[req] = false;
    }
    fuse_req_interrupt_func(req, on_interrupt, this);
    int err = 0;
    std::optional<std::string> now;
    {
        // Probing and parking under one lock: a change made visible after this probe is rechecked
        // only after we let go, so it finds the read parked (no lost wake-up).
        std::lock_guard lock(mu_);
        const bool interrupted = unparked_.extract(req).mapped();
        if (!interrupted) now = probe_(*p.field, site, p.generation, err);
        if (!now && !err && running_ && !interrupted) {
            parked_.emplace(site, p);
            cv_.notify_all();
        } else if (!now && !err) {
            err = EINTR;
        }
    }
    if (now || err) answer(p, now, err);
}

void ParkedReads::recheck(const std::string& site) {
    std::vector<std::pair<Parked, std::optional<std::string>>> done;
    std::vector<int> errs;
    {
        std::lock_guard lock(mu_);
        auto [from, to] = parked_.equal_range(site);
        for (auto it = from; it != to;) {
            int err = 0;
            auto content = probe_(*it->second.field, site, it->second.generation, err);
            if (!content && !err) {
                ++it;
                continue;
            }
            done.emplace_back(it->second, std::move(content));
            errs.push_back(err);
            it = parked_.erase(it);
        }
    }
    for (size_t i = 0; i < done.size(); ++i) answer(done[i].first, done[i].second, errs[i]);
}

void ParkedReads::on_interrupt(fuse_req_t req, void* data) {
    auto* self = static_cast<ParkedReads*>(data);
    std::optional<Parked> found;
    {
        std::lock_guard lock(self->mu_);
        if (const auto u = self->unparked_.find(req); u != self->unparked_.end()) {
            u->second = true;  // read() answers it
            return;
        }
        const auto it = std::find_if(self->parked_.begin(), self->parked_.end(),
                                     [req](const auto& e) { return e.second.req == req; });
        if (it == self->parked_.end()) return;  // answered meanwhile
        found = it->second;
        self->parked_.erase(it);
    }
    self->answer(*found, std::nullopt, EINTR);
}

void ParkedReads::expire() {
    std::unique_lock lock(mu_);
    while (running_) {
        const auto now = SteadyClock::now();
        auto next = SteadyClock::time_point::max();
        std::vector<Parked> late;
        for (auto it = parked_.begin(); it != parked_.end();) {
            if (it->second.deadline <= now) {
                late.push_back(it->second);
                it = parked_.erase(it);
            } else {
                next = std::min(next, it->second.deadline);
                ++it;
            }
        }
        if (!late.empty()) {
            lock.unlock();
            for (const auto& p : late) answer(p, std::nullopt, ETIMEDOUT);
            lock.lock();
            continue;
        }
        if (next == SteadyClock::time_point::max()) cv_.wait(lock);
        else cv_.wait_until(lock, next);
    }
}

}  // namespace sitesfs::fs
