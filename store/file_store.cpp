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
#include "store/site_map.hpp"

namespace sitesfs {

namespace {

std::set<std::string> domains_of(const SiteRecord& s) {
    const auto names = split_domains(s.field("domain").value);
    return {names.begin(), names.end()};
}

// A refusal as the site's status shows it. The validators' reasons already start with the
// field's name ("domain 'a..b': ..."); others get it in front.
std::string refusal_text(std::string_view field, const std::string& reason) {
    const bool named = reason.starts_with(field) && reason.size() > field.size() &&
                       (reason[field.size()] == ' ' || reason[field.size()] == ':');
    return named ? reason : std::string(field) + ": " + reason;
}

Outcome no_site(std::string_view name) { return Outcome::fail(ENOENT, "no site '" + std::string(name) + "'"); }

void clear_write_error(SiteRecord& s, Timestamp now) {
    if (s.actual.error_from_write) {
        s.actual.error.clear();
        s.actual.error_from_write = false;
    }
    s.actual.updated = now;
}

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
            auto made = make_site(w, now);
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
        const FieldSpec* spec = find_field(field);
        if (!spec || !is_writable(*spec)) return Outcome::fail(EPERM, std::string(field) + " shows when sitesfs changed it");
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
        const Timestamp now = Clock::now();
        auto next = std::make_shared<SiteRecord>(*cur);
        next->actual = actual;
        next->actual.generation = generation;
        next->actual.changed = actual.commit == cur->actual.commit ? cur->actual.changed : now;
        next->actual.updated = now;
        // The reconciler does not know of refused writes; a report without an error of its own
        // must not hide one from the person who just made it.
        const bool keep_refusal = actual.error.empty() && cur->actual.error_from_write;
        next->actual.error = keep_refusal ? cur->actual.error : actual.error;
        next->actual.error_from_write = keep_refusal;
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
    struct Made {
        SiteRecord record;
        Outcome outcome;
        bool ok() const { return outcome.ok(); }
    };

    // A new site's record with its values, each trimmed and validated; the first refusal fails it.
    Made make_site(const NewSite& w, Timestamp now) const {
        Made m;
        if (const Checked c = check_site_name(w.name); !c.ok) {
            m.outcome = Outcome::fail(EINVAL, c.reason);
            return m;
        }
        m.record.name = w.name;
        m.record.generation = 1;
        m.record.created = now;
        for (const auto& f : site_fields())
            if (is_writable(f)) m.record.desired[std::string(f.name)] = FieldValue{};
        for (const auto& [field, raw] : w.values) {
            const FieldSpec* spec = find_field(field);
            if (!spec || !is_writable(*spec)) {
                m.outcome = Outcome::fail(EINVAL, "a site has no setting '" + field + "'");
                return m;
            }
            const Checked c = spec->check(trim(raw), policy_);
            if (!c.ok) {
                m.outcome = Outcome::fail(EINVAL, c.reason);
                return m;
            }
            m.record.desired[field] = FieldValue{c.value, now};
        }
        return m;
    }

    // write_field, and with `expected` restore_field: a compare-and-set that leaves the refusal
    // the restore follows in the status.
    Outcome set_field(std::string_view name, std::string_view field, std::string_view raw, const std::string_view* expected) {
        if (!site(name)) return no_site(name);
        const FieldSpec* spec = find_field(field);
        if (!spec) return Outcome::fail(EINVAL, "a site has no file '" + std::string(field) + "'");
        if (!is_writable(*spec)) return Outcome::fail(EACCES, std::string(field) + " is read-only");
        auto guard = commit_lock(name);
        const SiteRef cur = site(name);
        if (!cur) return no_site(name);
        // A restore records nothing in the status: the refusal that called for it shows there.
        auto refused = [&](int err, std::string reason) {
            return expected ? Outcome::fail(err, std::move(reason))
                            : refuse(std::move(guard), cur, field, err, std::move(reason));
        };
        const Checked c = spec->check(trim(raw), policy_);
        if (!c.ok) return refused(EINVAL, c.reason);
        if (expected) {
            const Checked e = spec->check(trim(*expected), policy_);
            if (!e.ok || cur->field(FieldName::known(field)).value != e.value)
                return Outcome::fail(ESTALE, std::string(field) + " was changed by another writer meanwhile");
        }

        const Timestamp now = Clock::now();
        auto next = std::make_shared<SiteRecord>(*cur);
        // Editors save the whole file, usually unchanged: the same value is no new generation and
        // no disk write. It only clears a refusal still shown in the status, as any good write does.
        if (cur->field(FieldName::known(field)).value == c.value) {
            if (expected || !cur->actual.error_from_write) return Outcome::success();
            clear_write_error(*next, now);
            if (Outcome out = dir_.save(*next, cur.get()); !out.ok())
                return refuse(std::move(guard), cur, field, out.err, out.reason);
            sites_.publish(next);
            guard.unlock();
            sites_.emit({Change::Kind::Actual, next->name, next->generation});
            return Outcome::success();
        }
        next->desired[std::string(field)] = FieldValue{c.value, now};
        ++next->generation;
        if (!expected) clear_write_error(*next, now);

        const bool domains = field == "domain";
        std::vector<std::string> reserved;
        if (domains)
            if (auto why = claims_.reserve(domains_of(*next), next->name, reserved)) return refused(EEXIST, *why);
        if (Outcome out = dir_.save(*next, cur.get()); !out.ok()) {
            claims_.release(reserved);
            // A full or read-only state dir: the writer gets the errno, and `status` says why for
            // whoever looks later (in memory only, since the disk just refused a write).
            return refused(out.err, out.reason);
        }
        sites_.publish(next);
        if (domains) {
            std::set<std::string> dropped = domains_of(*cur);
            for (const auto& d : domains_of(*next)) dropped.erase(d);
            claims_.drop(dropped, next->name);
        }
        guard.unlock();
        sites_.emit({Change::Kind::Desired, next->name, next->generation});
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
        auto next = std::make_shared<SiteRecord>(*cur);
        next->actual.error = refusal_text(field, reason);
        next->actual.error_from_write = true;
        next->actual.updated = Clock::now();
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
