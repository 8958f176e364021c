#include "mount/config.hpp"

#include <grp.h>
#include <pwd.h>

#include <toml++/toml.h>

#include "hooks/net.hpp"
#include "schemas/validators.hpp"

#include <algorithm>
#include <set>
#include <sstream>

namespace sitesfs::mount {

namespace {

struct Reader {
    const std::string& file;

    [[noreturn]] void fail(const std::string& key, const std::string& why) const {
        throw ConfigError(file + ": " + key + ": " + why);
    }

    void only_known(const toml::table& t, const std::string& prefix, const std::set<std::string>& known) const {
        for (const auto& [k, v] : t)
            if (!known.count(std::string(k.str())))
                fail(prefix + std::string(k.str()), "unknown setting");
    }

    template <class T>
    void get(const toml::table& t, const std::string& prefix, const char* key, T& out) const {
        const toml::node* n = t.get(key);
        if (!n) return;
        if (auto v = n->value<T>()) out = *v;
        else fail(prefix + key, "has the wrong type");
    }

    void path(const toml::table& t, const std::string& prefix, const char* key, std::filesystem::path& out) const {
        std::string s = out.string();
        get(t, prefix, key, s);
        if (s.empty() || s.front() != '/') fail(prefix + key, "must be an absolute path");
        out = s;
    }

    // Durations are written in seconds, whole or fractional.
    void seconds(const toml::table& t, const std::string& prefix, const char* key, std::chrono::milliseconds& out,
                 bool zero_ok) const {
        const toml::node* n = t.get(key);
        if (!n) return;
        std::optional<double> v = n->value<double>();
        if (!v || *v < 0 || (*v == 0 && !zero_ok) || *v > 86400.0 * 365)
            fail(prefix + key, zero_ok ? "must be a number of seconds, 0 or more" : "must be a positive number of seconds");
        out = std::chrono::milliseconds(static_cast<int64_t>(*v * 1000));
    }

    void count(const toml::table& t, const std::string& prefix, const char* key, uint64_t& out, uint64_t min) const {
        int64_t v = static_cast<int64_t>(out);
        get(t, prefix, key, v);
        if (v < static_cast<int64_t>(min)) fail(prefix + key, "must be at least " + std::to_string(min));
        out = static_cast<uint64_t>(v);
    }

    // A command: a non-empty array of strings, run directly (no shell).
    std::vector<std::string> argv(const toml::table& t, const std::string& prefix, const char* key) const {
        std::vector<std::string> out;
        const toml::node* n = t.get(key);
        if (!n) return out;
        const toml::array* a = n->as_array();
        if (!a || a->empty()) fail(prefix + key, "must be a non-empty array of strings (argv, no shell)");
        for (const toml::node& arg : *a) {
            auto s = arg.value<std::string>();
            if (!s) fail(prefix + key, "must be a non-empty array of strings (argv, no shell)");
            out.push_back(*s);
        }
        return out;
    }

    const toml::table* section(const toml::table& root, const char* name) const {
        const toml::node* n = root.get(name);
        if (!n) return nullptr;
        if (!n->as_table()) fail(name, "must be a table");
        return n->as_table();
    }

    void mode(const toml::table& t, const std::string& prefix, const char* key, mode_t& out) const {
        const toml::node* n = t.get(key);
        if (!n) return;
        auto s = n->value<std::string>();
        size_t used = 0;
        unsigned long m = 0;
        try {
            if (s) m = std::stoul(*s, &used, 8);
        } catch (const std::exception&) {
            used = 0;
        }
        if (!s || used != s->size() || m > 0777) fail(prefix + key, "must be an octal string like \"0644\"");
        out = static_cast<mode_t>(m);
    }

    template <class Id, class Lookup>
    void id(const toml::table& t, const std::string& prefix, const char* key, Id& out, Lookup lookup) const {
        const toml::node* n = t.get(key);
        if (!n) return;
        if (auto num = n->value<int64_t>(); num && *num >= 0) return void(out = static_cast<Id>(*num));
        auto name = n->value<std::string>();
        if (!name) fail(prefix + key, "must be a name or a number");
        auto found = lookup(name->c_str());
        if (!found) fail(prefix + key, "no such user or group '" + *name + "'");
        out = *found;
    }
};

std::optional<uid_t> user_id(const char* name) {
    if (const passwd* p = getpwnam(name)) return p->pw_uid;
    return std::nullopt;
}

std::optional<gid_t> group_id(const char* name) {
    if (const group* g = getgrnam(name)) return g->gr_gid;
    return std::nullopt;
}

// The health check's listener and the certificate probe follow from [proxy] and [health]
// (docs/operations.md, "Health checks").
void health_listener(const Reader& r, hooks::HooksConfig& h) {
    const bool https = h.proxy.scheme != "http";
    if (https && h.health.tls_address.empty())
        h.health.tls_address = "127.0.0.1:" + std::to_string(h.proxy.port != 0 ? h.proxy.port : 443);
    if (!h.health.tls_address.empty() && !hooks::parse_endpoint(h.health.tls_address))
        r.fail("health.tls_address", "must be IP:PORT or [IPv6]:PORT (names are not resolved)");
    if (!h.health.enabled) return;
    const auto health = hooks::parse_endpoint(h.health.address);
    if (!health) r.fail("health.address", "must be IP:PORT or [IPv6]:PORT (names are not resolved)");
    if (!health->loopback())
        r.fail("health.address", "must be a loopback address (127.0.0.1 or [::1]): the health listener serves "
                                 "every site over plain HTTP, for this host only");
    const int public_port = h.proxy.port != 0 ? h.proxy.port : https ? 443 : 80;
    // Plain HTTP to the public listener is what visitors get already; nothing more to render.
    if (!https && health->port == public_port) return;
    if (health->port == public_port || (https && health->port == 80))
        r.fail("health.address", "port " + std::to_string(health->port) +
                                     " is the proxy's own (HTTPS, or its redirect to HTTPS); give the health "
                                     "listener a free loopback port, e.g. 127.0.0.1:2080");
    h.proxy.health_ip = health->host;
    h.proxy.health_port = health->port;
}

}  // namespace

Config load_config(const std::optional<std::filesystem::path>& file) {
    Config cfg;
    if (!file) {
        health_listener(Reader{"the built-in defaults"}, cfg.hooks);
        return cfg;
    }
    const std::string name = file->string();
    toml::table root;
    try {
        root = toml::parse_file(name);
    } catch (const toml::parse_error& e) {
        const auto& at = e.source().begin;
        std::ostringstream msg;
        // The parser quotes what it found, which may be any bytes of the file.
        msg << name << ":" << at.line << ":" << at.column << ": " << printable(e.description());
        throw ConfigError(msg.str());
    }
    const Reader r{name};
    r.only_known(root, "", {"state_dir", "data_dir", "allow_local_repos", "log_level", "filesystem", "proxy",
                            "reload", "health", "reconcile", "git", "keys", "ssh", "metrics"});
    r.path(root, "", "state_dir", cfg.state_dir);
    r.path(root, "", "data_dir", cfg.data_dir);
    r.get(root, "", "allow_local_repos", cfg.allow_local_repos);
    r.get(root, "", "log_level", cfg.log_level);
    auto& h = cfg.hooks;
    if (const toml::table* t = r.section(root, "proxy")) {
        const std::string p = "proxy.";
        r.only_known(*t, p, {"file", "main_config", "caddy", "scheme", "port", "validate_timeout"});
        r.path(*t, p, "file", h.proxy.file);
        if (t->contains("main_config")) r.path(*t, p, "main_config", h.proxy.main_config);
        r.get(*t, p, "caddy", h.proxy.caddy);
        r.get(*t, p, "scheme", h.proxy.scheme);
        if (h.proxy.scheme != "" && h.proxy.scheme != "http" && h.proxy.scheme != "https")
            r.fail(p + "scheme", "must be \"http\", \"https\" or \"\" (caddy's default)");
        int64_t port = h.proxy.port;
        r.get(*t, p, "port", port);
        if (port < 0 || port > 65535) r.fail(p + "port", "must be 0 (the scheme's default) to 65535");
        h.proxy.port = static_cast<int>(port);
        r.seconds(*t, p, "validate_timeout", h.proxy.timeout, false);
    }
    if (const toml::table* t = r.section(root, "reload")) {
        const std::string p = "reload.";
        r.only_known(*t, p, {"mode", "unit", "command", "timeout"});
        std::string mode = "systemd";
        r.get(*t, p, "mode", mode);
        if (mode == "systemd") h.reload.mode = hooks::ReloadMode::systemd;
        else if (mode == "command") h.reload.mode = hooks::ReloadMode::command;
        else if (mode == "none") h.reload.mode = hooks::ReloadMode::none;
        else r.fail(p + "mode", "must be \"systemd\", \"command\" or \"none\"");
        r.get(*t, p, "unit", h.reload.unit);
        if (t->contains("command")) h.reload.command = r.argv(*t, p, "command");
        if (h.reload.mode == hooks::ReloadMode::command && h.reload.command.empty())
            r.fail(p + "command", "is needed with mode = \"command\"");
        r.seconds(*t, p, "timeout", h.reload.timeout, false);
    }
    if (const toml::table* t = r.section(root, "health")) {
        const std::string p = "health.";
        r.only_known(*t, p, {"enabled", "address", "tls_address", "path", "timeout"});
        r.get(*t, p, "enabled", h.health.enabled);
        r.get(*t, p, "address", h.health.address);
        r.get(*t, p, "tls_address", h.health.tls_address);
        r.get(*t, p, "path", h.health.path);
        if (!h.health.path.starts_with("/") || h.health.path.find_first_of(" \t\r\n") != std::string::npos)
            r.fail(p + "path", "must start with '/' and hold no whitespace");
        r.seconds(*t, p, "timeout", h.health.timeout, false);
    }
    health_listener(r, h);
    if (const toml::table* t = r.section(root, "git")) {
        const std::string p = "git.";
        r.only_known(*t, p, {"connect_timeout", "io_timeout"});
        r.seconds(*t, p, "connect_timeout", h.git.connect, false);
        r.seconds(*t, p, "io_timeout", h.git.io, false);
    }
    if (const toml::table* t = r.section(root, "metrics")) {
        r.only_known(*t, "metrics.", {"textfile"});
        if (t->contains("textfile")) r.path(*t, "metrics.", "textfile", cfg.metrics_textfile);
    }
    if (const toml::table* t = r.section(root, "keys")) {
        const std::string p = "keys.";
        r.only_known(*t, p, {"dir", "command", "command_timeout"});
        if (t->contains("dir")) r.path(*t, p, "dir", h.keys.keys_dir);
        h.keys.command = r.argv(*t, p, "command");
        r.seconds(*t, p, "command_timeout", h.keys.command_timeout, false);
    }
    if (const toml::table* t = r.section(root, "ssh")) {
        const std::string p = "ssh.";
        r.only_known(*t, p, {"host_key_policy", "pins"});
        std::string policy = "accept-new";
        r.get(*t, p, "host_key_policy", policy);
        if (policy == "accept-new") h.host_key_policy = hooks::HostKeyPolicy::AcceptNew;
        else if (policy == "strict") h.host_key_policy = hooks::HostKeyPolicy::Strict;
        else r.fail(p + "host_key_policy", "must be \"accept-new\" or \"strict\"");
        if (const toml::table* pins = r.section(*t, "pins")) {
            for (const auto& [host, fp] : *pins) {
                const auto v = fp.value<std::string>();
                const std::string key(host.str());
                if (!v || !v->starts_with("SHA256:") || key.find(':') == std::string::npos)
                    r.fail(p + "pins." + key, "write \"HOST:PORT\" = \"SHA256:...\" (ssh-keygen -lf prints it)");
                h.host_key_pins[key] = *v;
            }
        }
    }
    if (const toml::table* t = r.section(root, "reconcile")) {
        const std::string p = "reconcile.";
        r.only_known(*t, p, {"workers", "poll_interval", "keep_releases", "max_files", "max_bytes"});
        uint64_t workers = h.workers, keep = h.keep_releases;
        r.count(*t, p, "workers", workers, 1);
        r.count(*t, p, "keep_releases", keep, 1);
        h.workers = static_cast<unsigned>(std::min<uint64_t>(workers, 64));
        h.keep_releases = static_cast<unsigned>(keep);
        r.seconds(*t, p, "poll_interval", h.poll_interval, true);
        r.count(*t, p, "max_files", h.limits.max_files, 1);
        r.count(*t, p, "max_bytes", h.limits.max_bytes, 1);
    }
    if (const toml::node* n = root.get("filesystem")) {
        const toml::table* t = n->as_table();
        if (!t) r.fail("filesystem", "must be a table");
        const std::string p = "filesystem.";
        r.only_known(*t, p, {"owner", "group", "file_mode", "dir_mode", "cache_timeout", "max_temp_file_bytes",
                             "max_temp_files_per_site", "wait_timeout"});
        r.seconds(*t, p, "wait_timeout", cfg.filesystem.wait_timeout, false);
        auto& f = cfg.filesystem;
        r.id(*t, p, "owner", f.uid, user_id);
        r.id(*t, p, "group", f.gid, group_id);
        r.mode(*t, p, "file_mode", f.file_mode);
        r.mode(*t, p, "dir_mode", f.dir_mode);
        int64_t timeout = static_cast<int64_t>(f.cache_timeout);
        r.get(*t, p, "cache_timeout", timeout);
        if (timeout < 0) r.fail(p + "cache_timeout", "must not be negative");
        f.cache_timeout = static_cast<double>(timeout);
        int64_t bytes = static_cast<int64_t>(f.max_temp_bytes), count = static_cast<int64_t>(f.max_temps_per_site);
        r.get(*t, p, "max_temp_file_bytes", bytes);
        r.get(*t, p, "max_temp_files_per_site", count);
        if (bytes <= 0 || count <= 0) r.fail(p + "max_temp_*", "must be positive");
        f.max_temp_bytes = static_cast<size_t>(bytes);
        f.max_temps_per_site = static_cast<size_t>(count);
    }
    return cfg;
}

}  // namespace sitesfs::mount
