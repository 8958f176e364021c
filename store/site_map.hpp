// What every store keeps in memory: the current record of each site, handed out as immutable
// snapshots, and the listeners of the change feed. Readers take a shared lock only to copy a
// pointer, never during I/O, so they never wait behind a disk flush or a network round trip.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.hpp"

namespace sitesfs {

class SiteMap {
public:
    std::vector<std::string> names() const {
        std::shared_lock lock(mu_);
        std::vector<std::string> out;
        out.reserve(sites_.size());
        for (const auto& [name, _] : sites_) out.push_back(name);
        return out;
    }
    SiteRef get(std::string_view name) const {
        std::shared_lock lock(mu_);
        const auto it = sites_.find(name);
        return it == sites_.end() ? nullptr : it->second;
    }
    size_t size() const {
        std::shared_lock lock(mu_);
        return sites_.size();
    }
    void publish(SiteRef next) {
        std::unique_lock lock(mu_);
        sites_[next->name] = std::move(next);
    }
    void erase(std::string_view name) {
        std::unique_lock lock(mu_);
        if (const auto it = sites_.find(name); it != sites_.end()) sites_.erase(it);
    }

    void subscribe(std::function<void(const Change&)> listener) {
        std::lock_guard lock(listeners_mu_);
        auto more = std::make_shared<std::vector<std::function<void(const Change&)>>>(*listeners_);
        more->push_back(std::move(listener));
        listeners_ = std::move(more);
    }
    // Call with no store lock held: listeners may read the store.
    void emit(const Change& change) const {
        std::shared_ptr<const std::vector<std::function<void(const Change&)>>> listeners;
        {
            std::lock_guard lock(listeners_mu_);
            listeners = listeners_;
        }
        for (const auto& l : *listeners) l(change);
    }

private:
    mutable std::shared_mutex mu_;
    std::map<std::string, SiteRef, std::less<>> sites_;

    mutable std::mutex listeners_mu_;
    std::shared_ptr<const std::vector<std::function<void(const Change&)>>> listeners_ =
        std::make_shared<const std::vector<std::function<void(const Change&)>>>();
};

}  // namespace sitesfs
