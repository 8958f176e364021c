// The reconciler: level-triggered convergence of every site's served state to its desired state.
//
// Triggers: every committed write (the store's change feed, `ctl` redeploy included), a refresh
// (`ctl`, a webhook), a poll of each followed branch, and startup. Work is keyed by site, so ten quick writes to one site while it deploys collapse into
// one more run of the newest generation. One run per site at a time; different sites run in
// parallel on a bounded pool of workers. A run that a newer generation supersedes stops at its next
// step and undoes what it did; the store fences its reports, so an older run never overwrites a
// newer result. FUSE handlers only ever queue work here; they never wait on git, the network or
// the proxy.
//
// Its parts, each with its own lock, none of which is held while another part is called:
// the work queue (work_queue.hpp), the backoffs (backoff.hpp), the metrics (deploy_metrics.hpp),
// and, before any of them runs, the start-up recovery (startup_recovery.hpp). This class holds
// only the run itself: decide, run the steps, report, schedule the retry.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hooks/backoff.hpp"
#include "hooks/certificates.hpp"
#include "hooks/deploy.hpp"
#include "hooks/deploy_log.hpp"
#include "hooks/deploy_metrics.hpp"
#include "hooks/notifications.hpp"
#include "hooks/work_queue.hpp"
#include "store/store.hpp"

namespace sitesfs::hooks {

class Reconciler {
public:
    // Builds the proxy renderer and the reloader from `config` (throws ProxyError / ReloadError
    // for a config that cannot work).
    Reconciler(Store& store, HooksConfig config);
    ~Reconciler();
    Reconciler(const Reconciler&) = delete;
    Reconciler& operator=(const Reconciler&) = delete;

    // Recovers from disk (startup_recovery.hpp), subscribes to the store, queues every site that
    // is not converged on disk, and starts the workers and the poller.
    void start();
    // Stops taking work, makes running runs stop at their next step (undoing), and joins.
    void stop();

    // `refresh` written to `ctl`, or a verified webhook's push: ask `site`'s remote now, whatever
    // the poll's backoff, and deploy when its branch moved. Queued at once, never waiting for the
    // run; a site the store lacks comes to nothing. (`redeploy` is a new generation, as a write is.)
    void refresh(const std::string& site);

    // Prometheus text: runs by outcome, failures by step, run durations, retries, the proxy's
    // reloads, certificates, poll ticks, notifications.
    std::string metrics() const;

private:
    // One deploy run of one generation, as the steps left it.
    struct Run {
        Deploy deploy;
        uint64_t generation;
        RunResult result;
        int64_t dur_ms = 0;
    };
    // What a finished run reports: the site's new actual state and the deploy log's entry.
    struct Report {
        ActualState next;
        DeployLogEntry entry;
    };

    void subscribe();
    void poll_loop();
    void reconcile(const std::string& site, RunKind kind);
    void take_down(const std::string& name, const SiteRef& site);
    void move_away(const std::string& name, const SiteRecord& site);
    bool poll_due(const SiteRecord& site, RunKind kind);
    bool remote_moved(const SiteRecord& site, const std::string& last_commit, SteadyTime now);
    Run run_deploy(const SiteRef& site);
    Report report_of(const SiteRecord& site, const Run& run);
    void schedule_retry(const std::string& site, const Run& run, ActualState& next);
    void finish(const SiteRecord& site, const Run& run, const Report& report);
    void notify(const SiteRecord& before, const Report& report);
    void show_poll_error(const SiteRecord& site, const std::string& what, Timestamp retry_at);
    void refresh_certificates(const std::string& site);
    void unpublish(const std::string& site, bool remove_data);
    // Whether the store took the outcome (a newer generation's fences it out).
    bool record(const SiteRecord& before, uint64_t generation, ActualState next, DeployLogEntry entry);

    // The store outlives us and cannot unsubscribe; its listener reaches us through this, which
    // stop() empties. Its lock is held while the listener queues a site (Inbox::mu → the queue's).
    struct Inbox {
        std::mutex mu;
        Reconciler* target = nullptr;
    };

    Store& store_;
    const std::shared_ptr<Inbox> inbox_ = std::make_shared<Inbox>();
    const HooksConfig config_;
    ProxyPublisher proxy_;
    KnownHosts known_hosts_;
    BuildSlots builds_;  // [build] jobs, apart from the workers
    DeployLog log_;
    Certificates certificates_;
    const std::vector<std::unique_ptr<Step>> steps_;
    DeployMetrics metrics_;
    SiteBackoffs backoffs_;  // failed deploys and unreachable remotes (backoff.hpp)
    WorkQueue queue_;
    std::thread poller_;
    Notifications notifications_;  // [notify] command, after each outcome
};

}  // namespace sitesfs::hooks
