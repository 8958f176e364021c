// The config file (TOML). Every setting has a built-in default, so sitesfs runs without one;
// docs/configuration.md lists them. Unknown keys are errors: a typo must not silently fall back
// to a default.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

#include "fs/filesystem.hpp"

namespace sitesfs::mount {

struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Config {
    std::filesystem::path state_dir = "/var/lib/sitesfs";
    std::filesystem::path data_dir = "/var/lib/sites";
    std::filesystem::path proxy_file = "/etc/caddy/sites.conf";
    bool allow_local_repos = false;
    std::string log_level = "info";
    fs::FsOptions filesystem;
};

// Throws ConfigError naming the file, and the line and column or the key that is wrong.
Config load_config(const std::optional<std::filesystem::path>& file);

}  // namespace sitesfs::mount
