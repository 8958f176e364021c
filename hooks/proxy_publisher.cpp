#include "hooks/proxy_publisher.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

namespace sitesfs::hooks {

ProxyPublisher::ProxyPublisher(std::unique_ptr<ProxyConfig> config, std::unique_ptr<Reloader> reloader)
    : config_(std::move(config)), reloader_(std::move(reloader)) {}

void ProxyPublisher::set_served(std::map<std::string, ProxySite> served) {
    std::lock_guard lock(mu_);
    served_ = std::move(served);
}

bool ProxyPublisher::serves(const std::string& site) const {
    std::lock_guard lock(mu_);
    return served_.contains(site);
}

std::vector<std::string> ProxyPublisher::served_sites() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> names;
    for (const auto& entry : served_) names.push_back(entry.first);
    return names;
}

PublishResult ProxyPublisher::publish(ProxyChange change) {
    Waiter me{std::move(change), std::nullopt};
    std::unique_lock lock(mu_);
    waiting_.push_back(&me);
    for (;;) {
        if (me.result) return std::move(*me.result);
        if (!publishing_) {
            // Lead the next batch: everything waiting now, this change included.
            publishing_ = true;
            std::vector<Waiter*> batch;
            batch.swap(waiting_);
            std::vector<ProxyChange> changes;
            for (Waiter* w : batch) changes.push_back(w->change);
            lock.unlock();
            std::vector<PublishResult> results;
            try {
                results = publish_batch(changes);
            } catch (const std::exception& e) {
                // Never leave the others waiting on a leader that is gone.
                results.assign(batch.size(), PublishResult{false, "proxy", e.what(), std::nullopt, false});
            }
            lock.lock();
            for (size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move(results[i]);
            publishing_ = false;
            // Wakes this batch's waiters and hands the lead to one of the next.
            done_.notify_all();
            continue;
        }
        done_.wait(lock);
    }
}

std::vector<PublishResult> ProxyPublisher::publish_batch(const std::vector<ProxyChange>& batch) {
    std::vector<PublishResult> results(batch.size());
    std::map<std::string, ProxySite> next = served_;
    for (size_t i = 0; i < batch.size(); ++i) {
        const ProxyChange& c = batch[i];
        if (auto it = next.find(c.site); it != next.end()) results[i].previous = it->second;
        results[i].changed = results[i].previous != c.entry;
        if (c.entry) next[c.site] = *c.entry;
        else next.erase(c.site);
    }
    std::vector<ProxySite> sites;
    sites.reserve(next.size());
    for (const auto& entry : next) sites.push_back(entry.second);
    ProxyFileBefore before;
    bool swapped = false;
    try {
        swapped = swap_proxy_file(*config_, config_->render(sites), before);
    } catch (const std::exception& e) {
        if (batch.size() > 1) {
            spdlog::info("proxy: a batch of {} changes did not validate; publishing them one at a time", batch.size());
            for (size_t i = 0; i < batch.size(); ++i) results[i] = publish_batch({batch[i]}).front();
            return results;
        }
        results[0].step = "proxy";
        results[0].error = e.what();
        return results;
    }
    if (swapped) {
        std::optional<std::string> failed;
        try {
            reload();
        } catch (const ReloadError& e) {
            failed = e.what() + put_back(before, e.running);
        } catch (const std::exception& e) {
            // Not a reloader's verdict (out of memory, say): nothing is known of the proxy.
            failed = e.what() + put_back(before, RunningConfig::unknown);
        }
        if (failed) {
            for (auto& r : results) {
                r.step = "reload";
                r.error = *failed;
            }
            return results;
        }
    }
    {
        std::lock_guard lock(mu_);
        served_ = std::move(next);
    }
    for (auto& r : results) r.ok = true;
    return results;
}

// After a failed reload: the previous file back, and reloaded in case the proxy took the new one
// after all. Says, for the error, what the proxy runs now.
std::string ProxyPublisher::put_back(const ProxyFileBefore& before, RunningConfig after_failure) {
    try {
        restore_proxy_file(*config_, before);
    } catch (const std::exception& e) {
        return std::string("; the previous config could not be put back (") + e.what() + "): the file holds the new config";
    }
    try {
        reload();
    } catch (const std::exception& e) {
        if (after_failure == RunningConfig::unchanged)
            return "; the previous config file is back and still in force (a refused reload leaves the running config as "
                   "it was)";
        return std::string("; the previous config file is back, but reloading it failed too (") + e.what() +
               "): the proxy may run the new config until the next reload succeeds";
    }
    return "; the previous config was put back and is in force";
}

void ProxyPublisher::reload() {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    ++reloads_;
    try {
        reloader_->reload();
    } catch (...) {
        last_reload_ok_ = 0;
        last_reload_at_ = now;
        throw;
    }
    last_reload_ok_ = 1;
    last_reload_at_ = now;
}

std::string ProxyPublisher::metrics() const {
    return "# HELP sitesfs_proxy_reloads_total Proxy reloads asked for (one per published batch of changes).\n"
           "# TYPE sitesfs_proxy_reloads_total counter\n"
           "sitesfs_proxy_reloads_total " + std::to_string(reloads_.load()) + "\n"
           "# HELP sitesfs_last_reload_success Whether the last proxy reload succeeded (1), failed (0), or none ran yet (-1).\n"
           "# TYPE sitesfs_last_reload_success gauge\n"
           "sitesfs_last_reload_success " + std::to_string(last_reload_ok_.load()) + "\n"
           "# HELP sitesfs_last_reload_timestamp_seconds When the proxy was last reloaded (0: never).\n"
           "# TYPE sitesfs_last_reload_timestamp_seconds gauge\n"
           "sitesfs_last_reload_timestamp_seconds " + std::to_string(last_reload_at_.load()) + "\n";
}

}  // namespace sitesfs::hooks
