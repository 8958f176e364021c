#include "hooks/deploy.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <system_error>

namespace sitesfs::hooks {

namespace stdfs = std::filesystem;

SitePaths::SitePaths(const stdfs::path& data_dir, const std::string& site)
    : dir(data_dir / site),
      repo(dir / "repo.git"),
      releases(dir / "releases"),
      current(dir / "current"),
      marker(dir / ".sitesfs-site") {}

Deploy::Deploy(const HooksConfig& c, ProxyPublisher& p, KnownHosts& k, SiteRef s, std::function<bool()> stop)
    : config(c), proxy(p), known_hosts(k), site(std::move(s)), paths(c.data_dir, site->name), superseded(std::move(stop)) {}

std::string url_for_deploy_key(const std::string& url) {
    const std::string github = "https://github.com/";
    if (!url.starts_with(github)) return url;
    std::string path = url.substr(github.size());
    if (!path.ends_with(".git")) path += ".git";
    return "ssh://git@github.com/" + path;
}

RemoteAccess::RemoteAccess(const HooksConfig& config, KnownHosts& hosts, const SiteRecord& site,
                           std::function<bool()> cancelled)
    : url_(repo_fetch_url(site.field("repo").value)) {
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

void prune_releases(const SitePaths& paths, unsigned keep) {
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
        if (name.starts_with(".")) {
            // A staging dir: only ever left by a run that was killed (a live run holds the site).
            stdfs::remove_all(entry.path(), ec);
            continue;
        }
        if (name == current) continue;
        releases.push_back({entry.last_write_time(ec), entry.path()});
    }
    std::sort(releases.begin(), releases.end(), [](const Release& a, const Release& b) { return a.made > b.made; });
    const size_t others = keep > 0 ? keep - 1 : 0;  // `current` counts as one of the kept
    for (size_t i = others; i < releases.size(); ++i) {
        stdfs::remove_all(releases[i].path, ec);
        if (ec) spdlog::warn("could not remove old release {}: {}", releases[i].path.string(), ec.message());
    }
}

}  // namespace sitesfs::hooks
