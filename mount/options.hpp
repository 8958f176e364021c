// The command line: `sitesfs [options] MOUNTPOINT`.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sitesfs::mount {

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct CommandLine {
    std::string mountpoint;
    bool foreground = false;
    bool read_only = false;
    bool allow_other = false;
    std::vector<std::string> mount_flags;  // accepted -o flags passed on to the kernel (nosuid, ...)
    std::optional<std::string> state_dir;
    std::optional<std::string> config_file;
    std::optional<std::string> log_level;
    std::optional<std::string> import_file;
    // --copy-store: "file-to-etcd" or "etcd-to-file" (docs/cluster.md); --forget-host NAME.
    std::optional<std::string> copy_store;
    std::optional<std::string> forget_host;
    bool allow_local_repos = false;
    bool no_reconcile = false;
    bool help = false;
    bool version = false;
};

// Throws UsageError with a one-line reason.
CommandLine parse_command_line(int argc, char** argv);
std::string usage_text();

}  // namespace sitesfs::mount
