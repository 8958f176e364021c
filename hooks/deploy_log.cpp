#include "hooks/deploy_log.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "schemas/site_schema.hpp"

namespace sitesfs::hooks {

namespace {

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
}

std::string short_id(const std::string& commit) { return commit.empty() ? "-" : commit.substr(0, 12); }

}  // namespace

std::string to_json_line(const DeployLogEntry& e) {
    return "{\"ts\":" + json_string(rfc3339(e.ts)) + ",\"site\":" + json_string(e.site) +
           ",\"action\":" + json_string(e.action) + ",\"commit\":" + json_string(e.commit) +
           ",\"prev\":" + json_string(e.prev) + ",\"dur_ms\":" + std::to_string(e.dur_ms) +
           ",\"error\":" + json_string(e.error) + "}";
}

std::string to_site_line(const DeployLogEntry& e) {
    std::string line = rfc3339(e.ts) + " " + e.action + " " + short_id(e.commit);
    if (e.prev != e.commit) line += " (was " + short_id(e.prev) + ")";
    line += " in " + std::to_string(e.dur_ms) + " ms";
    if (!e.error.empty()) line += ": " + e.error;
    // A few, so one line stays readable; the daemon's log has every one.
    constexpr size_t kShownNotes = 5;
    for (size_t i = 0; i < e.notes.size() && i < kShownNotes; ++i) line += (i == 0 ? "; left out or changed: " : "; ") + e.notes[i];
    if (e.notes.size() > kShownNotes) line += "; and " + std::to_string(e.notes.size() - kShownNotes) + " more in the daemon's log";
    return line;
}

DeployLog::DeployLog(std::filesystem::path file) : file_(std::move(file)) {}

void DeployLog::append(const DeployLogEntry& e) {
    if (file_.empty()) return;
    const std::string line = to_json_line(e) + "\n";
    std::lock_guard lock(mu_);
    const int fd = ::open(file_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        spdlog::warn("deploy log {}: {}", file_.string(), strerror(errno));
        return;
    }
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        spdlog::warn("deploy log {}: short write: {}", file_.string(), strerror(errno));
    ::close(fd);
}

}  // namespace sitesfs::hooks
