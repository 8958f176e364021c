// The deploy steps, in the order they run. Each is small: what it changes, and how to put it back.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "hooks/deploy.hpp"
#include "common/files.hpp"
#include "hooks/http_probe.hpp"
#include "hooks/served_site.hpp"
#include "hooks/submodules.hpp"
#include "schemas/validators.hpp"

namespace sitesfs::hooks {

namespace stdfs = std::filesystem;

namespace {

// How much of a server-given path or Location a health error quotes.
constexpr size_t kQuotedBytes = 200;

std::string short_id(const std::string& commit) { return commit.substr(0, 12); }

// The site's dir under the data dir, made on first deploy with a marker saying sitesfs owns it
// for the sites of `state_dir`. An empty dir without the marker is taken over: a kill between the
// mkdir and the marker leaves one, and it holds nothing of anybody's.
void ensure_site_dir(const SitePaths& p, const stdfs::path& state_dir) {
    std::error_code ec;
    if (stdfs::exists(p.marker, ec)) return;
    if (stdfs::exists(p.dir, ec) && !stdfs::is_empty(p.dir, ec))
        throw StepError(p.dir.string() + " exists but was not made by sitesfs (it has no " +
                        p.marker.filename().string() + "); move it away or use another data_dir");
    // Caddy's user walks data_dir/NAME/current: the dirs sitesfs makes get exact modes, whatever
    // the daemon's umask (a data_dir the operator made keeps theirs).
    if (stdfs::create_directories(p.dir.parent_path(), ec) && ::chmod(p.dir.parent_path().c_str(), 0755) != 0)
        throw StepError("chmod 0755 " + p.dir.parent_path().string() + ": " + strerror(errno));
    if (::mkdir(p.dir.c_str(), 0755) != 0 && errno != EEXIST)
        throw StepError("mkdir " + p.dir.string() + ": " + strerror(errno));
    if (::chmod(p.dir.c_str(), 0755) != 0) throw StepError("chmod 0755 " + p.dir.string() + ": " + strerror(errno));
    try {
        replace_file(p.marker, state_dir.string() + "\n", 0644);
    } catch (const FileError& e) {
        throw StepError(e.what());
    }
}

// Points `current` at `target` (relative to the site dir) with a new link renamed over the old.
void point_current(const SitePaths& p, const std::string& target) {
    const stdfs::path& tmp = p.next_current;
    ::unlink(tmp.c_str());
    if (::symlink(target.c_str(), tmp.c_str()) != 0) throw StepError("symlink " + tmp.string() + ": " + strerror(errno));
    if (::rename(tmp.c_str(), p.current.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw StepError("rename " + tmp.string() + ": " + strerror(err));
    }
    fsync_dir(p.dir);
}

void ensure_releases_dir(const SitePaths& p) {
    std::error_code ec;
    if (stdfs::create_directories(p.releases, ec) && ::chmod(p.releases.c_str(), 0755) != 0)
        throw StepError("chmod 0755 " + p.releases.string() + ": " + strerror(errno));
}

std::optional<std::string> link_target(const stdfs::path& link) {
    std::error_code ec;
    auto target = stdfs::read_symlink(link, ec);
    if (ec) return std::nullopt;
    return target.string();
}

Submodules submodules(const Deploy& d) {
    return d.site->field("submodules").value == "recursive" ? Submodules::Recursive : Submodules::Skip;
}

class Fetch : public Step {
public:
    const char* name() const override { return "fetch"; }
    void apply(Deploy& d) override {
        ensure_site_dir(d.paths, d.config.state_dir);
        d.repo = std::make_unique<GitRepo>(d.paths.repo);
        fetch_commit(d);
        // Each submodule URL is checked as `repo` is and reached with the site's key and host-key
        // policy; commits already here need no network (a rollback).
        if (submodules(d) == Submodules::Recursive)
            fetch_submodules(*d.repo, d.commit, site_fetch_url(*d.site),
                             d.config.policy, [&](const std::string& url, const std::function<void(const RemoteOptions&)>& fetch) {
                                 const RemoteAccess module(d.config, d.known_hosts, *d.site, d.superseded, url);
                                 fetch(module.options());
                             });
    }

private:
    static void fetch_commit(Deploy& d) {
        const std::string branch = d.site->field("branch").value;
        const std::string pin = d.site->field("commit").value;
        // A pin that is already here (a rollback to a kept release) needs no network and no key.
        if (!pin.empty()) {
            d.commit = d.repo->find_commit(pin);
            if (!d.commit.empty()) return;
        }
        const RemoteAccess access(d.config, d.known_hosts, *d.site, d.superseded);
        const std::string& url = access.url();
        const RemoteOptions& remote = access.options();
        const std::string shown_branch = branch.empty() ? "the default branch" : "branch '" + branch + "'";
        if (pin.empty()) {
            d.commit = d.repo->fetch_branch(url, branch, remote);
            return;
        }
        const std::string head = d.repo->fetch_branch(url, branch, remote);
        d.commit = d.repo->find_commit(pin);
        if (d.commit.empty() && pin.size() == 40) {
            try {
                d.commit = d.repo->fetch_commit(url, pin, remote);
            } catch (const NoSuchCommitError&) {
                throw StepError("commit " + pin + " is not in " + url + ": fetched " + shown_branch + " (at " +
                                short_id(head) + ") and asked the server for the commit by id; it has no such commit");
            }
        }
        if (d.commit.empty())
            throw StepError("commit " + pin + " is not on " + shown_branch + " of " + url +
                            (pin.size() < 40 ? " (write all 40 hex digits to fetch it by id)" : ""));
    }
};

// Runs the site's builder on the commit's tree, sandboxed (docs/builds.md); the stage step makes
// the release of its output. A release built before (kept for rollback) is not built again.
class Build : public Step {
public:
    const char* name() const override { return "build"; }
    void apply(Deploy& d) override {
        const std::string& builder_name = d.site->field("build").value;
        const auto release = release_name(d.commit, *d.site, d.config.build);
        if (!release)
            throw StepError("no builder '" + builder_name + "' in this host's config: add [builders." + builder_name +
                            "] to it, or write another builder (or nothing) to `build`");
        d.release = *release;
        std::error_code ec;
        if (builder_name.empty() || stdfs::is_directory(d.paths.release(d.release), ec)) return;
        const Builder& builder = d.config.build.builders.find(builder_name)->second;
        ensure_releases_dir(d.paths);
        std::vector<std::string> tree_notes;
        try {
            // Runs of one site never overlap, so DIR/SITE is this run's alone.
            const BuildConfig& build = d.config.build;
            if (!build.dir.empty()) ensure_build_root(build.dir);
            d.build_dir = std::make_unique<BuildDir>(build.dir.empty() ? d.paths.build_dir(d.release) : build.dir / d.site->name,
                                                     build.uid.value_or(0), build.gid);
            tree_notes = d.repo->write_tree(d.commit, d.build_dir->src(), d.config.limits, submodules(d)).skipped;
            d.build_dir->hand_over();
        } catch (const ReleaseError& e) {
            throw StepError(e.what());
        }
        const auto slot = d.builds.acquire(d.superseded);
        if (!slot) throw StepError("superseded while waiting for a free build slot ([build] jobs)");
        const auto started = std::chrono::steady_clock::now();
        const SandboxResult result = run_build(builder, d.config.build, *d.build_dir, d.superseded);
        d.build_log = build_log_text(builder_name, d.release, result,
                                     std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started));
        // A link in git reaches the build as a file holding its text: said, in case the build trips on it.
        add_build_notes(*d.build_log, "in the tree the build got", tree_notes);
        if (!result.ok()) throw StepError(result.summary());
    }
};

class Stage : public Step {
public:
    const char* name() const override { return "stage"; }
    void apply(Deploy& d) override {
        const stdfs::path release = d.paths.release(d.release);
        std::error_code ec;
        if (!stdfs::is_directory(release, ec)) {
            ensure_releases_dir(d.paths);
            const stdfs::path staging = d.paths.staging(d.release);
            stdfs::remove_all(staging, ec);
            try {
                const TreeReport report = d.build_dir ? copy_build_output(d.build_dir->out(), staging, d.config.limits)
                                                      : d.repo->write_tree(d.commit, staging, d.config.limits, submodules(d));
                if (d.build_log) add_build_notes(*d.build_log, "left out of the release", report.skipped);
                d.notes.insert(d.notes.end(), report.skipped.begin(), report.skipped.end());
                // Readers only ever see a release whole: it appears under its name after its bytes are on disk.
                const int fd = ::open(staging.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd >= 0) {
                    ::syncfs(fd);
                    ::close(fd);
                }
                if (::rename(staging.c_str(), release.c_str()) != 0)
                    throw StepError("rename " + staging.string() + ": " + strerror(errno));
                fsync_dir(d.paths.releases);
            } catch (...) {
                stdfs::remove_all(staging, ec);
                throw;
            }
            d.staged = true;
        }
        const std::string path = d.site->field("path").value;
        const stdfs::path served = path.empty() ? release : release / path;
        if (!path.empty()) {
            struct stat st{};
            // lstat: a release holds no links, but a path must never lead through one anyway.
            if (::lstat(served.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
                throw StepError("path '" + path + "' is not a directory in commit " + short_id(d.commit));
        }
        try {
            d.tree = read_served_tree(served.string());
        } catch (const RulesError& e) {
            throw StepError(e.what());
        }
    }
    void undo(Deploy& d) override {
        // A release this run made and never served is dropped; one that served before stays for rollback.
        if (!d.staged || d.switched) return;
        discard_release(d.paths, d.release);
    }
};

class Switch : public Step {
public:
    const char* name() const override { return "switch"; }
    void apply(Deploy& d) override {
        const std::string target = "releases/" + d.release;
        d.previous_link = link_target(d.paths.current);
        if (d.previous_link == target) return;
        point_current(d.paths, target);
        d.switched = true;
    }
    void undo(Deploy& d) override {
        if (!d.switched) return;
        if (d.previous_link) {
            point_current(d.paths, *d.previous_link);
        } else {
            ::unlink(d.paths.current.c_str());
            fsync_dir(d.paths.dir);
        }
        d.switched = false;
    }
};

// Proxy and reload are published by group commit with the runs that reach this step at the same
// time (proxy_publisher.hpp): the publisher reloads, and the reload step reports its verdict.
class Proxy : public Step {
public:
    const char* name() const override { return "proxy"; }
    void apply(Deploy& d) override {
        const ServedValues values = desired_serving(*d.site);
        std::vector<BasicAuthUser> users;
        if (!values.auth_ref.empty()) {
            try {
                users = auth_users(d.config.keys, values.auth_ref);
            } catch (const KeyError& e) {
                throw StepError(e.what());
            }
        }
        d.entry = served_site(d.site->name, values, d.paths, d.commit, d.tree, std::move(users));
        const PublishResult r = d.proxy.publish({d.site->name, d.entry});
        d.previous_entry = r.previous;
        if (!r.ok && r.step == "proxy") throw StepError(r.error);
        // A failed reload was already undone by the publisher (the previous file is back); its
        // error says whether the previous config is surely in force.
        if (!r.ok) d.reload_error = r.error;
        d.proxy_changed = r.ok && r.changed;
    }
    void undo(Deploy& d) override {
        if (!d.proxy_changed) return;
        const PublishResult r = d.proxy.publish({d.site->name, d.previous_entry});
        if (!r.ok) throw StepError(r.step + ": " + r.error);
        d.proxy_changed = false;
    }
};

class Reload : public Step {
public:
    const char* name() const override { return "reload"; }
    void apply(Deploy& d) override {
        if (!d.reload_error.empty()) throw StepError(d.reload_error);
    }
};

// The release must answer as a visitor would see it: through the site's own block of the proxy
// config, 2xx after the redirects the site itself makes on its domains, with the new commit's
// X-Deployed-Commit and, when `check` names one, the text in its body. The probe goes to the
// loopback health listener rendered beside each site (docs/operations.md, "Health checks"), so
// neither the scheme upgrade nor a certificate Caddy has yet to obtain stands in the way.
class Health : public Step {
public:
    const char* name() const override { return "health"; }
    void apply(Deploy& d) override {
        const HealthConfig& h = d.config.health;
        if (!h.enabled || !d.changed_anything() || d.entry.domains.empty()) return;
        const HealthCheck check = split_health_check(d.site->field("check").value);
        Target at{probe_name(d.entry.domains.front()), check.path.empty() ? h.path : check.path};
        const auto deadline = std::chrono::steady_clock::now() + h.timeout;
        std::string first;  // where the redirects began, for the message
        for (int hop = 0;; ++hop) {
            // A redirect's path came from the server: quoted, and cut to a line's length.
            const std::string what = "GET http://" + at.host + printable_prefix(at.path, kQuotedBytes) +
                                     (first.empty() ? "" : " (redirected from " + first + ")") + " via " + h.address;
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            const ProbeResult r = http_get(h.address, at.host, at.path, std::max(left, std::chrono::milliseconds(1)));
            if (!r.error.empty()) throw StepError(what + ": " + r.error);
            if (r.status >= 300 && r.status < 400) {
                const auto location = r.headers.find("location");
                const std::string to = location == r.headers.end() ? "" : location->second;
                const auto next = same_site_target(to, at, d.entry.domains);
                if (!next)
                    throw StepError(what + " answered " + std::to_string(r.status) + " to " +
                                    (to.empty() ? "nowhere" : "'" + printable_prefix(to, kQuotedBytes) + "'") +
                                    ", off the site's domains (expected 2xx)");
                if (hop == kMaxRedirects)
                    throw StepError(what + " still redirects after " + std::to_string(kMaxRedirects) + " redirects");
                if (first.empty()) first = "http://" + at.host + printable_prefix(at.path, kQuotedBytes);
                at = *next;
                continue;
            }
            // A site behind basic auth answers the probe, which has no password, 401; what it
            // can still show is that the new commit answers.
            const bool locked = !d.entry.users.empty() && r.status == 401;
            if (!locked && (r.status < 200 || r.status >= 300))
                throw StepError(what + " answered " + std::to_string(r.status) + " (expected 2xx" +
                                (d.entry.users.empty() ? "" : ", or 401 behind auth_ref") + ")");
            const auto served = r.headers.find("x-deployed-commit");
            if (served == r.headers.end())
                throw StepError(what + " answered without X-Deployed-Commit: another server answers on " + h.address);
            if (served->second != d.commit)
                throw StepError(what + " still serves commit " + short_id(served->second) + ", not " + short_id(d.commit));
            if (!locked && !check.text.empty() && r.body.find(check.text) == std::string::npos)
                throw StepError(what + " answered " + std::to_string(r.status) + " without \"" + check.text +
                                "\" in the first " + std::to_string(kMaxProbeBody / 1024) + " KiB of its body");
            return;
        }
    }

private:
    static constexpr int kMaxRedirects = 5;
};

}  // namespace

std::vector<std::unique_ptr<Step>> deploy_steps() {
    std::vector<std::unique_ptr<Step>> steps;
    steps.push_back(std::make_unique<Fetch>());
    steps.push_back(std::make_unique<Build>());
    steps.push_back(std::make_unique<Stage>());
    steps.push_back(std::make_unique<Switch>());
    steps.push_back(std::make_unique<Proxy>());
    steps.push_back(std::make_unique<Reload>());
    steps.push_back(std::make_unique<Health>());
    return steps;
}

}  // namespace sitesfs::hooks
