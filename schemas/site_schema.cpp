#include "schemas/site_schema.hpp"

#include <algorithm>
#include <array>
#include <ctime>
#include <stdexcept>

namespace sitesfs {

namespace {

std::string desired(const SiteRecord& s, FieldName name) { return s.field(name).value; }
Timestamp desired_changed(const SiteRecord& s, FieldName name) {
    const auto t = s.field(name).changed;
    return t == Timestamp{} ? s.created : t;
}

// What the site follows: a pinned commit, a branch, or the remote's default branch.
std::string desired_ref(const SiteRecord& s) {
    if (auto pin = desired(s, "commit"); !pin.empty()) return "commit " + pin;
    if (auto branch = desired(s, "branch"); !branch.empty()) return "branch " + branch;
    return "default-branch";
}

// One item a line, so line-based tools (grep -qx, lineinfile, sort) see one item each.
std::string list_lines(const SiteRecord& s, FieldName name) {
    std::string items = desired(s, name);
    std::replace(items.begin(), items.end(), ' ', '\n');
    return items;
}

// The commit the site serves as seen from here: this host's; on a host that serves none of it
// (not placed here, or not deployed yet) in a store many hosts share, the first live host's.
std::string shown_commit(const SiteRecord& s) {
    if (!s.actual.commit.empty()) return s.actual.commit;
    for (const auto& r : s.reports)
        if (host_state(s, r) == SiteState::live) return r.actual.commit;
    return {};
}

std::string render_status(const SiteRecord& s) {
    std::string out;
    out += "state: " + std::string(to_string(site_state(s))) + "\n";
    for (const auto& r : s.reports) {
        out += "host: " + r.host + " " + std::string(to_string(host_state(s, r)));
        if (!r.actual.commit.empty()) out += " " + r.actual.commit;
        out += "\n";
    }
    out += "commit: " + shown_commit(s) + "\n";
    out += "desired: " + desired_ref(s) + "\n";
    const std::string key = desired(s, "deploy_key_ref");
    out += "key: " + (key.empty() ? std::string("none") : key) + "\n";
    out += "generation: " + std::to_string(s.generation) + "\n";
    out += "updated: " + rfc3339(s.actual.updated == Timestamp{} ? s.created : s.actual.updated) + "\n";
    out += "retry: " + rfc3339(s.actual.retry_at) + "\n";
    for (const auto& line : s.actual.tls) out += "tls: " + line + "\n";
    if (!s.store_note.empty()) out += "store: " + s.store_note + "\n";
    out += "error: " + s.actual.error;
    return out;
}

// Why the site failed: this host's error, or with host reports the first failed host's, named.
std::string failure(const SiteRecord& s) {
    if (s.reports.empty()) return s.actual.error;
    for (const auto& r : s.reports)
        if (host_state(s, r) == SiteState::failed) return r.host + ": " + r.actual.error;
    return {};
}

// One line a script can test with `read state rest`: the state first, then the commit, then why.
std::string render_wait(const SiteRecord& s) {
    const SiteState state = site_state(s);
    std::string out(to_string(state));
    if (const std::string commit = shown_commit(s); !commit.empty()) out += " " + commit;
    if (state == SiteState::failed) out += " " + failure(s);
    return out;
}

bool report_settled(const ActualState& actual, SiteState state, uint64_t generation) {
    return actual.generation >= generation && settled(state);
}

bool wait_settled(const SiteRecord& s, uint64_t generation) {
    const SiteState state = site_state(s);
    if (state == SiteState::incomplete) return true;  // nothing will be deployed until repo and domain are set
    if (s.reports.empty()) return report_settled(s.actual, state, generation);
    // A gone host will not report again; waiting for it would wait for the timeout.
    return std::all_of(s.reports.begin(), s.reports.end(), [&](const HostReport& r) {
        const SiteState host = host_state(s, r);
        return host == SiteState::gone || report_settled(r.actual, host, generation);
    });
}

std::string render_log(const SiteRecord& s) {
    std::string out;
    for (const auto& line : s.actual.log) out += (out.empty() ? "" : "\n") + line;
    return out;
}

Timestamp status_changed(const SiteRecord& s) {
    return s.actual.updated == Timestamp{} ? s.created : s.actual.updated;
}

#define SITESFS_DESIRED(NAME)                                                  \
    [](const SiteRecord& s) { return desired(s, NAME); },                     \
    [](const SiteRecord& s) { return desired_changed(s, NAME); }

const std::array kFields{
    FieldSpec{"repo", Access::ReadWrite, ChangedBy::Writes, check_repo, SITESFS_DESIRED("repo"),
              "git URL to deploy: https://, ssh://, git@host:owner/repo.git or GitHub owner/name"},
    FieldSpec{"domain", Access::ReadWrite, ChangedBy::Writes, check_domain,
              [](const SiteRecord& s) { return list_lines(s, "domain"); },
              [](const SiteRecord& s) { return desired_changed(s, "domain"); },
              "hostnames that serve the site, one per line (any whitespace separates them on write; a "
              "name already listed counts once); *. only as the whole first label"},
    FieldSpec{"branch", Access::ReadWrite, ChangedBy::Writes, check_branch, SITESFS_DESIRED("branch"),
              "branch to follow; empty follows the remote's default branch"},
    FieldSpec{"path", Access::ReadWrite, ChangedBy::Writes, check_path, SITESFS_DESIRED("path"),
              "subdirectory of the repo to serve; empty serves the whole tree"},
    FieldSpec{"deploy_key_ref", Access::ReadWrite, ChangedBy::Writes, check_deploy_key_ref,
              SITESFS_DESIRED("deploy_key_ref"),
              "PROVIDER:NAME of the deploy key for a private repo; empty for public repos"},
    // Pinned, the file's time is the pin's (written or set), so that rsync and cp -a can carry
    // it; following a branch, it is when the served commit last changed.
    FieldSpec{"commit", Access::ReadWrite, ChangedBy::Both, check_commit,
              [](const SiteRecord& s) { return s.actual.commit; },
              [](const SiteRecord& s) {
                  if (!desired(s, "commit").empty()) return desired_changed(s, "commit");
                  return s.actual.changed == Timestamp{} ? s.created : s.actual.changed;
              },
              "reads the commit served; write 7-40 hex to pin a commit, empty to follow the branch again"},
    FieldSpec{"check", Access::ReadWrite, ChangedBy::Writes, check_health_check, SITESFS_DESIRED("check"),
              "the deploy's health check: PATH, then optionally TEXT the body must contain (`/en/ Welcome`); a "
              "deploy goes live only when GET PATH answers 2xx with the new commit, after the site's own redirects "
              "on its domains; empty: [health] path (default /)"},
    FieldSpec{"hosts", Access::ReadWrite, ChangedBy::Writes, check_hosts,
              [](const SiteRecord& s) { return list_lines(s, "hosts"); },
              [](const SiteRecord& s) { return desired_changed(s, "hosts"); },
              "where the site is deployed, one per line: host names (as the host calls itself, lowercased) and "
              "`label:NAME` for every host with that label in its config; empty: every host. Any whitespace "
              "separates items on write; kept in the order written, an item already listed counts once; at most 64 items"},
    FieldSpec{"routing", Access::ReadWrite, ChangedBy::Writes, check_routing, SITESFS_DESIRED("routing"),
              "how a request path finds its file: `static` (empty means static: the path, then PATH.html, then the "
              "directory PATH/ (a path without its slash is redirected to it), else the release's 404.html with status "
              "404) or `spa` (a path without a file extension that matches no file gets /index.html with 200; a "
              "missing path with an extension gets 404). docs/serving.md"},
    FieldSpec{"aliases", Access::ReadWrite, ChangedBy::Writes, check_aliases, SITESFS_DESIRED("aliases"),
              "what the names after the first in `domain` do: `serve` the site (empty means serve) or `redirect`, "
              "answering 308 to the same path and query on the first name"},
    FieldSpec{"auth_ref", Access::ReadWrite, ChangedBy::Writes, check_auth_ref, SITESFS_DESIRED("auth_ref"),
              "PROVIDER:NAME (the deploy-key providers of [keys]) of `USER BCRYPT-HASH` lines: HTTP basic auth on the "
              "whole site; empty: anyone may read it. The hashes are read at each deploy and never stored by sitesfs"},
    FieldSpec{"build", Access::ReadWrite, ChangedBy::Writes, check_build, SITESFS_DESIRED("build"),
              "the builder ([builders.NAME] in the config) that turns the commit into the release, sandboxed "
              "(docs/builds.md); a write naming a builder this host's config lacks is refused; empty: the tree is "
              "served as committed"},
    FieldSpec{"submodules", Access::ReadWrite, ChangedBy::Writes, check_submodules, SITESFS_DESIRED("submodules"),
              "`recursive`: the release (and the build's tree) holds the commit's submodules, fetched with the site's "
              "deploy key and host-key policy, each URL checked as `repo` is; `none` (empty means none) leaves them out"},
    // Write-only: a request is an act, not a value; no value of it is stored, so there is nothing
    // to read back, and an archive of the site never carries one.
    FieldSpec{"ctl", Access::WriteOnly, ChangedBy::Writes, check_ctl, [](const SiteRecord&) { return std::string(); },
              [](const SiteRecord& s) { return s.created; },
              "write-only, one request a line: `refresh` asks the remote now, whatever the poll's backoff, and "
              "deploys when the branch moved, on every host the site is placed on; `redeploy` runs the whole deploy "
              "again now for what the settings name, a failed one included: a new generation of the same settings, "
              "so every host runs it and `wait` waits for it. Any other word is refused with EINVAL and the reason "
              "in `status`"},
    FieldSpec{"status", Access::ReadOnly, ChangedBy::Both, nullptr, render_status, status_changed,
              "key: value lines: state, then with a store many hosts share one `host: NAME STATE COMMIT` line per "
              "host the site is placed on (state is then the worst of theirs: live only when every one is), commit "
              "(this host's; on a host that serves none of it, the first live host's), desired, key (the deploy "
              "key's PROVIDER:NAME or none), generation, updated, "
              "retry (when a failure the host caused is tried again, or empty), one tls line per domain in HTTPS modes "
              "(`tls: DOMAIN ISSUER until DATE` or `tls: DOMAIN none yet`), with a shared store a `store:` line when "
              "etcd is out of reach or a write's outcome is being settled (docs/cluster.md), error"},
    FieldSpec{"log", Access::ReadOnly, ChangedBy::Both, nullptr, render_log, status_changed,
              "the site's recent deploys, oldest first: time, action, commit, previous commit, duration, error"},
    FieldSpec{"buildlog", Access::ReadOnly, ChangedBy::Both, nullptr,
              [](const SiteRecord& s) { return s.actual.build_log; }, status_changed,
              "the output of the last build this host ran for the site (stdout and stderr interleaved, the last "
              "16 KiB), ending in a `sitesfs:` line with the builder, the release it built (the commit and a hash of "
              "the builder) and the outcome; empty without `build`"},
    FieldSpec{"wait", Access::ReadOnly, ChangedBy::Both, nullptr, render_wait, status_changed,
              "read-write mounts only: a read waits until the site settles "
              "for the generation it had at open (on every host it is placed on that is not gone), then gives "
              "`live COMMIT` or `failed COMMIT STEP: REASON` (`failed COMMIT HOST: STEP: REASON` with many hosts; "
              "or `incomplete`); fails with ETIMEDOUT after [filesystem] wait_timeout",
              wait_settled},
};

#undef SITESFS_DESIRED

}  // namespace

size_t desired_field_index(std::string_view name) {
    for (size_t i = 0; i < std::size(kDesiredFields); ++i)
        if (kDesiredFields[i] == name) return i;
    throw std::invalid_argument("'" + std::string(name) + "' is not a read-write field");
}

// The list's own spelling, which outlives the caller's string.
FieldName FieldName::known(std::string_view name) { return FieldName(kDesiredFields[desired_field_index(name)], Checked{}); }

std::span<const FieldSpec> site_fields() { return kFields; }

std::string_view to_string(Access access) {
    switch (access) {
        case Access::ReadWrite: return "read-write";
        case Access::ReadOnly: return "read-only";
        case Access::WriteOnly: return "write-only";
    }
    return "";
}

const FieldSpec* find_field(std::string_view name) {
    for (const auto& f : kFields)
        if (f.name == name) return &f;
    return nullptr;
}

namespace {

// The one-host rule: what `actual` reported, pending before its first report or when it reported
// on an older generation.
SiteState reported_state(const SiteRecord& s, const ActualState& actual) {
    if (actual.state == SiteState::none) return SiteState::pending;
    // A settled report about an older generation says nothing about the newest desired state.
    if (settled(actual.state) && actual.generation < s.generation) return SiteState::pending;
    return actual.state;
}

bool incomplete(const SiteRecord& s) { return s.field("repo").value.empty() || s.field("domain").value.empty(); }

}  // namespace

SiteState site_state(const SiteRecord& s) {
    if (incomplete(s)) return SiteState::incomplete;
    if (s.reports.empty()) return reported_state(s, s.actual);
    // What needs a person first: a failure, then work under way, then a host that went away.
    for (const SiteState worst : {SiteState::failed, SiteState::deploying, SiteState::pending, SiteState::gone})
        for (const auto& r : s.reports)
            if (host_state(s, r) == worst) return worst;
    return SiteState::live;
}

SiteState host_state(const SiteRecord& s, const HostReport& r) {
    if (incomplete(s)) return SiteState::incomplete;
    return r.alive ? reported_state(s, r.actual) : SiteState::gone;
}

bool placed_on(const SiteRecord& s, std::string_view host, std::span<const std::string> labels) {
    const std::string& hosts = s.field("hosts").value;
    if (hosts.empty()) return true;
    // Stored items are lowercase; a host may call itself MyHost.
    const std::string name = ascii_lower(host);
    for (const auto& item : split_hosts(hosts)) {
        if (item == name) return true;
        if (!item.starts_with(kHostLabelPrefix)) continue;
        const std::string_view label = std::string_view(item).substr(kHostLabelPrefix.size());
        if (std::any_of(labels.begin(), labels.end(), [&](const std::string& l) { return ascii_lower(l) == label; }))
            return true;
    }
    return false;
}

bool settled(SiteState state) { return state == SiteState::live || state == SiteState::failed; }

namespace {

constexpr std::pair<SiteState, std::string_view> kStateNames[] = {
    {SiteState::none, ""},
    {SiteState::incomplete, "incomplete"},
    {SiteState::pending, "pending"},
    {SiteState::deploying, "deploying"},
    {SiteState::live, "live"},
    {SiteState::failed, "failed"},
    {SiteState::gone, "gone"},
};

}  // namespace

std::string_view to_string(SiteState state) {
    for (const auto& [s, name] : kStateNames)
        if (s == state) return name;
    return "";
}

std::optional<SiteState> parse_site_state(std::string_view text) {
    for (const auto& [s, name] : kStateNames)
        if (name == text) return s;
    return std::nullopt;
}

std::string_view to_string(SiteRequest request) {
    return request == SiteRequest::redeploy ? "redeploy" : "refresh";
}

std::optional<SiteRequest> parse_site_request(std::string_view text) {
    for (const SiteRequest r : {SiteRequest::refresh, SiteRequest::redeploy})
        if (to_string(r) == text) return r;
    return std::nullopt;
}

std::string rfc3339(Timestamp t) {
    if (t == Timestamp{}) return {};
    const std::time_t secs = Clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string fields_markdown() {
    std::string out =
        "<!-- Generated from schemas/site_schema.cpp by `cmake --build build -t fields-doc`; do not edit. -->\n"
        "# Site files\n\n"
        "Every directory `/sites/NAME` holds these files. Reads return the value and one newline. `ls` lists "
        "the read-write files, the settings a copy or an archive of the site carries; the read-only reports "
        "are opened by name (`cat /sites/blog/status`, `grep state: /sites/*/status`).\n\n"
        "| file | access | what it holds |\n"
        "| --- | --- | --- |\n";
    for (const auto& f : kFields) {
        out += "| `" + std::string(f.name) + "` | " + std::string(to_string(f.access)) +
               " | " + std::string(f.help) + " |\n";
    }
    return out;
}

}  // namespace sitesfs
