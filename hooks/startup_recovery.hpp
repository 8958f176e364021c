// What a start does before the reconciler takes work: converge from disk after a crash or a stop.
//
// Runs once, on the starting thread, before any worker exists, so it has no lock of its own (the
// proxy publisher and the store it calls take theirs).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "hooks/deploy.hpp"
#include "store/store.hpp"

namespace sitesfs::hooks {

class StartupRecovery {
public:
    StartupRecovery(Store& store, const HooksConfig& config, ProxyPublisher& proxy)
        : store_(store), config_(config), proxy_(proxy) {}

    // Before the change feed is subscribed: removes what killed runs left behind, tells the proxy
    // publisher what the proxy config serves, and reports data dirs that belong to no site.
    void clean_up();
    // After the change feed is subscribed (so that nothing written meanwhile is missed): the sites
    // to run once. Every site not converged on disk, every site the proxy serves that the store no
    // longer has, and every removal a crash cut short.
    std::vector<std::string> sites_to_run() const;

private:
    void remove_crash_leftovers() const;
    void load_served();
    std::vector<std::string> orphans() const;
    bool converged_on_disk(const SiteRecord& site) const;

    Store& store_;
    const HooksConfig& config_;
    ProxyPublisher& proxy_;
    std::vector<std::string> removed_;  // clean_up: site dirs whose removal a crash cut short
    std::set<std::string> unservable_;  // load_served: sites whose entry could not be rebuilt
};

}  // namespace sitesfs::hooks
