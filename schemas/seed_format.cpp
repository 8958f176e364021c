#include "schemas/seed_format.hpp"

#include <toml++/toml.h>

#include <sstream>

#include "schemas/site_schema.hpp"
#include "schemas/validators.hpp"

namespace sitesfs {

namespace {

// The seed tool's key -> our field. Its deploy_key names an entry of its secret store, which is
// a command (`dota get NAME`), so it becomes a `cmd:` reference.
struct SeedKey {
    const char* seed;
    const char* field;
    const char* prefix;
};
constexpr SeedKey kSeedKeys[] = {
    {"domain", "domain", ""}, {"repo", "repo", ""}, {"branch", "branch", ""},
    {"path", "path", ""},     {"deploy_key", "deploy_key_ref", "cmd:"},
};

const SeedKey* seed_key(std::string_view key) {
    for (const auto& k : kSeedKeys)
        if (key == k.seed) return &k;
    return nullptr;
}

std::string quote(const std::string& s) {
    std::ostringstream out;
    out << toml::value<std::string>(s);
    return out.str();
}

}  // namespace

ImportReport import_seed_toml(Store& store, const std::filesystem::path& file) {
    toml::table root;
    try {
        root = toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
        std::ostringstream msg;
        msg << file.string() << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
        throw StoreError(msg.str());
    }
    ImportReport report;
    if (const toml::table* global = root["global"].as_table()) {
        for (const auto& [k, v] : *global) {
            const std::string key(k.str());
            const char* where = key == "root" ? "data_dir" : key == "caddyfile" ? "[proxy] file" : key == "log" ? "the state dir's deploy.log" : nullptr;
            report.notes.push_back("[global] " + key + " not imported" +
                                   (where ? std::string(": sitesfs uses ") + where + " from its config" : std::string(": unknown key")));
        }
    }
    for (const auto& [k, v] : root)
        if (k.str() != "global" && k.str() != "sites") report.notes.push_back("[" + std::string(k.str()) + "] ignored: not part of the seed format");
    const toml::table* sites = root["sites"].as_table();
    if (!sites) return report;

    std::map<std::string, const toml::table*> sorted;  // toml++ tables are ordered already; be explicit
    for (const auto& [k, v] : *sites) sorted[std::string(k.str())] = v.as_table();
    for (const auto& [key, table] : sorted) {
        if (!table) {
            report.refused.push_back(key + ": [sites." + key + "] must be a table");
            continue;
        }
        std::vector<std::pair<std::string, std::string>> values;
        std::string problem;
        for (const auto& [k, v] : *table) {
            const SeedKey* sk = seed_key(k.str());
            auto s = v.value<std::string>();
            if (!sk) problem = "unknown key '" + std::string(k.str()) + "'";
            else if (!s) problem = std::string(sk->seed) + " must be a string";
            else values.emplace_back(sk->field, s->empty() ? *s : sk->prefix + *s);
            if (!problem.empty()) break;
        }
        if (!problem.empty()) {
            report.refused.push_back(key + ": " + problem);
            continue;
        }
        if (auto out = store.create_site(key); !out.ok()) {
            report.refused.push_back(key + ": " + out.reason);
            continue;
        }
        std::string taken;
        for (const auto& [field, value] : values) {
            if (auto out = store.write_field(key, field, value); !out.ok()) {
                problem = out.reason;
                break;
            }
            taken += (taken.empty() ? "" : ", ") + field;
        }
        if (!problem.empty()) {
            store.remove_site(key);  // taken whole or not at all
            report.refused.push_back(key + ": " + problem);
            continue;
        }
        report.taken.push_back(key + ": " + (taken.empty() ? std::string("no values") : taken));
    }
    return report;
}

std::string export_seed_toml(const Store& store, const SeedGlobals& globals) {
    std::string out = "# exported by sitesfs; the seed tool's sites.toml format\n[global]\n";
    out += "root = " + quote(globals.root) + "\ncaddyfile = " + quote(globals.caddyfile) + "\nlog = " + quote(globals.log) + "\n";
    for (const auto& name : store.site_names()) {
        const SiteRef s = store.site(name);
        if (!s) continue;
        out += "\n[sites." + name + "]\n";
        for (const auto& k : kSeedKeys) {
            std::string value = s->field(k.field).value;
            const std::string prefix = k.prefix;
            if (!prefix.empty() && !value.empty()) {
                if (!value.starts_with(prefix)) {
                    out += "# " + std::string(k.field) + " = " + quote(value) + " has no seed equivalent\n";
                    continue;
                }
                value = value.substr(prefix.size());
            }
            if (value.empty() && (std::string_view(k.seed) == "path" || std::string_view(k.seed) == "deploy_key")) continue;
            out += std::string(k.seed) + " = " + quote(value) + "\n";
        }
    }
    return out;
}

}  // namespace sitesfs
