// The reconciler's work queue: runs keyed by site, on a bounded pool of workers.
//
// Level-triggered and coalescing: a change to a site that is queued adds nothing; a change while it
// runs marks it to run once more afterwards (with the newest generation, read when that run
// starts). Runs are queued for a reason (RunKind); a site queued for two reasons runs once, for the
// stronger. One run per site at a time; different sites run in parallel. A poll tick queues every
// site that is neither queued nor running as a poll run, and ends when all of those have finished
// (a tick that a newer one overtakes is not counted).
//
// Its lock guards the slots, the queue and the current tick, and is never held while a run works
// or while `tick_done` is called.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace sitesfs::hooks {

// Why a site runs, weakest first. A poll tick asks the remote only when no backoff holds it back; a
// refresh (`ctl`, a webhook) asks it now; a change (a write, a redeploy) deploys whatever the remote says.
enum class RunKind { poll, refresh, change };

class WorkQueue {
public:
    // One run of `site`, for the strongest reason it was queued for since its last run began.
    using Run = std::function<void(const std::string& site, RunKind kind)>;
    // A poll tick ended, `seconds` after it began.
    using TickDone = std::function<void(double seconds)>;

    WorkQueue(Run run, TickDone tick_done) : run_(std::move(run)), tick_done_(std::move(tick_done)) {}
    ~WorkQueue() { stop(); }
    WorkQueue(const WorkQueue&) = delete;
    WorkQueue& operator=(const WorkQueue&) = delete;

    // Starts the workers on what is queued and what comes.
    void start(unsigned workers);
    // Takes no more work, wakes the sleepers, and joins the workers (a run in progress ends first:
    // it sees stopped() at its next step).
    void stop();
    bool stopped() const;
    size_t workers() const { return workers_.size(); }

    // A change to `site` (or another reason): queue a run, or one more after the one in progress.
    void push(const std::string& site, RunKind kind = RunKind::change);
    // A poll tick over `sites`.
    void push_tick(const std::vector<std::string>& sites);
    // Waits `interval`, or less when stopped; returns whether the queue still runs.
    bool sleep(std::chrono::milliseconds interval);

private:
    struct Slot {
        bool queued = false;
        bool running = false;
        std::optional<RunKind> again;  // asked while running: run once more afterwards, for this
        RunKind kind = RunKind::poll;  // what the queued run is for
        uint64_t tick = 0;   // the poll tick that queued it (0: none), for the tick's duration
    };

    void work();
    bool enqueue_locked(const std::string& site, RunKind kind);
    void requeue_or_drop_locked(const std::string& site);
    // These return the seconds of a tick that ended, for tick_done once the lock is released.
    std::optional<double> tick_run_done_locked(uint64_t tick);
    double tick_seconds_locked() const;

    const Run run_;
    const TickDone tick_done_;
    mutable std::mutex mu_;
    std::condition_variable cv_;        // workers: the queue has work
    std::condition_variable sleep_cv_;  // sleep(): stop (its own, so a notify_one never wakes it instead of a worker)
    bool stopped_ = false;
    std::map<std::string, Slot> slots_;
    std::deque<std::string> queue_;
    // The current poll tick: its number, when it began, and how many of its runs are unfinished.
    uint64_t tick_ = 0;
    std::chrono::steady_clock::time_point tick_started_{};
    size_t tick_outstanding_ = 0;
    std::vector<std::thread> workers_;
};

}  // namespace sitesfs::hooks
