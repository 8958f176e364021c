// The desired-state store: the narrow interface the filesystem and the reconciler talk to.
// FileStore (file_store.hpp) keeps one TOML file per site under the state dir; a later store
// (etcd, so that many hosts share one desired state) implements the same interface.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/site_record.hpp"

namespace sitesfs {

// The result of a mutation: err is 0 or an errno the filesystem can return as it is
// (EINVAL refused value, EEXIST name/domain taken, ENOENT no such site, EROFS read-only store,
// ENOSPC/EIO/... the change could not be made durable and nothing changed).
struct Outcome {
    int err = 0;
    std::string reason;
    bool ok() const { return err == 0; }
    static Outcome success() { return {}; }
    static Outcome fail(int e, std::string why) { return {e, std::move(why)}; }
};

// One entry of the change feed. Desired changes carry the new generation; consumers that only
// care about the newest state of a site re-read it from the store (level-triggered).
struct Change {
    enum class Kind { Created, Removed, Desired, Actual };
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

    // Snapshots; cheap (no copies of records).
    virtual std::vector<std::string> site_names() const = 0;  // sorted
    virtual SiteRef site(std::string_view name) const = 0;    // nullptr when absent
    virtual size_t site_count() const = 0;

    // Mutations are durable when they return success, and change nothing when they fail.
    virtual Outcome create_site(std::string_view name) = 0;
    virtual Outcome remove_site(std::string_view name) = 0;
    // Trims, validates and normalizes `raw` through the schema, checks domain uniqueness, bumps the
    // site's generation and persists. A refused value is also recorded in the site's status error.
    virtual Outcome write_field(std::string_view site, std::string_view field, std::string_view raw) = 0;
    // The checks of write_field (value and domain uniqueness), with a refusal recorded in the
    // status as write_field would; no value changes. Lets a writer hear a refusal at write()
    // and commit only when the file is closed.
    virtual Outcome check_field(std::string_view site, std::string_view field, std::string_view raw) = 0;
    // The reconciler reports what is served. Reports for a generation older than one already
    // reported are ignored (fencing). A report the disk refuses is still shown, and its error returned.
    virtual Outcome report(std::string_view site, uint64_t generation, const ActualState& actual) = 0;

    // Listeners run on the thread that made the change, after it is durable and visible, with no
    // store lock held. They must be quick (queue the work) and must not call back into mutations.
    virtual void subscribe(std::function<void(const Change&)> listener) = 0;
};

}  // namespace sitesfs
