// One reconcile run of one site, and the steps it is made of.
//
// A run converges a site to the desired state of one generation. Its steps run in order and each
// has one interface, apply / undo: fetch -> stage -> switch -> proxy (render, validate, swap) ->
// reload -> health. When a step fails (or a newer generation supersedes the run), the steps already
// applied are undone in reverse, so the release and proxy config that served before keep serving.
// The reconciler (reconciler.hpp) records the outcome; steps never talk to the store.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "hooks/build.hpp"
#include "hooks/builders.hpp"
#include "hooks/git_repo.hpp"
#include "hooks/notifications.hpp"
#include "hooks/proxy_config.hpp"
#include "hooks/proxy_publisher.hpp"
#include "hooks/reload.hpp"
#include "hooks/site_rules.hpp"
#include "schemas/site_record.hpp"

namespace sitesfs::hooks {

struct HealthConfig {
    bool enabled = true;
    // The loopback listener the health check probes, rendered beside each site block (or, with
    // [proxy] scheme = "http" on the same port, the public listener itself).
    std::string address = "127.0.0.1:2080";
    // The proxy's HTTPS listener, for the certificates in `status`; empty: HTTP only.
    std::string tls_address;
    std::string path = "/";  // what a site whose `check` is empty fetches
    std::chrono::milliseconds timeout{10000};
};

struct HooksConfig {
    std::filesystem::path data_dir = "/var/lib/sites";
    // Named in each site dir's marker, so that a start-up can tell a site removed from this state
    // dir (whose removal a crash cut short) from the data of another state dir.
    std::filesystem::path state_dir;
    std::filesystem::path deploy_log;  // JSON lines; empty: not written
    ValidationPolicy policy;
    // Runs at once. A run mostly waits (the remote, the proxy's batch, the health check), and
    // runs waiting together share one proxy reload, so this is well above the core count.
    unsigned workers = 32;
    std::chrono::milliseconds poll_interval{60000};  // 0: never poll
    unsigned keep_releases = 3;
    TreeLimits limits;
    StreamLimits git;  // [git] connect_timeout, io_timeout
    ProxyOptions proxy;
    ReloadConfig reload;
    HealthConfig health;
    KeyProviders keys;
    std::filesystem::path known_hosts;  // STATE/known_hosts
    HostKeyPolicy host_key_policy = HostKeyPolicy::AcceptNew;
    std::map<std::string, std::string> host_key_pins;  // "host:port" -> "SHA256:..."
    BuildConfig build;  // [build], [builders.NAME] (docs/builds.md)
    NotifyConfig notify;  // [notify]
};

// How to reach a site's remote, or one of its submodules' (`url`; default: the site's repo): the
// fetch URL, and for a site with a deploy key the key (resolved now, wiped when this goes) and the
// ssh:// form of a GitHub https URL. Built in place, used for one git operation, then dropped;
// never copied or moved (options point into it).
class RemoteAccess {
public:
    RemoteAccess(const HooksConfig& config, KnownHosts& hosts, const SiteRecord& site, std::function<bool()> cancelled,
                 std::optional<std::string> url = std::nullopt);
    RemoteAccess(const RemoteAccess&) = delete;
    RemoteAccess& operator=(const RemoteAccess&) = delete;
    const std::string& url() const { return url_; }
    const RemoteOptions& options() const { return options_; }

private:
    std::string url_;
    SecretBuffer key_;
    RemoteOptions options_;
};

// With a deploy key, https://github.com/o/r is fetched as ssh://git@github.com/o/r.git (a deploy
// key is an SSH key); any other URL is returned unchanged.
std::string url_for_deploy_key(const std::string& url);
// The URL a site's repo is fetched from (what relative submodule URLs are resolved against).
std::string site_fetch_url(const SiteRecord& site);

// A step failed; what() is the reason a person reads in `status` after "STEP: ".
struct StepError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The paths of one site under the data dir. sitesfs only ever deletes a site dir that holds its
// marker file (after renaming it to its tombstone), so a directory it did not create is never
// removed. Names starting with '.' are sitesfs's own: no site or commit has one.
struct SitePaths {
    static constexpr std::string_view kTombstoneSuffix = ".removing";
    explicit SitePaths(const std::filesystem::path& data_dir, const std::string& site);
    std::filesystem::path dir, repo, releases, current, marker;
    std::filesystem::path next_current;  // the link the switch renames over `current`
    std::filesystem::path tombstone;     // DATA/.NAME.removing: the site dir while it is deleted
    // A release by its name (release_name: the commit, with a suffix for what built it).
    std::filesystem::path release(const std::string& name) const { return releases / name; }
    // Where a release is written before it appears under its name.
    std::filesystem::path staging(const std::string& name) const { return releases / (".stage-" + name); }
    // Where a build of it runs (BuildDir).
    std::filesystem::path build_dir(const std::string& name) const { return releases / (".build-" + name); }
    // Whether the marker says the site dir belongs to the sites of `state_dir`.
    bool marked_for(const std::filesystem::path& state_dir) const;
};

struct Deploy {
    const HooksConfig& config;
    ProxyPublisher& proxy;
    KnownHosts& known_hosts;
    BuildSlots& builds;
    SiteRef site;            // the desired state this run converges to
    SitePaths paths;
    std::function<bool()> superseded;  // a newer generation is waiting: stop at the next step

    // Filled in by the steps as they go.
    std::unique_ptr<GitRepo> repo;
    std::string commit;                      // fetch: the commit to serve (40 hex)
    std::string release;                     // build: the release's name (release_name)
    // build: the build's scratch dir, removed with this run, after its outcome is recorded: the
    // site goes live without waiting for thousands of files to be deleted.
    std::unique_ptr<BuildDir> build_dir;
    std::optional<std::string> build_log;    // build: what `buildlog` says now, when a build ran
    std::vector<std::string> notes;          // stage: entries left out of the release, etc.
    ServedTree tree;                         // stage: the served tree's rules and 404 page
    bool staged = false;                     // stage: this run wrote the release
    std::optional<std::string> previous_link;  // switch: what `current` pointed at before
    bool switched = false;
    ProxySite entry;                         // proxy: how this site is served from now on
    std::optional<ProxySite> previous_entry; // proxy: how it was served before
    bool proxy_changed = false;              // proxy: the entry went live (and was reloaded)
    std::string reload_error;                // proxy: the batch's reload failed (the reload step reports it)

    Deploy(const HooksConfig& c, ProxyPublisher& p, KnownHosts& k, BuildSlots& b, SiteRef s, std::function<bool()> stop);
    bool changed_anything() const { return switched || proxy_changed; }
};

class Step {
public:
    virtual ~Step() = default;
    virtual const char* name() const = 0;
    virtual void apply(Deploy& d) = 0;  // throws StepError (or GitError, ProxyError, ReloadError)
    virtual void undo(Deploy&) {}
};

// The steps of a deploy, in order.
std::vector<std::unique_ptr<Step>> deploy_steps();

// The outcome of one run: ok, or the failed step and why.
struct RunResult {
    bool ok = false;
    bool superseded = false;
    std::string step;
    std::string error;
    std::string undo_error;  // an undo that failed too (logged; the previous state may be incomplete)
};

// Runs the steps in order, undoing the applied ones in reverse on failure or supersession.
RunResult run_steps(Deploy& d, const std::vector<std::unique_ptr<Step>>& steps);

// Deletes old releases: keeps the newest `keep` (by mtime), never the one `current` points at, and
// removes what interrupted runs left (remove_interrupted_work).
void prune_releases(const SitePaths& paths, unsigned keep);

// Deletes a release. It is renamed to a dot name first: a kill during the deletion must not leave
// half a tree under its name, which a later deploy of that commit would serve as it is.
void discard_release(const SitePaths& paths, const std::string& name);

// Deletes the site dir (it must hold the marker): renamed to its tombstone, then deleted, so a
// kill leaves the whole dir or a tombstone that the next start removes. Returns an error text.
std::string remove_site_dir(const SitePaths& paths);

// Removes what a run killed half-way leaves in a site dir: the switch's `.current.tmp`, the
// build's, stage's and discard's `releases/.*`, and libgit2's lock and temp files in repo.git. Only while no run holds the site (at start-up, or by the run itself).
// Returns what it removed.
std::vector<std::filesystem::path> remove_interrupted_work(const SitePaths& paths);


}  // namespace sitesfs::hooks
