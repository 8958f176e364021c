// The deploy log: one JSON line per reconcile under the state dir (ts, site, action, commit, prev,
// dur_ms, error), the shape the seed tool's log had, so existing log readers keep working. Each
// site's recent lines are also kept in its record for the read-only `log` file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "schemas/site_record.hpp"

namespace sitesfs::hooks {

struct DeployLogEntry {
    Timestamp ts;
    std::string site;
    std::string action;  // deployed | up-to-date | failed | removed
    std::string commit;
    std::string prev;
    int64_t dur_ms = 0;
    std::string error;
    // What the release left out or changed (links, .git, submodules); on the site's line only,
    // the JSON line keeps the seed tool's keys.
    std::vector<std::string> notes;
};

std::string to_json_line(const DeployLogEntry& e);  // no trailing newline
// "2026-11-23T10:00:00Z deployed 1a2b3c4d5e6f (was ...) in 412 ms", then "; left out or changed: "
// and the first notes.
std::string to_site_line(const DeployLogEntry& e);

class DeployLog {
public:
    explicit DeployLog(std::filesystem::path file);  // empty path: append() does nothing
    // One O_APPEND write per line, so concurrent runs never interleave within a line. Failures
    // are logged, never thrown: a full log disk must not fail a deploy.
    void append(const DeployLogEntry& e);

private:
    std::filesystem::path file_;
    std::mutex mu_;
};

}  // namespace sitesfs::hooks
