#include "hooks/deploy_metrics.hpp"

#include <array>
#include <string_view>

#include "hooks/backoff.hpp"

namespace sitesfs::hooks {

namespace {

constexpr std::array<std::string_view, 5> kOutcomes = {"deployed", "up-to-date", "failed", "removed", "unpublished"};

void line(std::string& out, const std::string& name, const std::string& labels, const std::string& value) {
    out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + value + "\n";
}

// One series per label value, zeros included, so a dashboard's series never disappear.
template <typename Values>
void by_label(std::string& out, const std::string& name, const std::string& label, const Values& values,
              const std::map<std::string, uint64_t>& counts) {
    for (const auto& value : values) {
        const auto it = counts.find(std::string(value));
        line(out, name, label + "=\"" + std::string(value) + "\"", std::to_string(it == counts.end() ? 0 : it->second));
    }
}

}  // namespace

void DeployMetrics::run_done(const std::string& action, const std::string& failed_step, int64_t dur_ms) {
    std::lock_guard lock(mu_);
    ++outcomes_[action];
    if (!failed_step.empty()) ++failed_steps_[failed_step];
    duration_ms_sum_ += static_cast<uint64_t>(dur_ms);
    ++duration_count_;
}

void DeployMetrics::retried(const std::string& step) {
    std::lock_guard lock(mu_);
    ++retries_[step];
}

void DeployMetrics::refresh_requested() {
    std::lock_guard lock(mu_);
    ++refreshes_;
}

void DeployMetrics::tick_done(double seconds) {
    std::lock_guard lock(mu_);
    last_tick_seconds_ = seconds;
    ++ticks_done_;
}

std::string DeployMetrics::runs_text() const {
    std::string out;
    std::lock_guard lock(mu_);
    out += "# HELP sitesfs_reconciles_total Reconcile runs by outcome.\n# TYPE sitesfs_reconciles_total counter\n";
    by_label(out, "sitesfs_reconciles_total", "outcome", kOutcomes, outcomes_);
    out += "# HELP sitesfs_deploy_failures_total Failed deploys by the step that failed.\n"
           "# TYPE sitesfs_deploy_failures_total counter\n";
    by_label(out, "sitesfs_deploy_failures_total", "step", steps_, failed_steps_);
    out += "# HELP sitesfs_reconcile_duration_seconds Time spent in reconcile runs.\n"
           "# TYPE sitesfs_reconcile_duration_seconds summary\n";
    line(out, "sitesfs_reconcile_duration_seconds_sum", "", std::to_string(static_cast<double>(duration_ms_sum_) / 1000.0));
    line(out, "sitesfs_reconcile_duration_seconds_count", "", std::to_string(duration_count_));
    out += "# HELP sitesfs_deploy_retries_total Runs started again after a failure the host caused, once its backoff "
           "had passed, by the step that had failed.\n# TYPE sitesfs_deploy_retries_total counter\n";
    by_label(out, "sitesfs_deploy_retries_total", "step", kHostFailureSteps, retries_);
    return out;
}

std::string DeployMetrics::ticks_text() const {
    std::string out;
    std::lock_guard lock(mu_);
    out += "# HELP sitesfs_poll_ticks_total Poll ticks whose every remote check (and the deploys they started) finished.\n"
           "# TYPE sitesfs_poll_ticks_total counter\n";
    line(out, "sitesfs_poll_ticks_total", "", std::to_string(ticks_done_));
    out += "# HELP sitesfs_poll_tick_seconds How long the last finished poll tick took, from its start until its last run ended.\n"
           "# TYPE sitesfs_poll_tick_seconds gauge\n";
    line(out, "sitesfs_poll_tick_seconds", "", std::to_string(last_tick_seconds_));
    out += "# HELP sitesfs_refreshes_total Refreshes asked for through ctl or a webhook.\n"
           "# TYPE sitesfs_refreshes_total counter\n";
    line(out, "sitesfs_refreshes_total", "", std::to_string(refreshes_));
    return out;
}

}  // namespace sitesfs::hooks
