// The config file (TOML). Every setting has a built-in default, so sitesfs runs without one;
// docs/configuration.md lists them. Unknown keys are errors: a typo must not silently fall back
// to a default.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

#include "fs/filesystem.hpp"
#include "hooks/deploy.hpp"

namespace sitesfs::mount {

struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Config {
    std::filesystem::path state_dir = "/var/lib/sitesfs";
    std::filesystem::path data_dir = "/var/lib/sites";
    bool allow_local_repos = false;
    std::string log_level = "info";
    fs::FsOptions filesystem;
    // [proxy], [reload], [health], [reconcile]; data_dir, allow_local_repos and the deploy log
    // path are copied in by load_config so there is one place that says where things are.
    hooks::HooksConfig hooks;
    std::filesystem::path metrics_textfile;  // [metrics] textfile; empty: not written
};

// Throws ConfigError naming the file, and the line and column or the key that is wrong.
Config load_config(const std::optional<std::filesystem::path>& file);

}  // namespace sitesfs::mount
