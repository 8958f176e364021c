// The config file (TOML). Every key, its built-in default and its bounds are declared once, in
// config_keys.cpp; sitesfs runs without a file. Unknown keys, values of the wrong type and values
// out of bounds are errors: a typo must not silently fall back to a default, nor a value be
// silently clamped.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fs/filesystem.hpp"
#include "hooks/deploy.hpp"

namespace sitesfs::mount {

struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// [store]: where desired state lives (docs/store.md, docs/cluster.md).
struct StoreConfig {
    enum class Backend { file, etcd };
    Backend backend = Backend::file;
    std::string host;  // empty: this machine's host name
    std::vector<std::string> labels;
    // etcd only
    std::vector<std::string> endpoints;
    std::string prefix;
    std::filesystem::path ca_file, cert_file, key_file;
    std::string user;
    std::string password_ref;  // PROVIDER:NAME through [keys]
    std::chrono::milliseconds timeout{0};
    int64_t lease_ttl = 0;  // seconds
};

// [webhook]: the push webhook listener (docs/webhooks.md); off while listen is empty.
struct WebhookConfig {
    std::string listen;      // "127.0.0.1:9418", "[::1]:9418" or "unix:/PATH"
    std::string secret_ref;  // PROVIDER:NAME through [keys]
    size_t max_body = 0;
    unsigned rate = 0;
    unsigned burst = 0;
};

// Filled by load_config, every field from config_keys(): a default-constructed Config holds no
// defaults of its own.
struct Config {
    std::filesystem::path state_dir;
    std::filesystem::path data_dir;
    bool allow_local_repos = false;
    std::string log_level;
    fs::FsOptions filesystem;
    // [proxy], [reload], [health], [reconcile]; data_dir, allow_local_repos and the deploy log
    // path are copied in by load_config so there is one place that says where things are.
    hooks::HooksConfig hooks;
    std::filesystem::path metrics_textfile;  // [metrics] textfile; empty: not written
    StoreConfig store;
    WebhookConfig webhook;
};

// Throws ConfigError naming the file, and the line and column or the key that is wrong. Without a
// file: the built-in defaults.
Config load_config(const std::optional<std::filesystem::path>& file);
// The same for TOML text; `name` stands for the file in messages.
Config load_config_text(std::string_view toml, const std::string& name);

}  // namespace sitesfs::mount
