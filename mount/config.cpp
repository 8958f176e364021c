#include "mount/config.hpp"

#include <grp.h>
#include <pwd.h>

#include <toml++/toml.h>

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

}  // namespace

Config load_config(const std::optional<std::filesystem::path>& file) {
    Config cfg;
    if (!file) return cfg;
    const std::string name = file->string();
    toml::table root;
    try {
        root = toml::parse_file(name);
    } catch (const toml::parse_error& e) {
        const auto& at = e.source().begin;
        std::ostringstream msg;
        msg << name << ":" << at.line << ":" << at.column << ": " << e.description();
        throw ConfigError(msg.str());
    }
    const Reader r{name};
    r.only_known(root, "", {"state_dir", "data_dir", "allow_local_repos", "log_level", "filesystem", "proxy"});
    r.path(root, "", "state_dir", cfg.state_dir);
    r.path(root, "", "data_dir", cfg.data_dir);
    r.get(root, "", "allow_local_repos", cfg.allow_local_repos);
    r.get(root, "", "log_level", cfg.log_level);
    if (const toml::node* n = root.get("proxy")) {
        const toml::table* t = n->as_table();
        if (!t) r.fail("proxy", "must be a table");
        r.only_known(*t, "proxy.", {"file"});
        r.path(*t, "proxy.", "file", cfg.proxy_file);
    }
    if (const toml::node* n = root.get("filesystem")) {
        const toml::table* t = n->as_table();
        if (!t) r.fail("filesystem", "must be a table");
        const std::string p = "filesystem.";
        r.only_known(*t, p, {"owner", "group", "file_mode", "dir_mode", "cache_timeout", "max_temp_file_bytes",
                             "max_temp_files_per_site"});
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
