// One site's desired and actual state, as the store holds it. Records are immutable snapshots:
// the store replaces a site's record as a whole on every change, so a reader holding a
// shared_ptr<const SiteRecord> never sees half of an update.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sitesfs {

// A site's state as `status` shows it. The reconciler reports pending, deploying, live or failed
// (none before its first report); incomplete and gone are never reported: site_state() derives
// incomplete, and a pending for a newer generation, from the desired state, and gone (a host the
// site is placed on whose lease expired, in a store many hosts share) from the host reports.
enum class SiteState { none, incomplete, pending, deploying, live, failed, gone };

// "live", ...; none is "".
std::string_view to_string(SiteState state);
// The reverse, for a state file or a test; nullopt for anything else.
std::optional<SiteState> parse_site_state(std::string_view text);

// What a write to `ctl` asks of a site now (docs/filesystem.md, "ctl"): refresh asks the remote
// and deploys when the branch moved; redeploy runs the whole deploy again, a failed one included.
// redeploy does all that refresh does, so when both are asked the stronger one is kept.
enum class SiteRequest { refresh, redeploy };
std::string_view to_string(SiteRequest request);
std::optional<SiteRequest> parse_site_request(std::string_view text);

using Clock = std::chrono::system_clock;
using Timestamp = Clock::time_point;

struct FieldValue {
    std::string value;  // normalized, validated; empty = unset
    Timestamp changed{};
};

// What the host actually serves, reported by the reconciler (and by the store for rejected writes).
struct ActualState {
    SiteState state = SiteState::none;
    std::string commit;         // the commit actually served, 40 hex or empty
    std::string domain;         // the domains the proxy serves it under (may lag a new desired domain)
    std::string path;           // the subdirectory served
    std::vector<std::string> log;  // the site's recent deploy log lines, oldest first (capped)
    std::string error;          // last rejected write or failed step, with its reason; empty = none
    bool error_from_write = false;  // the error came from a rejected write (a good write clears it)
    Timestamp changed{};        // when commit last changed
    Timestamp updated{};        // when anything in this record last changed
    uint64_t generation = 0;    // the desired generation the last reconciler report was about
    Timestamp retry_at{};       // a failure the host caused is tried again then; {} = no retry planned
    // One line per served domain in HTTPS modes: "blog.example.com Let's Encrypt until 2027-03-01",
    // "new.example.com none yet". Refreshed after deploys and on poll ticks.
    std::vector<std::string> tls;
    // The serving fields the proxy config was rendered with (they may lag newer desired values).
    std::string routing, aliases, auth_ref;
    // The output of the last build this host ran for the site (`buildlog`), its end kept when
    // longer than kBuildLogBytes, valid UTF-8; empty for a site without a builder.
    std::string build_log;
};

inline constexpr size_t kBuildLogBytes = 16 * 1024;

// The read-write fields, the desired state a site stores, in the schema's order. The schema
// (site_schema.cpp) gives each its row; a unit test keeps the two lists in step.
inline constexpr std::string_view kDesiredFields[] = {"repo", "domain", "branch", "path", "deploy_key_ref", "commit", "check", "hosts",
                                                      "routing", "aliases", "auth_ref", "build", "submodules"};

constexpr bool is_desired_field(std::string_view name) {
    for (const auto f : kDesiredFields)
        if (f == name) return true;
    return false;
}

// A read-write field's place in kDesiredFields; throws std::invalid_argument for any other name
// (a caller that passes one has a bug, not bad input).
size_t desired_field_index(std::string_view name);

// The name of a read-write field. A name written in the code is checked when it compiles, so
// `site.field("domian")` is a build error, not a value that silently reads empty; a name that
// comes at run time (from the schema's rows, a test's table) goes through known().
class FieldName {
public:
    consteval FieldName(const char* name) : name_(name) {
        if (!is_desired_field(name_)) throw "not a read-write field of the schema (schemas/site_schema.cpp)";
    }
    // Throws std::invalid_argument for a name that is not a read-write field: a caller that
    // passes one has a bug, not bad input.
    static FieldName known(std::string_view name);

    std::string_view str() const { return name_; }
    bool operator==(const FieldName&) const = default;

private:
    struct Checked {};
    constexpr FieldName(std::string_view name, Checked) : name_(name) {}
    std::string_view name_;
};

// One host's view of a site in a store many hosts share (etcd): what it reports serving, and
// whether it is alive (its lease holds). Empty in a one-host store.
struct HostReport {
    std::string host;
    bool alive = true;
    ActualState actual;
};

// A site's read-write values, one slot per field in kDesiredFields' order; an unset field is
// empty. An array rather than a map keyed by name: 10,000 records would spend a tree node and a
// key string on every field (P6, docs/benchmarks.md).
class DesiredFields {
public:
    const FieldValue& operator[](FieldName name) const { return values_[desired_field_index(name.str())]; }
    FieldValue& operator[](std::string_view name) { return values_[desired_field_index(name)]; }

private:
    std::array<FieldValue, std::size(kDesiredFields)> values_{};
};

struct SiteRecord {
    std::string name;
    uint64_t generation = 0;  // bumped by every committed write of desired state
    Timestamp created{};
    DesiredFields desired;
    ActualState actual;
    std::vector<HostReport> reports;  // the hosts the site is placed on, sorted by name; empty: one host (actual is all there is)
    // What a shared store has to say about this site on this host: a write whose outcome etcd
    // did not tell (and, once read back, whether it was made), or that etcd is out of reach.
    // Empty in the file store.
    std::string store_note;

    const FieldValue& field(FieldName name) const { return desired[name]; }  // an empty value when unset
};

using SiteRef = std::shared_ptr<const SiteRecord>;

}  // namespace sitesfs
