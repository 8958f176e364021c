// What a change does to a site's record, decided once for every store: a new site's first record,
// a field's write or restore, a refusal shown in the status. Pure: the stores add the locking,
// the durability and the domain claims (their own: a lock here, a transaction in etcd).
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "schemas/validators.hpp"
#include "store/store.hpp"

namespace sitesfs {

// The domains a record serves (its `domain` value split).
std::set<std::string> domains_of(const SiteRecord& site);

Outcome no_site(std::string_view name);

// A new site's record (generation 1) with its values, each trimmed and validated; the first
// refusal fails it (the record is then empty).
struct NewRecord {
    SiteRecord record;
    Outcome outcome;
    bool ok() const { return outcome.ok(); }
};
NewRecord make_site(const NewSite& wanted, const ValidationPolicy& policy, Timestamp now);

// A write of `raw` to `field` (write_field), or with `expected` a restore (restore_field: a
// compare-and-set that records nothing in the status, where the refusal it follows shows).
struct FieldEdit {
    enum class Kind {
        Refused,         // outcome says why; show_refusal: record it in the site's status
        Unchanged,       // nothing to store
        ClearsRefusal,   // the same value again: only the refusal still shown goes (next)
        Changed,         // next is the new record, its generation bumped
    };
    Kind kind = Kind::Unchanged;
    Outcome outcome;
    bool show_refusal = false;
    std::shared_ptr<SiteRecord> next;
    bool domains_changed = false;  // Changed: the domain field (the claims must follow)
    // A write of `refresh` to `ctl`: nothing to store (Unchanged, or ClearsRefusal), this to announce.
    bool refresh = false;
};
FieldEdit edit_field(const SiteRecord& cur, std::string_view field, std::string_view raw,
                     const std::string_view* expected, const ValidationPolicy& policy, Timestamp now);

// `cur` with a refused write shown in its status (the error a good write clears).
std::shared_ptr<SiteRecord> with_refusal(const SiteRecord& cur, std::string_view field, const std::string& reason, Timestamp now);

// set_field_time's check: EPERM for a field whose time sitesfs sets.
Outcome check_field_time(std::string_view field);

// A report as it is kept: `actual` with its generation, its change time carried over when the
// commit did not change, and a refusal still shown kept when the report has no error of its own
// (the reconciler does not know of refused writes).
ActualState reported_actual(const ActualState& previous, uint64_t generation, const ActualState& actual, Timestamp now);

}  // namespace sitesfs
