#include "store/file_store.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

#include "schemas/site_schema.hpp"
#include "store/file_follower.hpp"
#include "store/site_dir.hpp"
#include "store/site_edit.hpp"
#include "store/site_map.hpp"

namespace sitesfs {

namespace {

// Which site serves each domain, committed or reserved by a write in progress. A domain is
// reserved before the site's file is written, so a racing writer of another site sees it taken.
class DomainClaims {
public:
    void assign(std::unordered_map<std::string, std::string> domains) {
        std::lock_guard lock(mu_);
        claims_ = std::move(domains);
    }
    // Reserves `wanted` for `site`; returns why not (another site serves one) or the domains it
    // newly reserved, for release() if the write fails.
    std::optional<std::string> reserve(const std::set<std::string>& wanted, const std::string& site, std::vector<std::string>& reserved) {
        std::lock_guard lock(mu_);
        for (const auto& d : wanted)
            if (const auto it = claims_.find(d); it != claims_.end() && it->second != site)
                return "domain '" + d + "' is already served by site '" + it->second + "'";
        for (const auto& d : wanted)
            if (claims_.emplace(d, site).second) reserved.push_back(d);
        return std::nullopt;
    }
    void release(const std::vector<std::string>& domains) {
        std::lock_guard lock(mu_);
        for (const auto& d : domains) claims_.erase(d);
    }
    // `site` no longer serves `dropped`.
    void drop(const std::set<std::string>& dropped, const std::string& site) {
        std::lock_guard lock(mu_);
        for (const auto& d : dropped)
            if (const auto it = claims_.find(d); it != claims_.end() && it->second == site) claims_.erase(it);
    }

private:
    std::mutex mu_;
    std::unordered_map<std::string, std::string> claims_;
};

// Lock order: a site's commit mutex (commit_lock), then the map's or the claims' lock, one at a
// time; never the other way round. Those two are only held to look up, reserve or swap pointers,
// never during file I/O, so readers never wait behind an fsync and different sites commit in
// parallel. No lock is held while listeners run.
class FileStore final : public Store {
public:
    FileStore(const FileStoreOptions& o, std::string host)
        : dir_(SiteDir::open_writable(o.state_dir)), policy_(o.policy), host_(std::move(host)), labels_(o.labels) {
        LoadedSites loaded = load_sites(dir_, true);
        for (auto& s : loaded.sites) sites_.publish(std::move(s));
        claims_.assign(std::move(loaded.domains));
        dir_.remove_leftovers(loaded.temps);
    }

    bool read_only() const override { return false; }
    const std::string& host() const override { return host_; }
    const std::vector<std::string>& labels() const override { return labels_; }
    std::string describe() const override {
        return "backend: file\nsites_dir: " + dir_.path().string() + "\nhost: " + host_ + "\n";
    }
    std::vector<std::string> site_names() const override { return sites_.names(); }
    SiteRef site(std::string_view name) const override { return sites_.get(name); }
    size_t site_count() const override { return sites_.size(); }
    void subscribe(std::function<void(const Change&)> listener) override { sites_.subscribe(std::move(listener)); }

    Outcome create_site(std::string_view name) override { return create_sites({NewSite{std::string(name), {}}}).front(); }

    std::vector<Outcome> create_sites(const std::vector<NewSite>& wanted) override {
        std::vector<Outcome> out(wanted.size());
        std::vector<std::unique_lock<std::mutex>> guards;
        std::vector<SiteRecord> records;
        std::vector<size_t> index;  // records[k] is wanted[index[k]]
        std::vector<std::vector<std::string>> reserved;
        std::set<std::string> names;
        const Timestamp now = Clock::now();
        // Commit locks are taken in name order, so two batches cannot wait on each other.
        std::vector<size_t> order(wanted.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return wanted[a].name < wanted[b].name; });
        for (const size_t i : order) {
            const NewSite& w = wanted[i];
            auto made = make_site(w, policy_, now);
            if (!made.ok()) {
                out[i] = made.outcome;
                continue;
            }
            if (!names.insert(w.name).second) {
                out[i] = Outcome::fail(EEXIST, "site '" + w.name + "' is named twice");
                continue;
            }
            auto guard = commit_lock(w.name);
            if (site(w.name)) {
                out[i] = Outcome::fail(EEXIST, "site '" + w.name + "' already exists");
                continue;
            }
            std::vector<std::string> mine;
            if (auto why = claims_.reserve(domains_of(made.record), w.name, mine)) {
                out[i] = Outcome::fail(EEXIST, *why);
                continue;
            }
            guards.push_back(std::move(guard));
            records.push_back(std::move(made.record));
            index.push_back(i);
            reserved.push_back(std::move(mine));
        }
        const std::vector<Outcome> saved = dir_.save_new(records);
        std::vector<Change> changes;
        for (size_t k = 0; k < records.size(); ++k) {
            out[index[k]] = saved[k];
            if (!saved[k].ok()) {
                claims_.release(reserved[k]);
                continue;
            }
            changes.push_back({Change::Kind::Created, records[k].name, records[k].generation});
            sites_.publish(std::make_shared<const SiteRecord>(std::move(records[k])));
        }
        guards.clear();
        for (const auto& c : changes) sites_.emit(c);
        return out;
    }

    Outcome remove_site(std::string_view name) override {
        if (!site(name)) return no_site(name);  // before commit_lock: no lock is kept for names never created
        auto guard = commit_lock(name);
        const SiteRef cur = site(name);
        if (!cur) return no_site(name);
        if (Outcome out = dir_.remove(*cur); !out.ok()) return out;
        sites_.erase(cur->name);
        claims_.drop(domains_of(*cur), cur->name);
        guard.unlock();
        sites_.emit({Change::Kind::Removed, cur->name, cur->generation});
        return Outcome::success();
    }

    Outcome write_field(std::string_view name, std::string_view field, std::string_view raw) override {
        return set_field(name, field, raw, nullptr);
    }

    Outcome restore_field(std::string_view name, std::string_view field, std::string_view value,
                          std::string_view expected) override {
        return set_field(name, field, value, &expected);
    }

    Outcome set_field_time(std::string_view name, std::string_view field, Timestamp when) override {
        if (!site(name)) return no_site(name);
        if (Outcome out = check_field_time(field); !out.ok()) return out;
        auto guard = commit_lock(name);
        const SiteRef cur = site(name);
        if (!cur) return no_site(name);
        if (cur->field(FieldName::known(field)).changed == when) return Outcome::success();
        auto next = std::make_shared<SiteRecord>(*cur);
        next->desired[std::string(field)].changed = when;
        if (Outcome out = dir_.save(*next, cur.get()); !out.ok()) return out;
        sites_.publish(next);
        guard.unlock();
        sites_.emit({Change::Kind::Times, next->name, next->generation});
        return Outcome::success();
    }

    Outcome report(std::string_view name, uint64_t generation, const ActualState& actual) override {
        if (!site(name)) return no_site(name);
        auto guard = commit_lock(name);
        const SiteRef cur = site(name);
        if (!cur) return no_site(name);
        if (generation < cur->actual.generation) return Outcome::success();  // a slower, older run: fenced
        // Only a report about an earlier incarnation of a removed and re-created site can be ahead;
        // accepting it would fence every report about this one.
        if (generation > cur->generation)
            return Outcome::fail(EINVAL, "site '" + cur->name + "' is at generation " + std::to_string(cur->generation) +
                                             ", not " + std::to_string(generation));
        auto next = std::make_shared<SiteRecord>(*cur);
        next->actual = reported_actual(cur->actual, generation, actual, Clock::now());
        // What is served has changed whether or not the disk takes the report (a full or read-only
        // state dir), so `commit` and `status` show it anyway. Unsaved, it is lost at a restart,
        // which deploys the site again because its record no longer matches `current`.
        Outcome saved = dir_.save(*next, cur.get());
        sites_.publish(next);
        guard.unlock();
        sites_.emit({Change::Kind::Actual, next->name, next->generation});
        return saved;
    }

private:
    // write_field, and with `expected` restore_field: a compare-and-set that leaves the refusal
    // the restore follows in the status.
    Outcome set_field(std::string_view name, std::string_view field, std::string_view raw, const std::string_view* expected) {
        if (!site(name)) return no_site(name);
        auto guard = commit_lock(name);
        const SiteRef cur = site(name);
        if (!cur) return no_site(name);
        FieldEdit edit = edit_field(*cur, field, raw, expected, policy_, Clock::now());
        switch (edit.kind) {
        case FieldEdit::Kind::Refused:
            if (!edit.show_refusal) return edit.outcome;
            return refuse(std::move(guard), cur, field, edit.outcome.err, std::move(edit.outcome.reason));
        case FieldEdit::Kind::Unchanged:
            guard.unlock();
            return announce_refresh(edit, *cur);
        case FieldEdit::Kind::ClearsRefusal:
        case FieldEdit::Kind::Changed:
            break;
        }
        const auto& next = edit.next;
        // A refusal of the store is shown in the status too, except after a restore, which shows
        // the refusal that called for it.
        auto failed = [&](int err, std::string reason) {
            return expected ? Outcome::fail(err, std::move(reason)) : refuse(std::move(guard), cur, field, err, std::move(reason));
        };
        std::vector<std::string> reserved;
        if (edit.domains_changed)
            if (auto why = claims_.reserve(domains_of(*next), next->name, reserved)) return failed(EEXIST, *why);
        if (Outcome out = dir_.save(*next, cur.get()); !out.ok()) {
            claims_.release(reserved);
            // A full or read-only state dir: the writer gets the errno, and `status` says why for
            // whoever looks later (in memory only, since the disk just refused a write).
            return failed(out.err, out.reason);
        }
        sites_.publish(next);
        if (edit.domains_changed) {
            std::set<std::string> dropped = domains_of(*cur);
            for (const auto& d : domains_of(*next)) dropped.erase(d);
            claims_.drop(dropped, next->name);
        }
        guard.unlock();
        const auto kind = edit.kind == FieldEdit::Kind::Changed ? Change::Kind::Desired : Change::Kind::Actual;
        sites_.emit({kind, next->name, next->generation});
        return announce_refresh(edit, *next);
    }

    Outcome announce_refresh(const FieldEdit& edit, const SiteRecord& site) {
        if (edit.refresh) sites_.emit({Change::Kind::Refresh, site.name, site.generation});
        return Outcome::success();
    }

    std::unique_lock<std::mutex> commit_lock(std::string_view name) {
        std::mutex* m;
        {
            std::lock_guard lock(commit_locks_mu_);
            auto& slot = commit_locks_[std::string(name)];
            if (!slot) slot = std::make_unique<std::mutex>();
            // Never erased: a waiter may still hold the pointer when the site is removed, and
            // dropping it would let a second mutex for the same name run beside it.
            m = slot.get();
        }
        return std::unique_lock(*m);
    }

    // Shows a refused value in the site's status. Saving that is best effort: the refusal itself
    // is the answer the writer needs.
    Outcome refuse(std::unique_lock<std::mutex> guard, const SiteRef& cur, std::string_view field, int err, std::string reason) {
        auto next = with_refusal(*cur, field, reason, Clock::now());
        if (Outcome out = dir_.save(*next, cur.get()); !out.ok())
            spdlog::warn("site {}: the refusal is shown but not saved: {}", cur->name, out.reason);
        sites_.publish(next);
        guard.unlock();
        sites_.emit({Change::Kind::Actual, next->name, next->generation});
        return Outcome::fail(err, std::move(reason));
    }

    const SiteDir dir_;
    const ValidationPolicy policy_;
    const std::string host_;
    const std::vector<std::string> labels_;
    SiteMap sites_;
    DomainClaims claims_;

    std::mutex commit_locks_mu_;
    std::unordered_map<std::string, std::unique_ptr<std::mutex>> commit_locks_;
};

}  // namespace

std::string local_host_name() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
    return name;
}

std::unique_ptr<Store> open_file_store(const FileStoreOptions& options) {
    std::string host = options.host.empty() ? local_host_name() : options.host;
    if (options.read_only) return open_file_follower(options.state_dir, std::move(host), options.labels);
    return std::make_unique<FileStore>(options, std::move(host));
}

}  // namespace sitesfs
