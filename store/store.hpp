// The desired-state store: the narrow interface the filesystem and the reconciler talk to.
// FileStore (file_store.hpp) keeps one TOML file per site under the state dir; a later store
// (etcd, so that many hosts share one desired state) implements the same interface.
#pragma once

#include <cerrno>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "schemas/site_record.hpp"

namespace sitesfs {

// The errno of an unknown outcome (Outcome::unknown): "Connection timed out" is what a shell
// prints, which tells the person the store did not answer, not that the value was wrong.
inline constexpr int kUnknownOutcomeErrno = ETIMEDOUT;

// The result of a mutation: err is 0 or an errno the filesystem returns as it is
// (EINVAL refused value, EEXIST name/domain taken, ENOENT no such site, EROFS read-only store,
// ESTALE a restore found the value changed,
// ENOSPC/EIO/... the change could not be made durable and nothing changed,
// kUnknownOutcomeErrno: a shared store did not answer in time and the change may or may not have
// been made; the store settles it by reading back once it answers, and `status` says so meanwhile).
// docs/filesystem.md lists them as a writer sees them.
struct Outcome {
    int err = 0;
    std::string reason;
    bool ok() const { return err == 0; }
    // The one failure that does not mean "nothing changed".
    bool unknown() const { return err == kUnknownOutcomeErrno; }
    static Outcome success() { return {}; }
    static Outcome fail(int e, std::string why) { return {e, std::move(why)}; }
    static Outcome unknown(std::string why) { return {kUnknownOutcomeErrno, std::move(why)}; }
};

// A site made whole in one step (Store::create_sites): its name and its first values by field.
struct NewSite {
    std::string name;
    std::vector<std::pair<std::string, std::string>> values;  // field, raw value (trimmed and validated by the store)
};

// One entry of the change feed. Desired changes carry the new generation; consumers that only
// care about the newest state of a site re-read it from the store (level-triggered).
struct Change {
    // Times: a field's mtime was set (utimensat) and nothing else changed; nothing to deploy.
    // Refresh: `refresh` was written to `ctl`, here or (a store many hosts share) on another host;
    // nothing changed.
    enum class Kind { Created, Removed, Desired, Actual, Times, Refresh };
    Kind kind;
    std::string site;
    uint64_t generation = 0;
};

// Thrown when a store cannot be opened: the message names the file (and line and column).
struct StoreError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Store {
public:
    virtual ~Store() = default;

    virtual bool read_only() const = 0;
    // The host this store reports actual state for. Desired state is one for every host that
    // shares a store; actual state is each host's own: report() records this host's, and a
    // record's `actual` is this host's view. The file store serves one host.
    virtual const std::string& host() const = 0;
    // This host's labels, for placement: a site whose hosts field lists label:X is deployed on
    // every host that has X (placed_on, site_schema.hpp).
    virtual const std::vector<std::string>& labels() const = 0;
    // What /sites/.store shows: `key: value` lines naming the backend and where it keeps the
    // state; a shared store adds its connection, its revision and one `member:` line per host.
    virtual std::string describe() const = 0;

    // Snapshots; cheap (no copies of records).
    virtual std::vector<std::string> site_names() const = 0;  // sorted
    virtual SiteRef site(std::string_view name) const = 0;    // nullptr when absent
    virtual size_t site_count() const = 0;

    // Mutations are durable when they return success, and change nothing when they fail.
    virtual Outcome create_site(std::string_view name) = 0;
    virtual Outcome remove_site(std::string_view name) = 0;
    // Creates each site with its values, whole or not at all: every value valid, its domains free
    // (of other sites and of the earlier sites in `sites`), the name new. One outcome per site, in
    // order. Made for bulk imports: a store may make the whole batch durable at once (one flush,
    // not one per site), so an outcome is known only when the call returns.
    virtual std::vector<Outcome> create_sites(const std::vector<NewSite>& sites) = 0;
    // Trims, validates and normalizes `raw` through the schema, checks domain uniqueness, bumps the
    // site's generation and persists. A refused value is also recorded in the site's status error.
    // A request (`ctl`): `redeploy` bumps the generation and nothing else, as a write would, so
    // every host runs the deploy again and `wait` waits for it; `refresh` stores nothing of the
    // site and reaches the listeners of every host sharing the store as Change::Refresh.
    virtual Outcome write_field(std::string_view site, std::string_view field, std::string_view raw) = 0;
    // Puts back `value` (as write_field would) only while the field still holds `expected`
    // (compared normalized); ESTALE when another writer changed it meanwhile. The refusal in the
    // status that called for the restore stays. Undoes the earlier lines of a value whose later
    // line was refused (docs/filesystem.md, Writing).
    virtual Outcome restore_field(std::string_view site, std::string_view field, std::string_view value,
                                  std::string_view expected) = 0;
    // Sets a read-write field's mtime (what its file shows), as utimensat does on a regular file,
    // so rsync and cp -a can carry times over; a later change of the value moves it again.
    virtual Outcome set_field_time(std::string_view site, std::string_view field, Timestamp when) = 0;
    // The reconciler reports what is served. Reports for a generation older than one already
    // reported are ignored (fencing). A report the disk refuses is still shown, and its error returned.
    virtual Outcome report(std::string_view site, uint64_t generation, const ActualState& actual) = 0;

    // Listeners run on the thread that made the change, after it is durable and visible, with no
    // store lock held. They must be quick (queue the work) and must not call back into mutations.
    virtual void subscribe(std::function<void(const Change&)> listener) = 0;
};

}  // namespace sitesfs
