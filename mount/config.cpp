#include "mount/config.hpp"

#include <grp.h>
#include <pwd.h>

#include <toml++/toml.h>

#include "common/toml_error.hpp"
#include "hooks/net.hpp"
#include "mount/config_keys.hpp"
#include "schemas/validators.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

namespace sitesfs::mount {

namespace {

// Reads a file's keys through config_keys(): every value is checked against its key's type and
// bounds, and refused (never clamped) when it does not fit.
struct Reader {
    const std::string& file;

    [[noreturn]] void fail(const std::string& key, const std::string& why) const {
        throw ConfigError(file + ": " + key + ": " + why);
    }

    // Every key in the file must be in the table, every section a table.
    void only_known(const toml::table& root) const {
        for (const auto& [k, v] : root) {
            const std::string name(k.str());
            bool key = false, section = false;
            for (const ConfigKey& c : config_keys()) {
                key = key || (c.section().empty() && c.name == name);
                section = section || c.section() == name;
            }
            if (key) continue;
            // A quoted key may hold any bytes.
            if (!section) fail(printable(name), "unknown setting");
            if (!v.is_table()) fail(name, "must be a table");
            for (const auto& [sk, sv] : *v.as_table()) {
                const std::string full = name + "." + std::string(sk.str());
                bool known = false;
                for (const ConfigKey& c : config_keys()) known = known || c.name == full;
                if (!known) fail(printable(full), "unknown setting");
            }
        }
    }

    [[noreturn]] void refuse(const ConfigKey& k, const std::string& shown = {}) const {
        fail(std::string(k.name), "must be " + k.accepts() + (shown.empty() ? "" : ", not " + shown));
    }

    KeyValue read(const ConfigKey& k, const toml::node& n) const {
        KeyValue v;
        const auto within = [&](double x) { return x >= k.min && x <= k.max; };
        switch (k.type) {
            case KeyType::boolean:
                // Strictly a TOML boolean: toml++ would read 0 and 1 as false and true.
                if (!n.is_boolean()) refuse(k);
                v.boolean = *n.value_exact<bool>();
                break;
            case KeyType::integer: {
                // Strictly a TOML integer: toml++ would read true as 1 and 2.0 as 2.
                if (!n.is_integer()) refuse(k);
                v.integer = *n.value_exact<int64_t>();
                if (!within(static_cast<double>(v.integer))) refuse(k, std::to_string(v.integer));
                break;
            }
            case KeyType::seconds: {
                double s = 0;
                if (n.is_integer()) s = static_cast<double>(*n.value_exact<int64_t>());
                else if (n.is_floating_point()) s = *n.value_exact<double>();
                else refuse(k);
                if (!within(s)) {
                    std::ostringstream shown;
                    shown.precision(15);
                    shown << s;
                    refuse(k, shown.str());
                }
                v.duration = std::chrono::milliseconds(std::llround(s * 1000));
                break;
            }
            case KeyType::string:
            case KeyType::path: {
                const auto s = n.value_exact<std::string>();
                if (!s) refuse(k);
                if (k.type == KeyType::path && !s->starts_with("/")) refuse(k, "\"" + printable(*s) + "\"");
                if (!k.choices.empty() && std::find(k.choices.begin(), k.choices.end(), *s) == k.choices.end())
                    refuse(k, "\"" + printable(*s) + "\"");
                v.text = *s;
                break;
            }
            case KeyType::argv:
            case KeyType::strings: {
                const toml::array* a = n.as_array();
                if (!a || (a->empty() && k.type == KeyType::argv)) refuse(k);
                for (const toml::node& arg : *a) {
                    const auto s = arg.value_exact<std::string>();
                    if (!s) refuse(k);
                    v.list.push_back(*s);
                }
                break;
            }
            case KeyType::mode: {
                const auto s = n.value_exact<std::string>();
                if (!s || s->empty() || s->size() > 4 || s->find_first_not_of("01234567") != std::string::npos)
                    refuse(k);
                v.integer = std::stol(*s, nullptr, 8);
                if (v.integer > 0777) refuse(k, "\"" + *s + "\"");
                break;
            }
            case KeyType::user:
            case KeyType::group: {
                if (n.is_integer()) {
                    v.integer = *n.value_exact<int64_t>();
                    if (!within(static_cast<double>(v.integer))) refuse(k, std::to_string(v.integer));
                    break;
                }
                const auto name = n.value_exact<std::string>();
                if (!name) refuse(k);
                const auto found = k.type == KeyType::user ? user_id(name->c_str()) : group_id(name->c_str());
                if (!found) fail(std::string(k.name), std::string("no such ") + (k.type == KeyType::user ? "user" : "group") +
                                                           " '" + printable(*name) + "'");
                v.integer = *found;
                // A name is held to the same bounds as its id: build.user = "root" is uid 0.
                if (!within(static_cast<double>(v.integer)))
                    refuse(k, "\"" + printable(*name) + "\" (" + std::to_string(v.integer) + ")");
                break;
            }
            case KeyType::pins: {
                const toml::table* t = n.as_table();
                if (!t) refuse(k);
                for (const auto& [host, fp] : *t) {
                    const auto s = fp.value_exact<std::string>();
                    const std::string key(host.str());
                    if (!s || !s->starts_with("SHA256:") || key.find(':') == std::string::npos)
                        fail(std::string(k.name) + "." + printable(key),
                             "write \"HOST:PORT\" = \"SHA256:...\" (ssh-keygen -lf prints it)");
                    v.pins[key] = *s;
                }
                break;
            }
            case KeyType::builders: {
                const toml::table* t = n.as_table();
                if (!t) refuse(k);
                for (const auto& [name, table] : *t)
                    v.builders.emplace(std::string(name.str()), builder(k, name.str(), table));
                break;
            }
        }
        if (k.check)
            if (const std::string why = k.check(v); !why.empty()) fail(std::string(k.name), why);
        return v;
    }

    // One [builders.NAME] table, through builder_fields().
    hooks::Builder builder(const ConfigKey& k, std::string_view name, const toml::node& n) const {
        const std::string table = std::string(k.name) + "." + printable(name);
        if (const std::string why = builder_name_problem(name); !why.empty())
            fail(table, why + " (a site's build field names it)");
        const toml::table* t = n.as_table();
        if (!t) fail(table, "must be a table: [" + table + "] with command = [...]");
        std::string fields;
        for (const BuilderField& f : builder_fields())
            fields += (fields.empty() ? "" : ", ") + std::string(f.spec.name);
        for (const auto& [key, v] : *t) {
            bool known = false;
            for (const BuilderField& f : builder_fields()) known = known || f.spec.name == key.str();
            if (!known) fail(table + "." + printable(key.str()), "unknown setting; a builder has " + fields);
        }
        hooks::Builder b;
        b.name = std::string(name);
        for (const BuilderField& f : builder_fields()) {
            // The field under its full name, for the messages.
            const std::string full = table + "." + std::string(f.spec.name);
            ConfigKey spec = f.spec;
            spec.name = full;
            if (const toml::node* value = t->get(f.spec.name)) f.set(b, read(spec, *value));
            else if (f.spec.fallback.empty()) fail(full, "is required: " + spec.accepts());
            else f.set(b, fallback(spec));
        }
        return b;
    }


    // The defaults go through the same checks as the file: a default out of its own bounds stops
    // start-up too (and the unit tests).
    static KeyValue fallback(const ConfigKey& k) {
        const std::string def = "the built-in default of " + std::string(k.name);
        const toml::table t = toml::parse("v = " + std::string(k.fallback), def);
        return Reader{def}.read(k, *t.get("v"));
    }

    static std::optional<uid_t> user_id(const char* name) {
        if (const passwd* p = getpwnam(name)) return p->pw_uid;
        return std::nullopt;
    }

    static std::optional<gid_t> group_id(const char* name) {
        if (const group* g = getgrnam(name)) return g->gr_gid;
        return std::nullopt;
    }
};

// The node of `k` in `root`, or null when the file leaves the key out.
const toml::node* find(const toml::table& root, const ConfigKey& k) {
    if (k.section().empty()) return root.get(k.name);
    const toml::node* section = root.get(k.section());
    return section ? section->as_table()->get(k.key()) : nullptr;
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

// Builds run as [build] user and its primary group; there is no default user to fall back on.
void build_user(const Reader& r, hooks::BuildConfig& b) {
    if (!b.uid) {
        if (!b.builders.empty())
            r.fail("builders." + printable(b.builders.begin()->first),
                   "builders need [build] user: an unprivileged user of their own to run as, e.g. `adduser --system "
                   "--group sitesfs-build` and user = \"sitesfs-build\"");
        return;
    }
    const passwd* p = getpwuid(*b.uid);
    if (!p)
        r.fail("build.user", "uid " + std::to_string(*b.uid) +
                                 " has no entry in the user database, so no primary group to run builds as");
    if (p->pw_gid == 0)
        r.fail("build.user", std::string(printable(p->pw_name)) +
                                 "'s primary group is root's (gid 0); give the build user a group of its own");
    b.gid = p->pw_gid;
}

}  // namespace

Config load_config_text(std::string_view text, const std::string& name) {
    toml::table root;
    try {
        root = toml::parse(text, name);
    } catch (const toml::parse_error& e) {
        throw ConfigError(toml_error_text(e, name));
    }
    const Reader r{name};
    r.only_known(root);
    Config cfg;
    for (const ConfigKey& k : config_keys()) {
        if (const toml::node* n = find(root, k)) {
            k.apply(cfg, r.read(k, *n));
        } else if (!k.fallback.empty()) {
            k.apply(cfg, Reader::fallback(k));
        }
    }
    auto& h = cfg.hooks;
    if (h.reload.mode == hooks::ReloadMode::command && h.reload.command.empty())
        r.fail("reload.command", "is needed with mode = \"command\"");
    health_listener(r, h);
    build_user(r, h.build);
    if (!cfg.webhook.listen.empty() && cfg.webhook.secret_ref.empty())
        r.fail("webhook.secret_ref", "is needed with listen: a webhook is trusted only when it is signed with the "
                                     "secret, e.g. secret_ref = \"file:webhook\" and [keys] dir");
    return cfg;
}

Config load_config(const std::optional<std::filesystem::path>& file) {
    if (!file) return load_config_text("", "the built-in defaults");
    const std::string name = file->string();
    std::error_code ec;
    if (std::filesystem::is_directory(*file, ec)) throw ConfigError(name + ": is a directory");
    std::ifstream in(*file, std::ios::binary);
    if (!in) throw ConfigError(name + ": " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw ConfigError(name + ": " + std::strerror(errno));
    return load_config_text(text.str(), name);
}

}  // namespace sitesfs::mount
