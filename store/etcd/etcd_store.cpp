#include "store/etcd/etcd_store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "common/text.hpp"
#include "schemas/validators.hpp"
#include "schemas/site_schema.hpp"
#include "store/file_store.hpp"
#include "store/site_edit.hpp"
#include "store/site_file.hpp"
#include "store/site_map.hpp"

namespace sitesfs {

namespace {

using etcd::Compare;
using etcd::Error;
using etcd::Op;

// A changed field puts the site, claims its new domains and drops its old ones in one txn; etcd
// takes at most 128 operations a branch (--max-txn-ops), and a domain list holds at most 100.
constexpr size_t kMaxTxnOps = 128;
// A write whose guard failed because another host changed the site meanwhile is made again on
// the newer record; this many times before giving up (each try is one round trip).
constexpr int kWriteAttempts = 8;
// Keys a list asks for at once, so 10,000 sites never make one response bigger than gRPC takes.
constexpr int64_t kListPage = 500;

std::string ns_text(Timestamp t) { return rfc3339(t); }

template <class T>
const Error* error_of(const etcd::Result<T>& r) {
    return std::get_if<Error>(&r);
}

// Outcome of a write etcd answered with an error.
Outcome write_failed(const Error& e) {
    switch (e.kind) {
    case Error::Kind::Unknown:
        return Outcome::unknown(e.message + "; the change may or may not have been made: sitesfs reads it back once etcd answers");
    case Error::Kind::Auth:
        return Outcome::fail(EACCES, e.message);
    case Error::Kind::NotApplied:
    case Error::Kind::Compacted:
        break;
    }
    return Outcome::fail(kStoreUnreachableErrno, e.message + "; nothing changed");
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : std::string(sep)) + i;
    return out;
}

struct Keys {
    std::string prefix;
    std::string site(std::string_view name) const { return prefix + "sites/" + std::string(name); }
    std::string domain(std::string_view d) const { return prefix + "domains/" + std::string(d); }
    std::string actual(std::string_view site, std::string_view host) const {
        return prefix + "actual/" + std::string(site) + "/" + std::string(host);
    }
    std::string actuals(std::string_view site) const { return prefix + "actual/" + std::string(site) + "/"; }
    std::string host(std::string_view h) const { return prefix + "hosts/" + std::string(h); }
    std::string alive(std::string_view h) const { return prefix + "alive/" + std::string(h); }
    std::string refresh(std::string_view site) const { return prefix + "refresh/" + std::string(site); }
};

// What one key of the prefix is about.
struct KeyMeaning {
    enum class Kind { Site, Domain, Actual, Host, Alive, Refresh, Other } kind = Kind::Other;
    std::string site, host, domain;
};

KeyMeaning meaning(const std::string& prefix, const std::string& key) {
    KeyMeaning m;
    if (!key.starts_with(prefix)) return m;
    const std::string_view rest = std::string_view(key).substr(prefix.size());
    auto after = [&](std::string_view head, std::string_view& tail) {
        if (!rest.starts_with(head)) return false;
        tail = rest.substr(head.size());
        return !tail.empty();
    };
    std::string_view tail;
    if (after("sites/", tail)) {
        m.kind = KeyMeaning::Kind::Site;
        m.site = tail;
    } else if (after("domains/", tail)) {
        m.kind = KeyMeaning::Kind::Domain;
        m.domain = tail;
    } else if (after("actual/", tail)) {
        const size_t slash = tail.find('/');
        if (slash == std::string_view::npos || slash == 0 || slash + 1 == tail.size()) return m;
        m.kind = KeyMeaning::Kind::Actual;
        m.site = tail.substr(0, slash);
        m.host = tail.substr(slash + 1);
    } else if (after("hosts/", tail)) {
        m.kind = KeyMeaning::Kind::Host;
        m.host = tail;
    } else if (after("alive/", tail)) {
        m.kind = KeyMeaning::Kind::Alive;
        m.host = tail;
    } else if (after("refresh/", tail)) {
        m.kind = KeyMeaning::Kind::Refresh;
        m.site = tail;
    }
    return m;
}

// Everything under the prefix as this host last saw it, parsed. Values that do not parse (a
// newer sitesfs's format, a hand edit) are left out and named in describe().
struct ClusterView {
    struct SiteEntry {
        int64_t mod = 0, create = 0;
        // The desired part: the record as parsed from etcd until it is published, then the
        // published record itself (its actual state and reports are this host's composition, which
        // compose() replaces), so that 10,000 sites are kept once, not twice.
        std::shared_ptr<const SiteRecord> desired;
    };
    struct ActualEntry {
        int64_t mod = 0;
        ActualState actual;
    };
    struct ClaimEntry {
        int64_t mod = 0;
        std::string site;
    };
    std::map<std::string, SiteEntry, std::less<>> sites;
    std::map<std::string, std::map<std::string, ActualEntry>, std::less<>> actuals;  // site → host
    std::map<std::string, ClaimEntry, std::less<>> claims;
    std::map<std::string, std::vector<std::string>, std::less<>> hosts;  // registered host → labels
    std::set<std::string, std::less<>> alive;
    // The newest revision applied of every key changed since the list, deletions included: a
    // late watch event older than a write this host applied itself must not undo it.
    std::unordered_map<std::string, int64_t> seen;
    std::map<std::string, std::string> unreadable;  // key → why
    int64_t revision = 0;
    // The list's revision: every event up to it is in the list already.
    int64_t listed = 0;

    // How far the view knows `key`: every change of it up to this revision is applied.
    int64_t known(const std::string& key) const {
        const auto it = seen.find(key);
        return std::max(listed, it == seen.end() ? 0 : it->second);
    }
};

class EtcdStore final : public Store {
public:
    EtcdStore(const EtcdStoreOptions& o, std::unique_ptr<etcd::Client> client)
        : options_(o),
          keys_{o.prefix},
          host_(o.host.empty() ? local_host_name() : o.host),
          client_(std::move(client)) {
        if (std::string why = relist(); !why.empty())
            throw StoreError("etcd " + join(client_->endpoints(), ",") + ": cannot list " + o.prefix + ": " + why);
        if (!o.read_only && o.register_host)
            if (std::string why = register_host(); !why.empty())
                throw StoreError("etcd: cannot register host '" + host_ + "': " + why);
        keeper_ = std::thread([this] { keep(); });
    }

    ~EtcdStore() override {
        {
            std::lock_guard lock(keeper_mu_);
            stopping_ = true;
        }
        keeper_cv_.notify_all();
        keeper_.join();
        watch_.reset();
        // A host that stops shows as gone at once rather than after its lease's TTL.
        if (lease_ != 0) (void)client_->lease_revoke(lease_);
    }

    bool read_only() const override { return options_.read_only; }
    const std::string& host() const override { return host_; }
    const std::vector<std::string>& labels() const override { return options_.labels; }
    std::vector<std::string> site_names() const override { return sites_.names(); }
    SiteRef site(std::string_view name) const override { return sites_.get(name); }
    size_t site_count() const override { return sites_.size(); }
    void subscribe(std::function<void(const Change&)> listener) override { sites_.subscribe(std::move(listener)); }

    std::string describe() const override {
        std::lock_guard lock(mu_);
        std::string out = "backend: etcd\n";
        out += "endpoints: " + join(client_->endpoints(), " ") + "\n";
        out += "prefix: " + options_.prefix + "\n";
        out += "host: " + host_ + (options_.read_only ? " (read-only: not registered)" : !options_.register_host ? " (not registered)" : "") + "\n";
        out += "connected: " + std::string(connected_ ? "yes" : "no") +
               (connected_ ? "" : " since " + ns_text(disconnected_at_) + ": " + connection_error_) + "\n";
        out += "revision: " + std::to_string(view_.revision) + "\n";
        for (const auto& [h, labels] : view_.hosts) {
            std::string line = "member: " + h + " " + (view_.alive.contains(h) ? "alive" : "gone");
            for (const auto& l : labels) line += " label:" + l;
            out += line + "\n";
        }
        for (const auto& [key, why] : view_.unreadable) out += "unreadable: " + printable(key) + ": " + why + "\n";
        return out;
    }

    Outcome create_site(std::string_view name) override { return create_sites({NewSite{std::string(name), {}}}).front(); }

    // One transaction a site: whole or not at all, and the next site's claims see this one's.
    std::vector<Outcome> create_sites(const std::vector<NewSite>& wanted) override {
        std::vector<Outcome> out;
        out.reserve(wanted.size());
        for (const auto& w : wanted) out.push_back(create_one(w));
        return out;
    }

    Outcome remove_site(std::string_view name) override {
        if (options_.read_only) return read_only_refusal();
        auto guard = commit_lock(name);
        for (int attempt = 0; attempt < kWriteAttempts; ++attempt) {
            const auto base = base_of(name);
            if (!base) return no_site(name);
            etcd::TxnRequest txn;
            txn.compare.push_back(mod_is(keys_.site(name), base->mod));
            txn.success.push_back(del(keys_.site(name)));
            for (const auto& d : held_domains(*base->desired)) txn.success.push_back(del(keys_.domain(d)));
            txn.success.push_back(Op{Op::Kind::DeleteRange, keys_.actuals(name), {}, etcd::prefix_end(keys_.actuals(name))});
            txn.success.push_back(del(keys_.refresh(name)));
            txn.failure.push_back(get(keys_.site(name)));
            const auto result = client_->txn(txn);
            if (const Error* e = error_of(result)) return unsettled(name, keys_.site(name), std::nullopt, *e, "removing the site");
            const auto& r = std::get<etcd::TxnResponse>(result);
            if (r.succeeded) {
                std::vector<etcd::Event> events{deleted(keys_.site(name), r.revision)};
                for (const auto& d : held_domains(*base->desired)) events.push_back(deleted(keys_.domain(d), r.revision));
                {
                    std::lock_guard lock(mu_);
                    if (const auto a = view_.actuals.find(name); a != view_.actuals.end())
                        for (const auto& [h, _] : a->second) events.push_back(deleted(keys_.actual(name, h), r.revision));
                    refusals_.erase(std::string(name));
                    notes_.erase(std::string(name));
                }
                apply_and_publish(events, r.revision);
                return Outcome::success();
            }
            learn(r, txn.failure);
        }
        return busy(name);
    }

    Outcome write_field(std::string_view name, std::string_view field, std::string_view raw) override {
        return set_field(name, field, raw, nullptr);
    }

    Outcome restore_field(std::string_view name, std::string_view field, std::string_view value,
                          std::string_view expected) override {
        return set_field(name, field, value, &expected);
    }

    Outcome set_field_time(std::string_view name, std::string_view field, Timestamp when) override {
        if (options_.read_only) return read_only_refusal();
        if (Outcome out = check_field_time(field); !out.ok()) return out;
        auto guard = commit_lock(name);
        for (int attempt = 0; attempt < kWriteAttempts; ++attempt) {
            const auto base = base_of(name);
            if (!base) return no_site(name);
            if (base->desired->field(FieldName::known(field)).changed == when) return Outcome::success();
            SiteRecord next = *base->desired;
            next.desired[std::string(field)].changed = when;
            const auto put = put_site(name, *base, next, {});
            if (put.retry) continue;
            return put.outcome;
        }
        return busy(name);
    }

    Outcome report(std::string_view name, uint64_t generation, const ActualState& actual) override {
        if (options_.read_only) return read_only_refusal();
        std::unique_lock lock(mu_);
        const auto it = view_.sites.find(name);
        if (it == view_.sites.end() || !it->second.desired) return no_site(name);
        const SiteRecord& desired = *it->second.desired;
        const ActualState previous = own_actual(std::string(name));
        if (generation < previous.generation) return Outcome::success();  // a slower, older run: fenced
        if (generation > desired.generation)
            return Outcome::fail(EINVAL, "site '" + desired.name + "' is at generation " + std::to_string(desired.generation) +
                                             ", not " + std::to_string(generation));
        // A report built from the record it read carries the refusal shown there (kept on this
        // host only, never sent); an error of the reconciler's own replaces it, as in the file store.
        ActualState incoming = actual;
        if (const auto r = refusals_.find(std::string(name)); r != refusals_.end() && incoming.error == r->second) {
            incoming.error.clear();
            incoming.error_from_write = false;
        } else if (!incoming.error.empty()) {
            refusals_.erase(std::string(name));
        }
        ActualState next = reported_actual(previous, generation, incoming, Clock::now());
        const int64_t incarnation = it->second.create;
        // Shown at once, whether or not etcd takes it: it is what this host serves. An unsent
        // report is sent again by the keeper until etcd takes it or the site goes.
        unsent_[std::string(name)] = Unsent{incarnation, next};
        lock.unlock();
        republish({std::string(name)});
        return send_report(std::string(name), incarnation, next);
    }

private:
    // What a write starts from: the site's entry in the view, copied out of the lock.
    using Base = ClusterView::SiteEntry;
    struct Unsent {
        int64_t incarnation = 0;
        ActualState actual;
    };
    // A write whose outcome etcd did not tell: settled by reading the key back.
    struct Unsettled {
        std::string site, key;
        std::optional<std::string> value;  // what the write put; nullopt: it deleted the key
        std::string what;
        Timestamp when;
    };

    static Outcome read_only_refusal() { return Outcome::fail(EROFS, "this mount is read-only"); }

    Outcome busy(std::string_view name) const {
        return Outcome::fail(EAGAIN, "site '" + std::string(name) + "' kept changing on other hosts while this write was tried " +
                                         std::to_string(kWriteAttempts) + " times; nothing changed");
    }

    static Compare mod_is(std::string key, int64_t mod) {
        return Compare{std::move(key), Compare::Target::ModRevision, Compare::Result::Equal, mod, {}};
    }
    static Compare absent(std::string key) {
        return Compare{std::move(key), Compare::Target::Version, Compare::Result::Equal, 0, {}};
    }
    static Op del(std::string key) { return Op{Op::Kind::DeleteRange, std::move(key), {}, {}}; }
    static Op get(std::string key) { return Op{Op::Kind::Range, std::move(key), {}, {}}; }
    static Op put(std::string key, std::string value) { return Op{Op::Kind::Put, std::move(key), std::move(value), {}}; }
    static etcd::Event deleted(std::string key, int64_t revision) {
        etcd::Event e{etcd::Event::Type::Delete, {}};
        e.kv.key = std::move(key);
        e.kv.mod_revision = revision;
        return e;
    }
    static etcd::Event stored(std::string key, std::string value, int64_t revision, int64_t create) {
        etcd::Event e{etcd::Event::Type::Put, {}};
        e.kv.key = std::move(key);
        e.kv.value = std::move(value);
        e.kv.mod_revision = revision;
        e.kv.create_revision = create;
        return e;
    }

    std::optional<Base> base_of(std::string_view name) const {
        std::lock_guard lock(mu_);
        const auto it = view_.sites.find(name);
        if (it == view_.sites.end() || !it->second.desired) return std::nullopt;
        return it->second;
    }

    // The domains the cache says this site holds a claim for.
    std::vector<std::string> held_domains(const SiteRecord& s) const {
        std::lock_guard lock(mu_);
        std::vector<std::string> out;
        for (const auto& d : domains_of(s))
            if (const auto it = view_.claims.find(d); it != view_.claims.end() && it->second.site == s.name) out.push_back(d);
        return out;
    }

    struct Claims {
        std::vector<Compare> guards;
        std::vector<Op> puts, failure_reads;
        std::optional<Outcome> refused;  // EEXIST: another site serves one
    };
    // Claims for the domains of `next` that `site` does not hold yet. A claim left by a site that
    // no longer lists the domain (a host died between a change and its cleanup) is taken over,
    // guarded by the claim's own revision.
    Claims claims_for(const std::string& site, const std::set<std::string>& wanted) const {
        std::lock_guard lock(mu_);
        Claims c;
        for (const auto& d : wanted) {
            const auto it = view_.claims.find(d);
            if (it == view_.claims.end()) {
                c.guards.push_back(absent(keys_.domain(d)));
            } else if (it->second.site == site) {
                continue;
            } else {
                // Stale only when this host's view of the owner is at least as new as the claim
                // (a site and its claims change in one txn) and the owner no longer lists it;
                // the owner's revision guards that view.
                const std::string& owner_name = it->second.site;
                const std::string owner_key = keys_.site(owner_name);
                const auto owner = view_.sites.find(owner_name);
                const bool owner_known = view_.known(owner_key) >= it->second.mod;
                if (!owner_known || (owner != view_.sites.end() && owner->second.desired &&
                                     domains_of(*owner->second.desired).contains(d))) {
                    c.refused = Outcome::fail(EEXIST, "domain '" + d + "' is already served by site '" + owner_name + "'");
                    return c;
                }
                c.guards.push_back(mod_is(keys_.domain(d), it->second.mod));
                c.guards.push_back(owner == view_.sites.end() ? absent(owner_key) : mod_is(owner_key, owner->second.mod));
                c.failure_reads.push_back(get(owner_key));
            }
            c.puts.push_back(put(keys_.domain(d), site));
            c.failure_reads.push_back(get(keys_.domain(d)));
        }
        return c;
    }

    struct PutResult {
        Outcome outcome;
        bool retry = false;  // the guard failed: the cache has learnt the newer state, try again
    };

    // Puts `next` over `base` with its new domain claims, and drops the claims of `dropped` (in a
    // second transaction when one would exceed etcd's operation limit: a claim left behind is
    // taken over by the next site that wants the domain).
    PutResult put_site(std::string_view name, const Base& base, const SiteRecord& next, const std::set<std::string>& dropped) {
        Claims claims = claims_for(std::string(name), domains_of(next));
        if (claims.refused) return {*claims.refused, false};
        const std::string value = render_desired_value(next);
        etcd::TxnRequest txn;
        txn.compare.push_back(mod_is(keys_.site(name), base.mod));
        txn.compare.insert(txn.compare.end(), claims.guards.begin(), claims.guards.end());
        txn.success.push_back(put(keys_.site(name), value));
        txn.success.insert(txn.success.end(), claims.puts.begin(), claims.puts.end());
        std::vector<std::string> drop_now, drop_later;
        for (const auto& d : dropped) (txn.success.size() + drop_now.size() < kMaxTxnOps ? drop_now : drop_later).push_back(d);
        for (const auto& d : drop_now) txn.success.push_back(del(keys_.domain(d)));
        txn.failure.push_back(get(keys_.site(name)));
        txn.failure.insert(txn.failure.end(), claims.failure_reads.begin(), claims.failure_reads.end());
        const auto result = client_->txn(txn);
        if (const Error* e = error_of(result)) return {unsettled(name, keys_.site(name), value, *e, "the change"), false};
        const auto& r = std::get<etcd::TxnResponse>(result);
        if (!r.succeeded) {
            learn(r, txn.failure);
            return {Outcome::success(), true};
        }
        std::vector<etcd::Event> events{stored(keys_.site(name), value, r.revision, base.create)};
        for (const auto& p : claims.puts) events.push_back(stored(p.key, p.value, r.revision, r.revision));
        for (const auto& d : drop_now) events.push_back(deleted(keys_.domain(d), r.revision));
        {
            std::lock_guard lock(mu_);
            notes_.erase(std::string(name));
        }
        apply_and_publish(events, r.revision);
        if (!drop_later.empty()) drop_claims(std::string(name), drop_later);
        return {Outcome::success(), false};
    }

    // Best effort: a claim not dropped now is taken over later (claims_for).
    void drop_claims(const std::string& site, const std::vector<std::string>& domains) {
        for (size_t i = 0; i < domains.size(); i += kMaxTxnOps - 1) {
            etcd::TxnRequest txn;
            for (size_t j = i; j < std::min(domains.size(), i + kMaxTxnOps - 1); ++j) {
                txn.compare.push_back(Compare{keys_.domain(domains[j]), Compare::Target::Value, Compare::Result::Equal, 0, site});
                txn.success.push_back(del(keys_.domain(domains[j])));
            }
            const auto result = client_->txn(txn);
            if (const Error* e = error_of(result)) spdlog::warn("site {}: old domain claims left for later: {}", site, e->message);
        }
    }

    Outcome set_field(std::string_view name, std::string_view field, std::string_view raw, const std::string_view* expected) {
        if (options_.read_only) return read_only_refusal();
        auto guard = commit_lock(name);
        for (int attempt = 0; attempt < kWriteAttempts; ++attempt) {
            const auto base = base_of(name);
            if (!base) return no_site(name);
            const SiteRef shown = site(name);
            if (!shown) return no_site(name);
            FieldEdit edit = edit_field(*shown, field, raw, expected, options_.policy, Clock::now());
            switch (edit.kind) {
            case FieldEdit::Kind::Refused:
                if (edit.show_refusal) show_refusal(name, field, edit.outcome.reason);
                return edit.outcome;
            case FieldEdit::Kind::Unchanged:
                return announce_refresh(edit, *shown);
            case FieldEdit::Kind::ClearsRefusal:
                clear_refusal(name);
                return announce_refresh(edit, *shown);
            case FieldEdit::Kind::Changed:
                break;
            }
            // What the shared record holds: this host's view (its actual state, its refusals) stays out.
            SiteRecord next = *base->desired;
            next.generation = base->desired->generation + 1;
            // A redeploy is the generation alone.
            if (is_desired_field(field)) next.desired[std::string(field)] = edit.next->desired[std::string(field)];
            std::set<std::string> dropped;
            if (edit.domains_changed) {
                dropped = domains_of(*base->desired);
                for (const auto& d : domains_of(next)) dropped.erase(d);
            }
            const auto put = put_site(name, *base, next, dropped);
            if (put.retry) continue;
            if (put.outcome.ok()) {
                if (!expected) clear_refusal(name);
            } else if (!expected && !put.outcome.unknown()) {
                show_refusal(name, field, put.outcome.reason);
            }
            return put.outcome;
        }
        return busy(name);
    }

    Outcome create_one(const NewSite& w) {
        if (options_.read_only) return read_only_refusal();
        auto made = make_site(w, options_.policy, Clock::now());
        if (!made.ok()) return made.outcome;
        auto guard = commit_lock(w.name);
        for (int attempt = 0; attempt < kWriteAttempts; ++attempt) {
            if (base_of(w.name)) return Outcome::fail(EEXIST, "site '" + w.name + "' already exists");
            Claims claims = claims_for(w.name, domains_of(made.record));
            if (claims.refused) return *claims.refused;
            const std::string value = render_desired_value(made.record);
            etcd::TxnRequest txn;
            txn.compare.push_back(absent(keys_.site(w.name)));
            txn.compare.insert(txn.compare.end(), claims.guards.begin(), claims.guards.end());
            txn.success.push_back(put(keys_.site(w.name), value));
            txn.success.insert(txn.success.end(), claims.puts.begin(), claims.puts.end());
            txn.failure.push_back(get(keys_.site(w.name)));
            txn.failure.insert(txn.failure.end(), claims.failure_reads.begin(), claims.failure_reads.end());
            const auto result = client_->txn(txn);
            if (const Error* e = error_of(result)) return unsettled(w.name, keys_.site(w.name), value, *e, "creating the site");
            const auto& r = std::get<etcd::TxnResponse>(result);
            if (r.succeeded) {
                std::vector<etcd::Event> events{stored(keys_.site(w.name), value, r.revision, r.revision)};
                for (const auto& p : claims.puts) events.push_back(stored(p.key, p.value, r.revision, r.revision));
                apply_and_publish(events, r.revision);
                return Outcome::success();
            }
            learn(r, txn.failure);
        }
        return busy(w.name);
    }

    // A write etcd did not answer: Unknown is remembered, shown in the site's status and settled
    // by the keeper; anything else changed nothing.
    Outcome unsettled(std::string_view site, std::string key, std::optional<std::string> value, const Error& e, std::string what) {
        const Outcome out = write_failed(e);
        if (out.unknown()) {
            {
                std::lock_guard lock(mu_);
                unsettled_.push_back(Unsettled{std::string(site), std::move(key), std::move(value), what, Clock::now()});
                notes_[std::string(site)] = what + " at " + ns_text(Clock::now()) + " got no answer from etcd (" + e.message +
                                            "); it may or may not have been made; reading it back once etcd answers";
            }
            republish({std::string(site)});
        }
        return out;
    }

    // A failed guard's reads: what the cache did not know yet. A key the read did not return is
    // absent as of the txn's revision.
    void learn(const etcd::TxnResponse& r, const std::vector<Op>& reads) {
        std::vector<etcd::Event> events;
        for (size_t i = 0; i < reads.size() && i < r.responses.size(); ++i) {
            if (r.responses[i].kvs.empty())
                events.push_back(deleted(reads[i].key, r.revision));
            else
                for (const auto& kv : r.responses[i].kvs) events.push_back(etcd::Event{etcd::Event::Type::Put, kv});
        }
        apply_and_publish(events, 0);
    }

    Outcome send_report(const std::string& name, int64_t incarnation, const ActualState& actual) {
        const std::string value = render_actual_value(actual);
        etcd::TxnRequest txn;
        // Only about the incarnation it was made for: a report must not outlive its site.
        txn.compare.push_back(Compare{keys_.site(name), Compare::Target::CreateRevision, Compare::Result::Equal, incarnation, {}});
        txn.success.push_back(put(keys_.actual(name, host_), value));
        const auto result = client_->txn(txn);
        if (const Error* e = error_of(result)) return Outcome::fail(e->kind == Error::Kind::Auth ? EACCES : kStoreUnreachableErrno,
                                                                    "the report is shown here and sent when etcd answers: " + e->message);
        const auto& r = std::get<etcd::TxnResponse>(result);
        {
            std::lock_guard lock(mu_);
            if (const auto it = unsent_.find(name); it != unsent_.end() && it->second.incarnation == incarnation &&
                                                    render_actual_value(it->second.actual) == value)
                unsent_.erase(it);
        }
        if (r.succeeded) apply_and_publish({stored(keys_.actual(name, host_), value, r.revision, 0)}, r.revision);
        return Outcome::success();
    }

    void show_refusal(std::string_view name, std::string_view field, const std::string& reason) {
        {
            std::lock_guard lock(mu_);
            const SiteRef cur = sites_.get(name);
            if (!cur) return;
            refusals_[std::string(name)] = with_refusal(*cur, field, reason, Clock::now())->actual.error;
        }
        republish({std::string(name)});
    }

    // A refresh asks every host (docs/cluster.md): the put of refresh/NAME, naming this host, is
    // the request, and each other host's watch hears it. This one asks at once rather than waiting
    // for its own event, which it then passes over.
    Outcome announce_refresh(const FieldEdit& edit, const SiteRecord& site) {
        if (!edit.refresh) return Outcome::success();
        etcd::TxnRequest txn;
        txn.compare.push_back(Compare{keys_.site(site.name), Compare::Target::Version, Compare::Result::Greater, 0, {}});
        txn.success.push_back(put(keys_.refresh(site.name), host_));
        const auto result = client_->txn(txn);
        if (const Error* e = error_of(result))
            return Outcome::fail(e->kind == Error::Kind::Auth ? EACCES : kStoreUnreachableErrno,
                                 "etcd did not take the refresh (" + e->message +
                                     "), so this host did not ask either (had etcd's answer been lost, the other hosts "
                                     "may have heard it); write it again once etcd answers");
        if (!std::get<etcd::TxnResponse>(result).succeeded) return no_site(site.name);
        sites_.emit({Change::Kind::Refresh, site.name, site.generation});
        return Outcome::success();
    }

    void clear_refusal(std::string_view name) {
        bool had;
        {
            std::lock_guard lock(mu_);
            had = refusals_.erase(std::string(name)) > 0;
        }
        if (had) republish({std::string(name)});
    }

    // This host's actual state for a site: an unsent report, else what etcd holds. Call with mu_.
    ActualState own_actual(const std::string& name) const {
        if (const auto u = unsent_.find(name); u != unsent_.end()) return u->second.actual;
        if (const auto a = view_.actuals.find(name); a != view_.actuals.end())
            if (const auto h = a->second.find(host_); h != a->second.end()) return h->second.actual;
        return {};
    }

    // The record a reader sees, composed from the view. Call with mu_.
    SiteRef compose(const std::string& name) const {
        const auto it = view_.sites.find(name);
        if (it == view_.sites.end() || !it->second.desired) return nullptr;
        auto rec = std::make_shared<SiteRecord>(*it->second.desired);
        rec->reports.clear();
        rec->store_note.clear();
        rec->actual = own_actual(name);
        if (const auto r = refusals_.find(name); r != refusals_.end() && rec->actual.error.empty()) {
            rec->actual.error = r->second;
            rec->actual.error_from_write = true;
        }
        const auto actuals = view_.actuals.find(name);
        std::set<std::string> hosts;
        for (const auto& [h, _] : view_.hosts) hosts.insert(h);
        if (actuals != view_.actuals.end())
            for (const auto& [h, _] : actuals->second) hosts.insert(h);
        for (const auto& h : hosts) {
            const auto labels = view_.hosts.find(h);
            static const std::vector<std::string> kNone;
            if (!placed_on(*rec, h, labels == view_.hosts.end() ? kNone : labels->second)) continue;
            HostReport report{h, view_.alive.contains(h), {}};
            if (h == host_)
                report.actual = rec->actual;
            else if (actuals != view_.actuals.end())
                if (const auto a = actuals->second.find(h); a != actuals->second.end()) report.actual = a->second.actual;
            rec->reports.push_back(std::move(report));
        }
        if (const auto n = notes_.find(name); n != notes_.end()) rec->store_note = n->second;
        if (!connected_)
            rec->store_note = (rec->store_note.empty() ? "" : rec->store_note + "; ") + "etcd unreachable since " +
                              ns_text(disconnected_at_) + " (" + connection_error_ + "): showing revision " +
                              std::to_string(view_.revision);
        return rec;
    }

    static bool same_reports(const SiteRecord& a, const SiteRecord& b) {
        if (a.reports.size() != b.reports.size()) return false;
        for (size_t i = 0; i < a.reports.size(); ++i)
            if (a.reports[i].host != b.reports[i].host || a.reports[i].alive != b.reports[i].alive ||
                render_actual_value(a.reports[i].actual) != render_actual_value(b.reports[i].actual))
                return false;
        return true;
    }

    // Publishes the composed records of `names` (all when empty) and emits what changed.
    void republish(const std::set<std::string>& names, bool all = false) {
        std::vector<Change> changes;
        {
            std::lock_guard lock(mu_);
            std::set<std::string> todo = names;
            if (all) {
                for (const auto& [n, _] : view_.sites) todo.insert(n);
                for (const auto& n : sites_.names()) todo.insert(n);
            }
            for (const auto& n : todo) {
                const SiteRef before = sites_.get(n);
                SiteRef after = compose(n);
                if (!after) {
                    if (before) {
                        sites_.erase(n);
                        changes.push_back({Change::Kind::Removed, n, before->generation});
                    }
                    continue;
                }
                if (!before || before->created != after->created) {
                    if (before) changes.push_back({Change::Kind::Removed, n, before->generation});
                    changes.push_back({Change::Kind::Created, n, after->generation});
                } else if (before->generation != after->generation) {
                    changes.push_back({Change::Kind::Desired, n, after->generation});
                } else if (!same_desired(*before, *after)) {
                    changes.push_back({Change::Kind::Times, n, after->generation});
                } else if (!same_actual(*before, *after) || !same_reports(*before, *after) || before->store_note != after->store_note) {
                    changes.push_back({Change::Kind::Actual, n, after->generation});
                } else {
                    view_.sites[n].desired = before;
                    continue;
                }
                view_.sites[n].desired = after;
                sites_.publish(std::move(after));
            }
        }
        for (const auto& c : changes) sites_.emit(c);
    }

    // Applies events to the view (each only when newer than what the view has of its key) and
    // republishes the sites they touch. `revision`: everything up to it is known (0: unknown).
    void apply_and_publish(const std::vector<etcd::Event>& events, int64_t revision) {
        std::set<std::string> touched;
        std::vector<Change> refreshes;
        bool everyone = false;
        {
            std::lock_guard lock(mu_);
            for (const auto& e : events) {
                const KeyMeaning m = meaning(options_.prefix, e.kv.key);
                if (m.kind != KeyMeaning::Kind::Refresh)
                    apply(m, e, touched, everyone);
                else if (const auto r = refresh_asked(m, e))
                    refreshes.push_back(*r);
            }
            view_.revision = std::max(view_.revision, revision);
        }
        republish(touched, everyone);
        for (const Change& c : refreshes) sites_.emit(c);
    }

    // Another host's refresh of a site this view has, heard once: a list does not replay old
    // requests (they are events, not state), and this host's own was answered when it was made.
    // Call with mu_.
    std::optional<Change> refresh_asked(const KeyMeaning& m, const etcd::Event& e) {
        if (e.type != etcd::Event::Type::Put || e.kv.value == host_ || !first_sight(e)) return std::nullopt;
        const auto it = view_.sites.find(m.site);
        if (it == view_.sites.end() || !it->second.desired) return std::nullopt;
        return Change{Change::Kind::Refresh, m.site, it->second.desired->generation};
    }

    // Whether the view has not had `e` yet (a list or an earlier event of its key brought it or
    // something newer), marking it had. Call with mu_.
    bool first_sight(const etcd::Event& e) {
        if (e.kv.mod_revision <= view_.listed) return false;
        int64_t& seen = view_.seen[e.kv.key];
        if (e.kv.mod_revision <= seen) return false;
        seen = e.kv.mod_revision;
        return true;
    }

    // Call with mu_.
    void apply(const KeyMeaning& m, const etcd::Event& e, std::set<std::string>& touched, bool& everyone) {
        // Republished even when the view has the event already: the watch thread may have
        // applied it and not published it yet, and a writer must see its write when it returns.
        if (!m.site.empty()) touched.insert(m.site);
        if (m.kind == KeyMeaning::Kind::Host || m.kind == KeyMeaning::Kind::Alive) everyone = true;
        if (first_sight(e)) apply_to(view_, m, e);
    }

    // Puts one event into `view`, which has no newer value of its key.
    void apply_to(ClusterView& view, const KeyMeaning& m, const etcd::Event& e) const {
        const bool put = e.type == etcd::Event::Type::Put;
        view.unreadable.erase(e.kv.key);
        try {
            switch (m.kind) {
            case KeyMeaning::Kind::Site:
                if (!put) {
                    view.sites.erase(m.site);
                    break;
                }
                view.sites[m.site] = ClusterView::SiteEntry{
                    e.kv.mod_revision, e.kv.create_revision,
                    std::make_shared<const SiteRecord>(parse_desired_value(e.kv.value, m.site, e.kv.key))};
                break;
            case KeyMeaning::Kind::Actual:
                if (!put) {
                    if (const auto it = view.actuals.find(m.site); it != view.actuals.end()) {
                        it->second.erase(m.host);
                        if (it->second.empty()) view.actuals.erase(it);
                    }
                    break;
                }
                view.actuals[m.site][m.host] = ClusterView::ActualEntry{e.kv.mod_revision, parse_actual_value(e.kv.value, e.kv.key)};
                break;
            case KeyMeaning::Kind::Domain:
                if (put)
                    view.claims[m.domain] = ClusterView::ClaimEntry{e.kv.mod_revision, e.kv.value};
                else
                    view.claims.erase(m.domain);
                break;
            case KeyMeaning::Kind::Host:
                if (put)
                    view.hosts[m.host] = split_hosts(e.kv.value);  // labels, blank-separated as a hosts value is
                else
                    view.hosts.erase(m.host);
                break;
            case KeyMeaning::Kind::Alive:
                if (put)
                    view.alive.insert(m.host);
                else
                    view.alive.erase(m.host);
                break;
            case KeyMeaning::Kind::Refresh:  // a request, not state: refresh_asked
            case KeyMeaning::Kind::Other:
                break;
            }
        } catch (const StoreError& err) {
            // Left out rather than guessed at; describe() names it, and the next good value heals it.
            if (m.kind == KeyMeaning::Kind::Site) view.sites.erase(m.site);
            view.unreadable[e.kv.key] = err.what();
            spdlog::error("etcd value left out: {}", err.what());
        }
    }

    // Lists the prefix (in pages, at one revision) into a fresh view, then watches from the
    // list's revision + 1. Returns why not, or "".
    std::string relist() {
        // The old watch's late events must not land on the new list.
        watch_.reset();
        // Each page goes into the new view as it arrives, so a big prefix is never held twice.
        // `seen` stays empty: every event up to the list's revision is dropped as listed already.
        ClusterView fresh;
        etcd::RangeRequest req{options_.prefix, etcd::prefix_end(options_.prefix)};
        req.limit = kListPage;
        for (;;) {
            auto result = client_->range(req);
            if (const Error* e = error_of(result)) return e->message;
            auto& r = std::get<etcd::RangeResponse>(result);
            if (req.revision == 0) req.revision = r.revision;
            const bool last = !r.more || r.kvs.empty();
            if (!last) req.key = r.kvs.back().key + '\0';  // before the keys move into the view
            for (auto& kv : r.kvs) {
                const KeyMeaning m = meaning(options_.prefix, kv.key);
                apply_to(fresh, m, etcd::Event{etcd::Event::Type::Put, std::move(kv)});
            }
            if (last) break;
        }
        {
            std::lock_guard lock(mu_);
            view_ = std::move(fresh);
            view_.revision = view_.listed = req.revision;
            connected_ = true;
        }
        republish({}, true);
        start_watch(req.revision + 1);
        return {};
    }

    void start_watch(int64_t from) {
        watch_.reset();
        etcd::WatchCallbacks callbacks;
        callbacks.events = [this](const std::vector<etcd::Event>& events, int64_t revision) { apply_and_publish(events, revision); };
        callbacks.ended = [this](const Error& e) {
            spdlog::warn("etcd watch ended: {}; listing {} again", e.message, options_.prefix);
            wake_keeper(true);
        };
        callbacks.connection = [this](bool up) { set_connected(up, up ? "" : "the watch stream was lost"); };
        watch_ = client_->watch(options_.prefix, from, std::move(callbacks));
    }

    void set_connected(bool up, const std::string& why) {
        {
            std::lock_guard lock(mu_);
            if (connected_ == up) return;
            connected_ = up;
            if (!up) {
                disconnected_at_ = Clock::now();
                connection_error_ = why;
            }
        }
        if (up)
            spdlog::info("etcd: connected again");
        else
            spdlog::warn("etcd: unreachable ({})", why);
        republish({}, true);
        if (up) wake_keeper(false);
    }

    // The view learns of this host's own keys at once, not a watch event later: a mount that
    // answers must not show its own host gone.
    std::string register_host() {
        const std::string labels = join(options_.labels, " ");
        const auto put = client_->put(keys_.host(host_), labels);
        if (const Error* e = error_of(put)) return e->message;
        apply_and_publish({stored(keys_.host(host_), labels, std::get<int64_t>(put), 0)}, 0);
        return renew_lease();
    }

    std::string renew_lease() {
        const auto grant = client_->lease_grant(options_.lease_ttl.count());
        if (const Error* e = error_of(grant)) return e->message;
        const int64_t lease = std::get<int64_t>(grant);
        const std::string started = ns_text(Clock::now());
        const auto put = client_->put(keys_.alive(host_), started, lease);
        if (const Error* e = error_of(put)) return e->message;
        lease_ = lease;
        apply_and_publish({stored(keys_.alive(host_), started, std::get<int64_t>(put), 0)}, 0);
        return {};
    }

    void wake_keeper(bool relist) {
        {
            std::lock_guard lock(keeper_mu_);
            relist_ = relist_ || relist;
        }
        keeper_cv_.notify_all();
    }

    // The keeper thread: relists after a compaction, keeps the lease, sends unsent reports and
    // settles writes of unknown outcome. One thread, so none of these races another.
    void keep() {
        const auto tick = std::max<std::chrono::milliseconds>(std::chrono::milliseconds(200),
                                                              std::chrono::duration_cast<std::chrono::milliseconds>(options_.lease_ttl) / 3);
        auto next_keepalive = std::chrono::steady_clock::now() + tick;
        std::unique_lock lock(keeper_mu_);
        while (!stopping_) {
            keeper_cv_.wait_for(lock, std::chrono::milliseconds(500));
            if (stopping_) break;
            const bool relist_now = std::exchange(relist_, false);
            lock.unlock();
            if (relist_now)
                if (std::string why = relist(); !why.empty()) {
                    set_connected(false, why);
                    wake_keeper(true);
                }
            if (!options_.read_only && options_.register_host && std::chrono::steady_clock::now() >= next_keepalive) {
                next_keepalive = std::chrono::steady_clock::now() + tick;
                keep_lease();
            }
            settle();
            resend();
            lock.lock();
        }
    }

    void keep_lease() {
        const auto ttl = lease_ == 0 ? etcd::Result<int64_t>(int64_t{0}) : client_->lease_keep_alive(lease_);
        if (const Error* e = error_of(ttl)) {
            set_connected(false, e->message);
            return;
        }
        set_connected(true, "");
        if (std::get<int64_t>(ttl) > 0) return;
        // The lease expired (etcd was out of reach longer than its TTL): register anew.
        if (std::string why = register_host(); !why.empty()) spdlog::warn("etcd: cannot renew host {}'s lease: {}", host_, why);
    }

    void settle() {
        std::vector<Unsettled> todo;
        {
            std::lock_guard lock(mu_);
            todo.swap(unsettled_);
        }
        for (auto& u : todo) {
            const auto result = client_->range(etcd::RangeRequest{u.key});
            if (error_of(result)) {
                std::lock_guard lock(mu_);
                unsettled_.push_back(std::move(u));
                continue;
            }
            const auto& r = std::get<etcd::RangeResponse>(result);
            const bool applied = u.value ? (!r.kvs.empty() && r.kvs.front().value == *u.value) : r.kvs.empty();
            {
                std::lock_guard lock(mu_);
                notes_[u.site] = u.what + " at " + ns_text(u.when) + " got no answer from etcd; read back at revision " +
                                 std::to_string(r.revision) + ": " + (applied ? "it was made" : "it was not made");
            }
            learn(etcd::TxnResponse{r.revision, false, {r}}, {get(u.key)});
            republish({u.site});
        }
    }

    void resend() {
        std::map<std::string, Unsent> todo;
        {
            std::lock_guard lock(mu_);
            todo = unsent_;
        }
        for (const auto& [name, u] : todo)
            if (!send_report(name, u.incarnation, u.actual).ok()) break;  // etcd still away: next tick
    }

    std::unique_lock<std::mutex> commit_lock(std::string_view name) {
        std::mutex* m;
        {
            std::lock_guard lock(commit_locks_mu_);
            auto& slot = commit_locks_[std::string(name)];
            if (!slot) slot = std::make_unique<std::mutex>();
            m = slot.get();  // never erased, as in the file store
        }
        return std::unique_lock(*m);
    }

    const EtcdStoreOptions options_;
    const Keys keys_;
    const std::string host_;
    std::unique_ptr<etcd::Client> client_;
    SiteMap sites_;

    // Lock order: a site's commit lock, then mu_, then the site map's; listeners run with none.
    mutable std::mutex mu_;
    ClusterView view_;
    std::map<std::string, std::string> refusals_;  // this host's refused writes, by site
    std::map<std::string, std::string> notes_;     // unknown outcomes, by site
    std::map<std::string, Unsent> unsent_;
    std::vector<Unsettled> unsettled_;
    bool connected_ = true;
    Timestamp disconnected_at_{};
    std::string connection_error_;

    std::mutex commit_locks_mu_;
    std::unordered_map<std::string, std::unique_ptr<std::mutex>> commit_locks_;

    int64_t lease_ = 0;  // the keeper's (and the constructor's before it starts)

    std::mutex keeper_mu_;
    std::condition_variable keeper_cv_;
    bool stopping_ = false;
    bool relist_ = false;
    std::thread keeper_;
    // Last, so it goes first when a constructor that started it throws: its callbacks use every
    // member above (wake_keeper the keeper's lock).
    std::unique_ptr<etcd::Watch> watch_;  // replaced only by the constructor and the keeper
};

}  // namespace

std::unique_ptr<Store> open_etcd_store(const EtcdStoreOptions& options) {
    std::unique_ptr<etcd::Client> client;
    try {
        client = etcd::Client::connect(options.client);
    } catch (const std::exception& e) {
        throw StoreError(std::string("etcd: ") + e.what());
    }
    return std::make_unique<EtcdStore>(options, std::move(client));
}

std::string forget_etcd_host(const EtcdStoreOptions& options, const std::string& host) {
    std::unique_ptr<etcd::Client> client;
    try {
        client = etcd::Client::connect(options.client);
    } catch (const std::exception& e) {
        return e.what();
    }
    const Keys keys{options.prefix};
    const auto alive = client->range(etcd::RangeRequest{keys.alive(host)});
    if (const Error* e = error_of(alive)) return e->message;
    if (!std::get<etcd::RangeResponse>(alive).kvs.empty()) return "host '" + host + "' is alive: stop its sitesfs first";
    // Reports are found by listing: one key per site under actual/.
    etcd::RangeRequest list{options.prefix + "actual/", etcd::prefix_end(options.prefix + "actual/")};
    list.keys_only = true;
    const auto reports = client->range(list);
    if (const Error* e = error_of(reports)) return e->message;
    std::vector<Op> ops{Op{Op::Kind::DeleteRange, keys.host(host), {}, {}}};
    for (const auto& kv : std::get<etcd::RangeResponse>(reports).kvs)
        if (const KeyMeaning m = meaning(options.prefix, kv.key); m.kind == KeyMeaning::Kind::Actual && m.host == host)
            ops.push_back(Op{Op::Kind::DeleteRange, kv.key, {}, {}});
    for (size_t i = 0; i < ops.size(); i += kMaxTxnOps) {
        etcd::TxnRequest txn;
        txn.success.assign(ops.begin() + static_cast<long>(i), ops.begin() + static_cast<long>(std::min(ops.size(), i + kMaxTxnOps)));
        const auto result = client->txn(txn);
        if (const Error* e = error_of(result)) return e->message;
    }
    return {};
}

}  // namespace sitesfs
