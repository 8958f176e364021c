#include "hooks/startup_recovery.hpp"

#include <spdlog/spdlog.h>

#include <map>
#include <set>
#include <system_error>

#include "common/files.hpp"
#include "hooks/served_site.hpp"
#include "schemas/site_schema.hpp"
#include "schemas/validators.hpp"

namespace sitesfs::hooks {

namespace stdfs = std::filesystem;

void StartupRecovery::clean_up() {
    remove_crash_leftovers();
    load_served();
    removed_ = orphans();
}

std::vector<std::string> StartupRecovery::sites_to_run() const {
    std::vector<std::string> sites;
    for (const auto& name : store_.site_names()) {
        const SiteRef s = store_.site(name);
        if (s && !converged_on_disk(*s)) sites.push_back(name);
    }
    // Sites the proxy serves that the store no longer has (removed while a run was cut short).
    for (const auto& name : proxy_.served_sites())
        if (!store_.site(name)) sites.push_back(name);
    sites.insert(sites.end(), removed_.begin(), removed_.end());
    return sites;
}

// A site whose record says `live` at its newest generation and whose `current` points at that
// release is left alone; so is an incomplete site the proxy does not serve, and a site placed on
// other hosts that has nothing here (not served, no data dir, no state).
bool StartupRecovery::converged_on_disk(const SiteRecord& s) const {
    if (unservable_.contains(s.name)) return false;
    const SitePaths paths(config_.data_dir, s.name);
    std::error_code ec;
    if (!placed_on(s, store_.host(), store_.labels()))
        return !proxy_.serves(s.name) && !stdfs::exists(paths.marker, ec) && s.actual.state == SiteState::none &&
               s.actual.commit.empty();
    if (site_state(s) == SiteState::incomplete) return !proxy_.serves(s.name);
    if (s.actual.state != SiteState::live || s.actual.generation != s.generation || s.actual.commit.empty()) return false;
    // A builder changed in the config since gives the release another name: it is built again.
    const auto release = release_name(s.actual.commit, s, config_.build);
    if (!release) return false;
    const auto target = stdfs::read_symlink(paths.current, ec);
    return !ec && target == stdfs::path("releases") / *release && stdfs::is_directory(paths.release(*release), ec);
}

void StartupRecovery::load_served() {
    std::map<std::string, ProxySite> served;
    for (const auto& name : store_.site_names()) {
        const SiteRef s = store_.site(name);
        if (!s || s->actual.commit.empty() || s->actual.domain.empty()) continue;
        const SitePaths paths(config_.data_dir, name);
        const ServedValues values = actual_serving(s->actual);
        try {
            // The tree under `current` is the release the record names (converged_on_disk); one
            // that is not is redeployed, and its entry replaced, before this start is done.
            ServedTree tree = read_served_tree((values.path.empty() ? paths.current : paths.current / values.path).string());
            std::vector<BasicAuthUser> users;
            if (!values.auth_ref.empty()) users = auth_users(config_.keys, values.auth_ref);
            served[name] = served_site(name, values, paths, s->actual.commit, std::move(tree), std::move(users));
        } catch (const std::runtime_error& e) {
            // Never served without what it was deployed with (its password above all): left out
            // until its next deploy, which start-up runs for it.
            spdlog::error("site {}: not served until it deploys again: {}", name, e.what());
            unservable_.insert(name);
        }
    }
    proxy_.set_served(std::move(served));
}

// Site dirs of sites this state dir no longer has: a removal a crash cut short (the marker names
// this state dir) is returned to be finished; anything else is only reported.
std::vector<std::string> StartupRecovery::orphans() const {
    std::error_code ec;
    std::set<std::string> sites;
    for (const auto& n : store_.site_names()) sites.insert(n);
    std::vector<std::string> removed;
    for (const auto& entry : stdfs::directory_iterator(config_.data_dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (!entry.is_directory(ec) || sites.contains(name) || name.starts_with(".")) continue;
        if (SitePaths(config_.data_dir, name).marked_for(config_.state_dir)) {
            spdlog::info("site {}: removed, but its data dir {} is still there; removing it", name, entry.path().string());
            removed.push_back(name);
        } else {
            spdlog::warn("data dir {} belongs to no site; sitesfs leaves it alone (remove it yourself if unneeded)",
                         entry.path().string());
        }
    }
    return removed;
}

// A sitesfs killed during a deploy leaves temp files that nothing would ever reuse or remove: no
// run holds any site yet, so whatever is there is left over.
void StartupRecovery::remove_crash_leftovers() const {
    std::vector<stdfs::path> removed = remove_temp_files(config_.proxy.file);
    if (!config_.proxy.main_config.empty()) {
        const auto copies = remove_temp_files(config_.proxy.main_config);
        removed.insert(removed.end(), copies.begin(), copies.end());
    }
    std::error_code ec;
    for (const auto& entry : stdfs::directory_iterator(config_.data_dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.starts_with(".") && name.ends_with(SitePaths::kTombstoneSuffix) && entry.is_directory(ec)) {
            std::error_code rm;
            stdfs::remove_all(entry.path(), rm);
            if (!rm) removed.push_back(entry.path());
            continue;
        }
        const SitePaths paths(config_.data_dir, name);
        // A kill before the marker's rename leaves its temp file in a dir that has no marker yet;
        // once that is gone the dir is empty, and the next deploy takes it over.
        const auto marker_temps = remove_temp_files(paths.marker);
        removed.insert(removed.end(), marker_temps.begin(), marker_temps.end());
        if (!stdfs::exists(paths.marker, ec)) continue;
        const auto work = remove_interrupted_work(paths);
        removed.insert(removed.end(), work.begin(), work.end());
    }
    // Builds a kill cut short; the dir is sitesfs's alone (docs/builds.md), once it is checked to be
    // a directory no one else could have swapped for a link.
    if (!config_.build.dir.empty()) {
        try {
            ensure_build_root(config_.build.dir);
            for (const auto& entry : stdfs::directory_iterator(config_.build.dir, ec)) {
                std::error_code rm;
                stdfs::remove_all(entry.path(), rm);
                if (!rm) removed.push_back(entry.path());
            }
        } catch (const ReleaseError& e) {
            spdlog::error("{}; builds fail until it is fixed", e.what());
        }
    }
    for (const auto& p : removed) spdlog::info("removed {}, left by an interrupted run", p.string());
}

}  // namespace sitesfs::hooks
