// The reconciler's counters for /.metrics and the textfile: runs by outcome, failed deploys by
// step, run durations, retries after a backoff, poll ticks and refreshes. Its lock is held only inside these
// calls, which call nothing else.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sitesfs::hooks {

class DeployMetrics {
public:
    // steps: the deploy's steps in order; each gets a failure series, zeros included.
    explicit DeployMetrics(std::vector<std::string> steps) : steps_(std::move(steps)) {}

    // A run ended with `action` (deployed, up-to-date, failed, removed, unpublished), failed at
    // `failed_step` (empty: did not fail), after `dur_ms`.
    void run_done(const std::string& action, const std::string& failed_step, int64_t dur_ms);
    // A failure the host caused is run again now that its backoff has passed.
    void retried(const std::string& step);
    // Someone asked for a refresh (`ctl`, a webhook).
    void refresh_requested();
    // A poll tick's every run has finished, `seconds` after the tick began.
    void tick_done(double seconds);

    // Prometheus text: sitesfs_reconciles_total, sitesfs_deploy_failures_total,
    // sitesfs_reconcile_duration_seconds and sitesfs_deploy_retries_total.
    std::string runs_text() const;
    // sitesfs_poll_ticks_total, sitesfs_poll_tick_seconds and sitesfs_refreshes_total.
    std::string ticks_text() const;

private:
    const std::vector<std::string> steps_;
    mutable std::mutex mu_;
    std::map<std::string, uint64_t> outcomes_;
    std::map<std::string, uint64_t> failed_steps_;
    uint64_t duration_ms_sum_ = 0;
    uint64_t duration_count_ = 0;
    std::map<std::string, uint64_t> retries_;  // runs a backoff started, by failed step
    uint64_t ticks_done_ = 0;
    uint64_t refreshes_ = 0;
    double last_tick_seconds_ = 0;
};

}  // namespace sitesfs::hooks
