#include "hooks/work_queue.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <utility>

namespace sitesfs::hooks {

using SteadyClock = std::chrono::steady_clock;

void WorkQueue::start(unsigned workers) {
    for (unsigned i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
}

void WorkQueue::stop() {
    {
        std::lock_guard lock(mu_);
        stopped_ = true;
    }
    cv_.notify_all();
    sleep_cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
}

bool WorkQueue::stopped() const {
    std::lock_guard lock(mu_);
    return stopped_;
}

void WorkQueue::push(const std::string& site, RunKind kind) {
    {
        std::lock_guard lock(mu_);
        if (stopped_ || !enqueue_locked(site, kind)) return;
    }
    cv_.notify_one();
}

void WorkQueue::push_tick(const std::vector<std::string>& sites) {
    std::optional<double> ended;
    {
        std::lock_guard lock(mu_);
        if (stopped_) return;
        ++tick_;
        tick_started_ = SteadyClock::now();
        tick_outstanding_ = 0;
        for (const auto& site : sites) {
            if (!enqueue_locked(site, RunKind::poll)) continue;
            slots_[site].tick = tick_;
            ++tick_outstanding_;
        }
        if (tick_outstanding_ == 0) ended = tick_seconds_locked();
        cv_.notify_all();
    }
    if (ended) tick_done_(*ended);
}

bool WorkQueue::sleep(std::chrono::milliseconds interval) {
    std::unique_lock lock(mu_);
    return !sleep_cv_.wait_for(lock, interval, [this] { return stopped_; });
}

// Queues a run of `site` unless one is queued or running; returns whether it queued one.
bool WorkQueue::enqueue_locked(const std::string& site, RunKind kind) {
    Slot& s = slots_[site];
    if (s.running) {
        // A poll tick during a run has nothing to add.
        if (kind != RunKind::poll) s.again = std::max(s.again.value_or(kind), kind);
        return false;
    }
    if (s.queued) {
        s.kind = std::max(s.kind, kind);
        return false;
    }
    s.queued = true;
    s.kind = kind;
    queue_.push_back(site);
    return true;
}

void WorkQueue::work() {
    std::unique_lock lock(mu_);
    for (;;) {
        cv_.wait(lock, [this] { return stopped_ || !queue_.empty(); });
        if (stopped_) return;
        const std::string site = queue_.front();
        queue_.pop_front();
        Slot& slot = slots_[site];
        slot.queued = false;
        slot.running = true;
        const RunKind kind = slot.kind;
        const uint64_t tick = std::exchange(slot.tick, 0);
        lock.unlock();
        try {
            run_(site, kind);
        } catch (const std::exception& e) {
            spdlog::error("site {}: reconcile failed unexpectedly: {}", site, e.what());
        }
        lock.lock();
        const std::optional<double> ended = tick_run_done_locked(tick);
        requeue_or_drop_locked(site);
        if (!ended) continue;
        lock.unlock();
        tick_done_(*ended);
        lock.lock();
    }
}

// The run of `site` ended: it runs once more when a change came meanwhile, else its slot goes
// (unless a change queued it again already).
void WorkQueue::requeue_or_drop_locked(const std::string& site) {
    Slot& after = slots_[site];
    after.running = false;
    if (after.again && !stopped_) {
        after.kind = *std::exchange(after.again, std::nullopt);
        after.queued = true;
        queue_.push_back(site);
        cv_.notify_one();
    } else if (!after.queued) {
        slots_.erase(site);
    }
}

std::optional<double> WorkQueue::tick_run_done_locked(uint64_t tick) {
    if (tick == 0 || tick != tick_ || tick_outstanding_ == 0 || --tick_outstanding_ > 0) return std::nullopt;
    return tick_seconds_locked();
}

double WorkQueue::tick_seconds_locked() const {
    return std::chrono::duration<double>(SteadyClock::now() - tick_started_).count();
}

}  // namespace sitesfs::hooks
