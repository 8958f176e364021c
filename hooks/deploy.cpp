#include "hooks/deploy.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "common/files.hpp"

namespace sitesfs::hooks {

namespace stdfs = std::filesystem;

SitePaths::SitePaths(const stdfs::path& data_dir, const std::string& site)
    : dir(data_dir / site),
      repo(dir / "repo.git"),
      releases(dir / "releases"),
      current(dir / "current"),
      marker(dir / ".sitesfs-site"),
      next_current(dir / ".current.tmp"),
      tombstone(data_dir / ("." + site + std::string(kTombstoneSuffix))) {}

bool SitePaths::marked_for(const stdfs::path& state_dir) const {
    try {
        return !state_dir.empty() && read_file(marker) == state_dir.string() + "\n";
    } catch (const FileError&) {
        return false;
    }
}

Deploy::Deploy(const HooksConfig& c, ProxyPublisher& p, KnownHosts& k, BuildSlots& b, SiteRef s, std::function<bool()> stop)
    : config(c), proxy(p), known_hosts(k), builds(b), site(std::move(s)), paths(c.data_dir, site->name), superseded(std::move(stop)) {}

std::string url_for_deploy_key(const std::string& url) {
    const std::string github = "https://github.com/";
    if (!url.starts_with(github)) return url;
    std::string path = url.substr(github.size());
    if (!path.ends_with(".git")) path += ".git";
    return "ssh://git@github.com/" + path;
}

std::string site_fetch_url(const SiteRecord& site) {
    const std::string url = repo_fetch_url(site.field("repo").value);
    return site.field("deploy_key_ref").value.empty() ? url : url_for_deploy_key(url);
}

RemoteAccess::RemoteAccess(const HooksConfig& config, KnownHosts& hosts, const SiteRecord& site,
                           std::function<bool()> cancelled, std::optional<std::string> url)
    : url_(url ? std::move(*url) : repo_fetch_url(site.field("repo").value)) {
    const std::string ref = site.field("deploy_key_ref").value;
    options_.policy = config.policy;
    options_.cancelled = std::move(cancelled);
    options_.timeouts = config.git;
    options_.known_hosts = &hosts;
    if (ref.empty()) return;
    url_ = url_for_deploy_key(url_);
    key_ = resolve_deploy_key(config.keys, ref);
    options_.key = &key_;
    options_.key_ref = ref;
}

RunResult run_steps(Deploy& d, const std::vector<std::unique_ptr<Step>>& steps) {
    RunResult result;
    size_t applied = 0;
    for (; applied < steps.size(); ++applied) {
        Step& step = *steps[applied];
        if (d.superseded()) {
            result.superseded = true;
            result.step = step.name();
            result.error = "superseded by a newer change";
            break;
        }
        try {
            step.apply(d);
        } catch (const std::exception& e) {
            result.step = step.name();
            result.error = e.what();
            // Stopped by the newer change (a cancelled fetch or build), not failed.
            result.superseded = d.superseded();
            // A step that failed half-way may have done part of its work; its undo knows what.
            ++applied;
            break;
        }
    }
    if (applied == steps.size() && result.step.empty()) {
        result.ok = true;
        return result;
    }
    for (size_t i = applied; i-- > 0;) {
        try {
            steps[i]->undo(d);
        } catch (const std::exception& e) {
            const std::string why = std::string(steps[i]->name()) + " undo: " + e.what();
            spdlog::error("site {}: {}", d.site->name, why);
            result.undo_error += (result.undo_error.empty() ? "" : "; ") + why;
        }
    }
    return result;
}

namespace {

// libgit2's files of a write in progress: `NAME.lock` (its lock on a ref, packed-refs or config:
// while one exists every later update of that file fails with "failed to lock file"), and
// `*_git2_*` (a pack being indexed, a loose object being written).
void remove_git_leftovers(const stdfs::path& repo, std::vector<stdfs::path>& removed) {
    const auto sweep = [&](const stdfs::path& dir, bool recursive) {
        std::error_code ec;
        std::vector<stdfs::path> found;
        const auto consider = [&](const stdfs::directory_entry& e) {
            const std::string name = e.path().filename().string();
            std::error_code type;
            if (e.is_regular_file(type) && (name.ends_with(".lock") || name.find("_git2_") != std::string::npos))
                found.push_back(e.path());
        };
        if (recursive) {
            for (auto it = stdfs::recursive_directory_iterator(dir, ec); !ec && it != stdfs::recursive_directory_iterator();
                 it.increment(ec))
                consider(*it);
        } else {
            for (const auto& e : stdfs::directory_iterator(dir, ec)) consider(e);
        }
        for (const auto& p : found)
            if (::unlink(p.c_str()) == 0) removed.push_back(p);
    };
    sweep(repo, false);
    sweep(repo / "refs", true);
    sweep(repo / "objects", false);
    sweep(repo / "objects" / "pack", false);
}

}  // namespace

std::vector<stdfs::path> remove_interrupted_work(const SitePaths& paths) {
    std::vector<stdfs::path> removed;
    std::error_code ec;
    if (::unlink(paths.next_current.c_str()) == 0) removed.push_back(paths.next_current);
    remove_git_leftovers(paths.repo, removed);
    for (const auto& entry : stdfs::directory_iterator(paths.releases, ec)) {
        if (!entry.path().filename().string().starts_with(".")) continue;
        std::error_code rm;
        stdfs::remove_all(entry.path(), rm);
        if (!rm) removed.push_back(entry.path());
    }
    return removed;
}

void prune_releases(const SitePaths& paths, unsigned keep) {
    remove_interrupted_work(paths);
    std::error_code ec;
    std::string current;
    if (auto target = stdfs::read_symlink(paths.current, ec); !ec) current = target.filename().string();
    struct Release {
        stdfs::file_time_type made;
        stdfs::path path;
    };
    std::vector<Release> releases;
    for (const auto& entry : stdfs::directory_iterator(paths.releases, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.starts_with(".") || name == current) continue;
        releases.push_back({entry.last_write_time(ec), entry.path()});
    }
    std::sort(releases.begin(), releases.end(), [](const Release& a, const Release& b) { return a.made > b.made; });
    const size_t others = keep > 0 ? keep - 1 : 0;  // `current` counts as one of the kept
    for (size_t i = others; i < releases.size(); ++i) discard_release(paths, releases[i].path.filename().string());
}

void discard_release(const SitePaths& paths, const std::string& name) {
    const stdfs::path release = paths.release(name);
    const stdfs::path aside = paths.releases / (".discard-" + name);
    std::error_code ec;
    stdfs::remove_all(aside, ec);
    if (::rename(release.c_str(), aside.c_str()) != 0) {
        if (errno != ENOENT) spdlog::warn("could not remove release {}: rename: {}", release.string(), std::strerror(errno));
        return;
    }
    stdfs::remove_all(aside, ec);
    if (ec) spdlog::warn("could not remove release {}: {}", release.string(), ec.message());
}

std::string remove_site_dir(const SitePaths& paths) {
    std::error_code ec;
    stdfs::remove_all(paths.tombstone, ec);  // an earlier removal of a site of this name, cut short
    if (::rename(paths.dir.c_str(), paths.tombstone.c_str()) != 0)
        return "rename " + paths.dir.string() + " to " + paths.tombstone.string() + ": " + std::strerror(errno);
    try {
        fsync_dir(paths.dir.parent_path());
    } catch (const FileError& e) {
        return e.what();
    }
    stdfs::remove_all(paths.tombstone, ec);
    return ec ? "remove " + paths.tombstone.string() + ": " + ec.message() : "";
}

}  // namespace sitesfs::hooks
