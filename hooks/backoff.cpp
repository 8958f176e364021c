#include "hooks/backoff.hpp"

#include <algorithm>

namespace sitesfs::hooks {

bool host_failure(std::string_view step) {
    return std::find(kHostFailureSteps.begin(), kHostFailureSteps.end(), step) != kHostFailureSteps.end();
}

std::chrono::milliseconds Backoff::wait(std::chrono::milliseconds interval, int attempts) {
    const std::chrono::milliseconds cap = std::max<std::chrono::milliseconds>(interval, std::chrono::hours(1));
    std::chrono::milliseconds wait = interval;
    for (int i = 1; i < attempts && wait < cap; ++i) wait *= 2;
    return std::min(wait, cap);
}

std::chrono::milliseconds Backoff::fail(SteadyTime now) {
    const std::chrono::milliseconds w = wait(interval_, ++attempts_);
    retry_at_ = now + w;
    return w;
}

void Backoff::fail_until_changed() {
    ++attempts_;
    retry_at_ = SteadyTime::max();
}

SiteBackoffs::PollDecision SiteBackoffs::on_poll(const std::string& site, bool shows_failed, SteadyTime now) {
    return decide(site, shows_failed, now);
}

SiteBackoffs::PollDecision SiteBackoffs::on_refresh(const std::string& site, bool shows_failed) {
    return decide(site, shows_failed, std::nullopt);
}

SiteBackoffs::PollDecision SiteBackoffs::decide(const std::string& site, bool shows_failed, std::optional<SteadyTime> now) {
    std::lock_guard lock(mu_);
    const auto failed = failed_.find(site);
    const FailedDeploy* failure = failed == failed_.end() ? nullptr : &failed->second;
    if (shows_failed && !failure) return {PollDecision::run, "", std::nullopt};  // failed before this start
    if (failure && host_failure(failure->step)) {
        if (now && !failure->backoff.due(*now)) return {PollDecision::wait, "", std::nullopt};
        return {PollDecision::run, failure->step, std::nullopt};
    }
    if (const auto it = unreachable_.find(site); now && it != unreachable_.end() && !it->second.due(*now))
        return {PollDecision::wait, "", std::nullopt};
    return {PollDecision::ask, "", failure ? std::optional(failure->commit) : std::nullopt};
}

std::optional<std::chrono::milliseconds> SiteBackoffs::deploy_failed(const std::string& site, const std::string& commit,
                                                                     const std::string& step, uint64_t generation,
                                                                     SteadyTime now) {
    std::lock_guard lock(mu_);
    unreachable_.erase(site);
    auto it = failed_.find(site);
    const bool again = it != failed_.end() && it->second.commit == commit && it->second.step == step &&
                       it->second.generation == generation;
    if (!again) it = failed_.insert_or_assign(site, FailedDeploy{commit, step, generation, Backoff(interval_)}).first;
    Backoff& backoff = it->second.backoff;
    if (host_failure(step)) return backoff.fail(now);
    backoff.fail_until_changed();
    return std::nullopt;
}

void SiteBackoffs::deploy_succeeded(const std::string& site) { forget(site); }

std::chrono::milliseconds SiteBackoffs::unreachable(const std::string& site, SteadyTime now) {
    std::lock_guard lock(mu_);
    return unreachable_.try_emplace(site, interval_).first->second.fail(now);
}

void SiteBackoffs::reached(const std::string& site) {
    std::lock_guard lock(mu_);
    unreachable_.erase(site);
}

void SiteBackoffs::forget(const std::string& site) {
    std::lock_guard lock(mu_);
    failed_.erase(site);
    unreachable_.erase(site);
}

}  // namespace sitesfs::hooks
