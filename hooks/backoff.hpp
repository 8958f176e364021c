// When to try again after a failure: one `Backoff` type for a failed deploy and for a remote a poll
// could not reach, and `SiteBackoffs`, the reconciler's table of them by site.
//
// A failure the host caused (a fetch, stage, switch or reload that failed: the network, a disk,
// Caddy or D-Bus) is run again once its backoff has passed, pinned or not, so whatever comes back
// is picked up without a write. A failure of the commit itself (Caddy refused its config, its
// health check failed) waits for the branch to move, a write or a restart, so a broken commit is
// not redeployed, and the proxy reloaded, every tick. A live site whose remote could not be checked
// keeps serving and is asked again on the same backoff.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace sitesfs::hooks {

using SteadyTime = std::chrono::steady_clock::time_point;

// The steps whose failure says more about the host (network, disk, Caddy, D-Bus) than about the
// commit: retried on a timer. `proxy` (Caddy refused the config) and `health` (the release does
// not answer) are the commit's.
inline constexpr std::array<std::string_view, 4> kHostFailureSteps = {"fetch", "stage", "switch", "reload"};
bool host_failure(std::string_view step);

// One thing that keeps failing: how many times in a row, and when it is due again. The wait is the
// interval (the poll interval) after the first failure, doubled after every further one, up to an
// hour (or the interval, when that is longer). Pure logic: no clock is read, no lock taken.
class Backoff {
public:
    explicit Backoff(std::chrono::milliseconds interval) : interval_(interval) {}

    // One more failure at `now`; due again after the wait it returns.
    std::chrono::milliseconds fail(SteadyTime now);
    // One more failure that no timer retries: it is never due.
    void fail_until_changed();

    bool due(SteadyTime now) const { return now >= retry_at_; }
    int attempts() const { return attempts_; }
    SteadyTime retry_at() const { return retry_at_; }

    // The wait after `attempts` failures in a row.
    static std::chrono::milliseconds wait(std::chrono::milliseconds interval, int attempts);

private:
    std::chrono::milliseconds interval_;
    int attempts_ = 0;
    SteadyTime retry_at_{};
};

// The backoffs of every site: its last failed deploy and its unreachable remote. Its lock is held
// only inside these calls, which call nothing else.
class SiteBackoffs {
public:
    explicit SiteBackoffs(std::chrono::milliseconds interval) : interval_(interval) {}

    // What a poll tick does with a site that is settled at its newest generation.
    struct PollDecision {
        enum Verdict {
            run,     // deploy now: a failure from before this start (to learn why), or a retry now due
            wait,    // a backoff runs: ask nothing of the remote before it has passed
            ask,     // ask the remote whether the branch moved
        } verdict;
        std::string retried_step;            // run: the host failure whose backoff has passed
        std::optional<std::string> failed_commit;  // ask: the commit that last failed (moved = not that one)
    };
    PollDecision on_poll(const std::string& site, bool shows_failed, SteadyTime now);
    // The same for a refresh (`ctl`, a webhook), which someone asked for now: no backoff makes it
    // wait, so it is never `wait`.
    PollDecision on_refresh(const std::string& site, bool shows_failed);

    // The run of `generation` failed at `step` on `commit` (empty when the fetch failed before one
    // was known). The same failure again counts one more attempt; any other (a new generation, a
    // new commit, another step) starts the count again. Returns the wait for a failure the host
    // caused, nothing for one of the commit's.
    std::optional<std::chrono::milliseconds> deploy_failed(const std::string& site, const std::string& commit,
                                                           const std::string& step, uint64_t generation,
                                                           SteadyTime now);
    // The run succeeded: nothing to retry, and the remote was reached.
    void deploy_succeeded(const std::string& site);
    // The poll could not reach the site's remote; returns the wait before it is asked again.
    std::chrono::milliseconds unreachable(const std::string& site, SteadyTime now);
    void reached(const std::string& site);
    // The site is gone or incomplete.
    void forget(const std::string& site);

private:
    // on_poll, and with no `now` on_refresh.
    PollDecision decide(const std::string& site, bool shows_failed, std::optional<SteadyTime> now);

    struct FailedDeploy {
        std::string commit;
        std::string step;
        uint64_t generation = 0;
        Backoff backoff;
    };

    const std::chrono::milliseconds interval_;
    std::mutex mu_;
    std::map<std::string, FailedDeploy> failed_;
    std::map<std::string, Backoff> unreachable_;
};

}  // namespace sitesfs::hooks
