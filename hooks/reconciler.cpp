#include "hooks/reconciler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <system_error>
#include <utility>

#include "hooks/startup_recovery.hpp"
#include "schemas/site_schema.hpp"
#include "schemas/validators.hpp"

namespace sitesfs::hooks {

namespace stdfs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr size_t kSiteLogLines = 20;
constexpr std::string_view kPollErrorPrefix = "poll: ";

// Errors come from git servers, caddy and D-Bus peers with newlines and tabs in them; `status` is
// one `error:` line, so whitespace runs become one space and other control bytes are dropped.
std::string one_line(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
        if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
            if (!out.empty() && out.back() != ' ') out += ' ';
        } else if (c >= 0x20 && c != 0x7f) {
            out += static_cast<char>(c);
        }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

std::vector<std::string> step_names(const std::vector<std::unique_ptr<Step>>& steps) {
    std::vector<std::string> names;
    for (const auto& step : steps) names.emplace_back(step->name());
    return names;
}

// `actual` once nothing is served any more: `commit` and `status` must not say otherwise.
ActualState cleared(const ActualState& actual) {
    ActualState next = actual;
    next.state = SiteState::none;
    next.commit.clear();
    next.domain.clear();
    next.path.clear();
    next.tls.clear();
    next.retry_at = {};
    return next;
}

int64_t ms_since(SteadyClock::time_point started) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started).count();
}

}  // namespace

Reconciler::Reconciler(Store& store, HooksConfig config)
    : store_(store),
      config_(std::move(config)),
      proxy_(make_caddy_config(config_.proxy), make_reloader(config_.reload)),
      known_hosts_(config_.known_hosts, config_.host_key_policy, config_.host_key_pins),
      builds_(std::max(1u, config_.build.jobs)),
      log_(config_.deploy_log),
      certificates_(config_.health.tls_address, config_.health.timeout),
      steps_(deploy_steps()),
      metrics_(step_names(steps_)),
      backoffs_(config_.poll_interval),
      queue_([this](const std::string& site, RunKind kind) { reconcile(site, kind); },
             [this](double seconds) { metrics_.tick_done(seconds); }),
      notifications_(config_.notify) {}

Reconciler::~Reconciler() { stop(); }

void Reconciler::start() {
    StartupRecovery recovery(store_, config_, proxy_);
    recovery.clean_up();
    subscribe();
    for (const auto& name : recovery.sites_to_run()) queue_.push(name);
    queue_.start(std::max(1u, config_.workers));
    if (config_.poll_interval.count() > 0) poller_ = std::thread([this] { poll_loop(); });
    spdlog::info("reconciler: {} workers, poll every {} s, data in {}, proxy config {}, reload by {}",
                 queue_.workers(), config_.poll_interval.count() / 1000, config_.data_dir.string(),
                 config_.proxy.file.string(), proxy_.describe_reloader());
}

void Reconciler::stop() {
    {
        std::lock_guard lock(inbox_->mu);
        inbox_->target = nullptr;
    }
    queue_.stop();
    if (poller_.joinable()) poller_.join();
    notifications_.stop();
}

// Every write and refresh queues its site; the reconciler's own reports (actual state, times) do not.
void Reconciler::subscribe() {
    {
        std::lock_guard lock(inbox_->mu);
        inbox_->target = this;
    }
    store_.subscribe([inbox = inbox_](const Change& c) {
        if (c.kind == Change::Kind::Actual || c.kind == Change::Kind::Times) return;
        std::lock_guard lock(inbox->mu);
        if (!inbox->target) return;
        if (c.kind == Change::Kind::Refresh) inbox->target->refresh(c.site);
        else inbox->target->queue_.push(c.site);
    });
}

void Reconciler::refresh(const std::string& site) {
    spdlog::info("site {}: refresh requested", site);
    metrics_.refresh_requested();
    queue_.push(site, RunKind::refresh);
}

void Reconciler::poll_loop() {
    while (queue_.sleep(config_.poll_interval)) queue_.push_tick(store_.site_names());
}

std::string Reconciler::metrics() const {
    return metrics_.runs_text() + proxy_.metrics() + certificates_.metrics() + metrics_.ticks_text() +
           notifications_.metrics();
}

// One run of a site: bring what it serves to its newest generation, or take it down (removed,
// placed on other hosts, or incomplete).
void Reconciler::reconcile(const std::string& name, RunKind kind) {
    const SiteRef site = store_.site(name);
    if (site && !placed_on(*site, store_.host(), store_.labels())) return move_away(name, *site);
    if (!site || site_state(*site) == SiteState::incomplete) return take_down(name, site);
    if (kind != RunKind::change && !poll_due(*site, kind)) {
        if (kind == RunKind::refresh) spdlog::info("site {}: refreshed: nothing new to deploy", name);
        return refresh_certificates(name);
    }
    const Run run = run_deploy(site);
    if (run.result.superseded) {
        spdlog::info("site {}: generation {} superseded before {}; the newer one runs next", name, run.generation,
                     run.result.step);
        return;
    }
    Report report = report_of(*site, run);
    schedule_retry(name, run, report.next);
    finish(*site, run, report);
}

// A site the store no longer has, or one without a repo or a domain, serves nothing: it leaves the
// proxy (a removed site's data dir goes too), and its backoffs and certificates are forgotten.
void Reconciler::take_down(const std::string& name, const SiteRef& site) {
    backoffs_.forget(name);
    certificates_.forget(name);
    if (!site) return unpublish(name, true);
    unpublish(name, false);
    if (site->actual.commit.empty()) return;
    store_.report(name, site->generation, cleared(site->actual));
}

// A site placed on other hosts is, for this one, a removed site: out of the proxy, its data dir
// gone (placed here again, it is cloned anew), its backoffs and certificates forgotten, and no state
// of its own in `status`. Every write and poll tick of the site comes here, so a site that has
// nothing here is left alone: no proxy reload and no log entry per tick.
void Reconciler::move_away(const std::string& name, const SiteRecord& site) {
    backoffs_.forget(name);
    certificates_.forget(name);
    std::error_code ec;
    if (proxy_.serves(name) || stdfs::exists(SitePaths(config_.data_dir, name).marker, ec)) unpublish(name, true);
    if (site.actual.state == SiteState::none && site.actual.commit.empty()) return;
    store_.report(name, site.generation, cleared(site.actual));
}

// Whether a poll tick or a refresh deploys `s` now (see backoff.hpp). Nothing is asked of the
// remote while a backoff runs: a broken site costs one try per backoff period, not one per tick.
// A refresh was asked for by someone, now: it waits for no backoff.
bool Reconciler::poll_due(const SiteRecord& s, RunKind kind) {
    if (s.actual.generation != s.generation || !settled(s.actual.state)) return true;
    const auto now = SteadyClock::now();
    const bool failed = s.actual.state == SiteState::failed;
    const auto decision = kind == RunKind::refresh ? backoffs_.on_refresh(s.name, failed) : backoffs_.on_poll(s.name, failed, now);
    if (!decision.retried_step.empty()) metrics_.retried(decision.retried_step);
    if (decision.verdict != SiteBackoffs::PollDecision::ask) return decision.verdict == SiteBackoffs::PollDecision::run;
    if (!s.field("commit").value.empty()) return false;  // a pin follows nothing; its own failure waits for a write
    return remote_moved(s, decision.failed_commit.value_or(s.actual.commit), now);
}

// Lists the remote's refs (no pack): whether the branch is at another commit than `last_commit`.
// An unreachable remote leaves the served release alone; it is asked again after a backoff.
bool Reconciler::remote_moved(const SiteRecord& s, const std::string& last_commit, SteadyTime now) {
    try {
        GitRepo repo(SitePaths(config_.data_dir, s.name).repo);
        const RemoteAccess access(config_, known_hosts_, s, [this] { return queue_.stopped(); });
        const std::string head = repo.remote_head(access.url(), s.field("branch").value, access.options());
        backoffs_.reached(s.name);
        show_poll_error(s, "", {});
        return head != last_commit;
    } catch (const std::exception& e) {
        const std::chrono::milliseconds wait = backoffs_.unreachable(s.name, now);
        spdlog::warn("site {}: poll: {}; asking again in {} s", s.name, e.what(), wait.count() / 1000);
        show_poll_error(s, e.what(), Clock::now() + wait);
        return false;
    }
}

// Says `deploying` for the site's generation and runs the steps; a newer generation or a stop makes
// the run stop at its next step.
Reconciler::Run Reconciler::run_deploy(const SiteRef& site) {
    const std::string name = site->name;
    const uint64_t generation = site->generation;
    const auto started = SteadyClock::now();
    ActualState deploying = site->actual;
    deploying.state = SiteState::deploying;
    deploying.error.clear();
    deploying.retry_at = {};
    store_.report(name, generation, deploying);
    Run run{Deploy(config_, proxy_, known_hosts_, builds_, site, [this, name, generation] {
                if (queue_.stopped()) return true;
                const SiteRef now = store_.site(name);
                return !now || now->generation != generation;
            }),
            generation, {}, 0};
    run.result = run_steps(run.deploy, steps_);
    run.dur_ms = ms_since(started);
    return run;
}

// The site's actual state after the run (live on the new commit, or failed with `STEP: reason`),
// and the deploy log's entry.
Reconciler::Report Reconciler::report_of(const SiteRecord& site, const Run& run) {
    const Deploy& d = run.deploy;
    Report r{site.actual, {Clock::now(), site.name, "", d.commit, site.actual.commit, run.dur_ms, ""}};
    r.next.retry_at = {};
    // A deploy that reused a built release leaves the log of the build that made it.
    if (d.build_log) r.next.build_log = *d.build_log;
    else if (site.field("build").value.empty()) r.next.build_log.clear();
    if (!run.result.ok) {
        r.entry.action = "failed";
        r.next.state = SiteState::failed;
        r.next.error = one_line(run.result.step + ": " + run.result.error);
        if (!run.result.undo_error.empty()) r.next.error += " (and " + one_line(run.result.undo_error) + ")";
        r.entry.error = r.next.error;
        return r;
    }
    r.next.state = SiteState::live;
    r.next.commit = d.commit;
    r.next.domain = site.field("domain").value;
    r.next.path = site.field("path").value;
    r.next.routing = site.field("routing").value;
    r.next.aliases = site.field("aliases").value;
    r.next.auth_ref = site.field("auth_ref").value;
    r.next.error.clear();
    if (certificates_.enabled()) r.next.tls = certificates_.refresh(site.name, split_domains(r.next.domain));
    r.entry.action = d.changed_anything() ? "deployed" : "up-to-date";
    for (const auto& note : d.notes) spdlog::info("site {}: {}", site.name, note);
    r.entry.notes = d.notes;
    return r;
}

// A success clears the site's backoffs; a failure the host caused is run again after its backoff,
// and `status` says when (`retry:`).
void Reconciler::schedule_retry(const std::string& site, const Run& run, ActualState& next) {
    if (run.result.ok) return backoffs_.deploy_succeeded(site);
    const auto wait =
        backoffs_.deploy_failed(site, run.deploy.commit, run.result.step, run.generation, SteadyClock::now());
    if (wait) next.retry_at = Clock::now() + *wait;
}

// Counts the run, records its outcome in the store and the deploy log, notifies, and prunes old
// releases.
void Reconciler::finish(const SiteRecord& site, const Run& run, const Report& report) {
    metrics_.run_done(report.entry.action, run.result.ok ? "" : run.result.step, run.dur_ms);
    // Only once the store holds the outcome: a notified command that reads SITE/status must see
    // what it is told about, not the run before (git-sync #481).
    if (record(site, run.generation, report.next, report.entry)) notify(site, report);
    if (!run.result.ok) {
        spdlog::warn("site {}: deploy of generation {} failed: {}", site.name, run.generation, report.next.error);
        return;
    }
    spdlog::info("site {}: {} {} in {} ms", site.name, report.entry.action, run.deploy.commit.substr(0, 12), run.dur_ms);
    if (run.deploy.switched) prune_releases(run.deploy.paths, config_.keep_releases);
}

bool Reconciler::record(const SiteRecord& before, uint64_t generation, ActualState next, DeployLogEntry entry) {
    log_.append(entry);
    next.log = before.actual.log;
    next.log.push_back(to_site_line(entry));
    if (next.log.size() > kSiteLogLines) next.log.erase(next.log.begin(), next.log.end() - kSiteLogLines);
    const Outcome o = store_.report(before.name, generation, next);
    if (!o.ok()) spdlog::warn("site {}: could not record the outcome: {}", before.name, o.reason);
    return o.ok();
}

// Every failure, every deploy of another commit, and a return to live; a run that leaves a live
// site live on its commit (a write that changed nothing served) tells an operator nothing.
void Reconciler::notify(const SiteRecord& before, const Report& report) {
    const ActualState& was = before.actual;
    const ActualState& now = report.next;
    if (now.state == SiteState::live && was.state == SiteState::live && was.commit == now.commit) return;
    notifications_.send({before.name, std::string(to_string(now.state)), report.entry.commit, report.entry.prev,
                         now.error, store_.host()});
}

// A live site whose branch cannot be checked still serves, but `status` says why it is not
// following: `error: poll: REASON` and when it is asked again, cleared by the next check that gets
// through. A refused write or a failed deploy already showing keeps its place.
void Reconciler::show_poll_error(const SiteRecord& s, const std::string& what, Timestamp retry_at) {
    if (s.actual.state != SiteState::live || s.actual.error_from_write) return;
    const std::string error = what.empty() ? "" : one_line(std::string(kPollErrorPrefix) + what);
    if (error.empty() && !s.actual.error.starts_with(kPollErrorPrefix)) return;
    if (error == s.actual.error && retry_at == s.actual.retry_at) return;
    ActualState next = s.actual;
    next.error = error;
    next.retry_at = retry_at;
    if (const Outcome o = store_.report(s.name, s.actual.generation, next); !o.ok())
        spdlog::warn("site {}: could not record the poll's outcome: {}", s.name, o.reason);
}

// Caddy obtains and renews certificates on its own schedule, so a poll tick looks again even when
// nothing is deployed; the store hears of it only when a line changed.
void Reconciler::refresh_certificates(const std::string& name) {
    const SiteRef s = store_.site(name);
    if (!certificates_.enabled() || !s || s->actual.domain.empty()) return;
    std::vector<std::string> lines = certificates_.refresh(name, split_domains(s->actual.domain));
    if (lines == s->actual.tls) return;
    ActualState next = s->actual;
    next.tls = std::move(lines);
    if (const Outcome o = store_.report(name, s->actual.generation, next); !o.ok())
        spdlog::warn("site {}: could not record its certificates: {}", name, o.reason);
}

void Reconciler::unpublish(const std::string& site, bool remove_data) {
    const auto started = SteadyClock::now();
    DeployLogEntry entry{Clock::now(), site, "removed", "", "", 0, ""};
    // A removal publishes even when the site is not served: after a crash the file may still hold
    // the site (served_ is rebuilt from the store, which no longer has it).
    if (remove_data || proxy_.serves(site)) {
        // The domain leaves the proxy first; only then can its files go.
        const PublishResult r = proxy_.publish({site, std::nullopt});
        if (r.previous) entry.prev = r.previous->commit;
        if (!r.ok) {
            entry.action = "failed";
            entry.error = "remove from proxy: " + (r.step == "reload" ? "reload: " : std::string()) + r.error;
            spdlog::error("site {}: {}; its data stays until a later try succeeds", site, entry.error);
        }
    }
    if (entry.error.empty() && remove_data) {
        const SitePaths paths(config_.data_dir, site);
        std::error_code ec;
        if (stdfs::exists(paths.marker, ec)) {
            entry.error = remove_site_dir(paths);
        } else if (stdfs::exists(paths.dir, ec)) {
            spdlog::warn("site {}: {} was not made by sitesfs; left in place", site, paths.dir.string());
        }
    }
    if (!remove_data && entry.prev.empty()) return;  // an incomplete site that never served: nothing happened
    if (!remove_data) entry.action = entry.error.empty() ? "unpublished" : entry.action;
    entry.dur_ms = ms_since(started);
    log_.append(entry);
    metrics_.run_done(entry.action, entry.error.empty() ? "" : "proxy", entry.dur_ms);
    if (!entry.error.empty()) spdlog::error("site {}: {}", site, entry.error);
    else spdlog::info("site {}: {}", site, entry.action);
}

}  // namespace sitesfs::hooks
