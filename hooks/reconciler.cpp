#include "hooks/reconciler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
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

bool complete(const SiteRecord& s) { return !s.field("repo").value.empty() && !s.field("domain").value.empty(); }

std::vector<std::string> step_names(const std::vector<std::unique_ptr<Step>>& steps) {
    std::vector<std::string> names;
    for (const auto& step : steps) names.emplace_back(step->name());
    return names;
}

}  // namespace

Reconciler::Reconciler(Store& store, HooksConfig config)
    : store_(store),
      config_(std::move(config)),
      proxy_(make_caddy_config(config_.proxy), make_reloader(config_.reload)),
      known_hosts_(config_.known_hosts, config_.host_key_policy, config_.host_key_pins),
      log_(config_.deploy_log),
      certificates_(config_.health.tls_address, config_.health.timeout),
      steps_(deploy_steps()),
      metrics_(step_names(steps_)),
      backoffs_(config_.poll_interval),
      queue_([this](const std::string& site, bool poll) { reconcile(site, poll); },
             [this](double seconds) { metrics_.tick_done(seconds); }) {}

Reconciler::~Reconciler() { stop(); }

void Reconciler::start() {
    StartupRecovery recovery(store_, config_, proxy_);
    recovery.clean_up();
    inbox_->target = this;
    store_.subscribe([inbox = inbox_](const Change& c) {
        if (c.kind == Change::Kind::Actual || c.kind == Change::Kind::Times) return;
        std::lock_guard lock(inbox->mu);
        if (inbox->target) inbox->target->queue_.push(c.site);
    });
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
}

void Reconciler::poll_loop() {
    while (queue_.sleep(config_.poll_interval)) queue_.push_tick(store_.site_names());
}

// Whether a poll tick runs `s` now (see backoff.hpp). Nothing is asked of the remote while a
// backoff runs: a broken site costs one try per backoff period, not one per tick.
bool Reconciler::poll_due(const SiteRecord& s) {
    if (s.actual.generation != s.generation || !settled(s.actual.state)) return true;
    const auto now = SteadyClock::now();
    const auto decision = backoffs_.on_poll(s.name, s.actual.state == SiteState::failed, now);
    if (!decision.retried_step.empty()) metrics_.retried(decision.retried_step);
    if (decision.verdict != SiteBackoffs::PollDecision::ask) return decision.verdict == SiteBackoffs::PollDecision::run;
    if (!s.field("commit").value.empty()) return false;  // a pin follows nothing; its own failure waits for a write
    try {
        GitRepo repo(SitePaths(config_.data_dir, s.name).repo);
        const RemoteAccess access(config_, known_hosts_, s, [this] { return queue_.stopped(); });
        const std::string head = repo.remote_head(access.url(), s.field("branch").value, access.options());
        backoffs_.reached(s.name);
        show_poll_error(s, "", {});
        return head != decision.failed_commit.value_or(s.actual.commit);
    } catch (const std::exception& e) {
        // An unreachable remote leaves the served release alone; it is asked again after a backoff.
        const std::chrono::milliseconds wait = backoffs_.unreachable(s.name, now);
        spdlog::warn("site {}: poll: {}; asking again in {} s", s.name, e.what(), wait.count() / 1000);
        show_poll_error(s, e.what(), Clock::now() + wait);
        return false;
    }
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
    entry.dur_ms = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started).count();
    log_.append(entry);
    metrics_.run_done(entry.action, entry.error.empty() ? "" : "proxy", entry.dur_ms);
    if (!entry.error.empty()) spdlog::error("site {}: {}", site, entry.error);
    else spdlog::info("site {}: {}", site, entry.action);
}

std::string Reconciler::metrics() const {
    return metrics_.runs_text() + proxy_.metrics() + certificates_.metrics() + metrics_.ticks_text();
}

void Reconciler::record(const SiteRecord& before, uint64_t generation, ActualState next, DeployLogEntry entry) {
    log_.append(entry);
    next.log = before.actual.log;
    next.log.push_back(to_site_line(entry));
    if (next.log.size() > kSiteLogLines) next.log.erase(next.log.begin(), next.log.end() - kSiteLogLines);
    if (const Outcome o = store_.report(before.name, generation, next); !o.ok())
        spdlog::warn("site {}: could not record the outcome: {}", before.name, o.reason);
}

void Reconciler::reconcile(const std::string& name, bool poll) {
    const SiteRef site = store_.site(name);
    if (!site || !complete(*site)) backoffs_.forget(name);
    if (!site) {
        certificates_.forget(name);
        return unpublish(name, true);
    }
    if (!complete(*site)) {
        certificates_.forget(name);
        unpublish(name, false);
        if (!site->actual.commit.empty()) {
            // Nothing is served any more; `commit` and `status` must not say otherwise.
            ActualState cleared = site->actual;
            cleared.state = SiteState::none;
            cleared.commit.clear();
            cleared.domain.clear();
            cleared.path.clear();
            cleared.tls.clear();
            cleared.retry_at = {};
            store_.report(name, site->generation, cleared);
        }
        return;
    }
    if (poll && !poll_due(*site)) {
        refresh_certificates(name);
        return;
    }

    const uint64_t generation = site->generation;
    const auto started = SteadyClock::now();
    ActualState deploying = site->actual;
    deploying.state = SiteState::deploying;
    deploying.error.clear();
    deploying.retry_at = {};
    store_.report(name, generation, deploying);

    Deploy d(config_, proxy_, known_hosts_, site, [this, name, generation] {
        if (queue_.stopped()) return true;
        const SiteRef now = store_.site(name);
        return !now || now->generation != generation;
    });
    const RunResult result = run_steps(d, steps_);
    const auto dur = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started).count();
    if (result.superseded) {
        spdlog::info("site {}: generation {} superseded before {}; the newer one runs next", name, generation, result.step);
        return;
    }
    ActualState next = site->actual;
    next.retry_at = {};
    DeployLogEntry entry{Clock::now(), name, "", "", site->actual.commit, dur, ""};
    if (result.ok) {
        next.state = SiteState::live;
        next.commit = d.commit;
        next.domain = site->field("domain").value;
        next.path = site->field("path").value;
        next.error.clear();
        if (certificates_.enabled()) next.tls = certificates_.refresh(name, split_domains(next.domain));
        entry.action = d.changed_anything() ? "deployed" : "up-to-date";
        entry.commit = d.commit;
        for (const auto& note : d.notes) spdlog::info("site {}: {}", name, note);
        entry.notes = d.notes;
    } else {
        next.state = SiteState::failed;
        next.error = one_line(result.step + ": " + result.error);
        if (!result.undo_error.empty()) next.error += " (and " + one_line(result.undo_error) + ")";
        entry.action = "failed";
        entry.commit = d.commit;
        entry.error = next.error;
    }
    if (result.ok) {
        backoffs_.deploy_succeeded(name);
    } else if (const auto wait = backoffs_.deploy_failed(name, d.commit, result.step, generation, SteadyClock::now())) {
        next.retry_at = Clock::now() + *wait;  // a failure the host caused: `retry:` says when
    }
    metrics_.run_done(entry.action, result.ok ? "" : result.step, entry.dur_ms);
    record(*site, generation, next, entry);
    if (result.ok) {
        spdlog::info("site {}: {} {} in {} ms", name, entry.action, d.commit.substr(0, 12), dur);
        if (d.switched) prune_releases(d.paths, config_.keep_releases);
    } else {
        spdlog::warn("site {}: deploy of generation {} failed: {}", name, generation, next.error);
    }
}

}  // namespace sitesfs::hooks
