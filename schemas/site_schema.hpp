// The one declaration of the files inside a site directory. The filesystem builds its directory
// listing, access modes and write checks from this table, the store persists exactly its
// read-write fields, and docs/fields.md is generated from it (`cmake --build build -t fields-doc`).
// Adding a field means adding one row to site_fields() in site_schema.cpp.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "schemas/site_record.hpp"
#include "schemas/validators.hpp"

namespace sitesfs {

// ReadWrite: a setting, stored and listed. ReadOnly: a report. WriteOnly: a request (`ctl`),
// acted on and not stored.
enum class Access { ReadWrite, ReadOnly, WriteOnly };
std::string_view to_string(Access access);

// Which changes can alter a file's content or mtime: committed writes (the store's
// Change::Desired: desired values, the generation, and the actual state's `updated` time and write
// error, which every good write moves and clears), the reconciler's reports and refused writes
// (Change::Actual: the actual state only), or both. The filesystem drops the kernel's cached
// copy of a file only on the changes that can reach it.
enum class ChangedBy { Writes, Reports, Both };

struct FieldSpec {
    std::string_view name;
    Access access;
    ChangedBy changed_by;
    // Read-write fields only: checks and normalizes a trimmed value.
    Checked (*check)(std::string_view value, const ValidationPolicy& policy);
    // The file's content without the trailing newline the filesystem adds.
    std::string (*render)(const SiteRecord& site);
    // When the rendered content last changed (the file's mtime).
    Timestamp (*changed)(const SiteRecord& site);
    std::string_view help;
    // Set for files whose first read waits (see docs/filesystem.md, "wait"): whether the site has
    // settled for a reader that opened the file when the site was at `generation`.
    bool (*settled)(const SiteRecord& site, uint64_t generation) = nullptr;
};

std::span<const FieldSpec> site_fields();
const FieldSpec* find_field(std::string_view name);  // nullptr when no such field
// A setting: a value the store keeps (and the only files a write may rename, truncate or time).
inline bool is_writable(const FieldSpec& f) { return f.access == Access::ReadWrite; }
inline bool is_request(const FieldSpec& f) { return f.access == Access::WriteOnly; }
inline bool is_readable(const FieldSpec& f) { return f.access != Access::WriteOnly; }
// A site directory lists what can be set: its read-write fields. The reports (status, log, wait)
// are reachable by name but not listed, so a copy or an archive of a site (cp -r, tar, rsync)
// holds exactly its settings and writes back nothing sitesfs computes, and grep -r, tar, find
// and `cat SITE/*` never block on `wait`.
inline bool is_listed(const FieldSpec& f) { return is_writable(f); }

// The site's overall state as `status` shows it: incomplete until repo and domain are set, then
// what the reconciler reported, or pending while it has not reported on the newest generation.
// With host reports (a store many hosts share), the worst of the hosts' states: failed, then
// deploying, pending, gone; live only when every host the site is placed on is live.
SiteState site_state(const SiteRecord& site);
// One host's state by the one-host rule, from its report; gone when its lease expired.
SiteState host_state(const SiteRecord& site, const HostReport& report);
// Whether the site is deployed on `host`, which has `labels`: its hosts field is empty (every
// host), or lists the host's name or label:X for one of its labels.
bool placed_on(const SiteRecord& site, std::string_view host, std::span<const std::string> labels);
// live or failed: a run ended.
bool settled(SiteState state);

// RFC 3339 in UTC with seconds, e.g. 2026-11-23T05:03:00Z; empty for the zero time point.
std::string rfc3339(Timestamp t);

// Markdown table of all fields (docs/fields.md).
std::string fields_markdown();

}  // namespace sitesfs
