#include "store/seed_format.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <sstream>

#include "common/files.hpp"
#include "common/toml_error.hpp"
#include "schemas/site_schema.hpp"
#include "schemas/validators.hpp"

namespace sitesfs {

namespace {

struct SeedKey {
    std::string_view seed;
    FieldName field;
    bool required;
};

// In the order an export writes them. `commit`, `check`, `hosts`, the serving and the build fields are not in
// the seed tool's format: without them a copy made with --import would follow the branch instead of
// the pin, pass a deploy the original's check refuses, deploy on every host, and serve differently.
constexpr SeedKey kSeedKeys[] = {
    {"domain", "domain", true},
    {"repo", "repo", true},
    {"branch", "branch", true},
    {"commit", "commit", false},
    {"path", "path", false},
    {"deploy_key", "deploy_key_ref", false},
    {"check", "check", false},
    {"hosts", "hosts", false},
    {"routing", "routing", false},
    {"aliases", "aliases", false},
    {"auth_ref", "auth_ref", false},
    {"build", "build", false},
    {"submodules", "submodules", false},
};

// "domain, repo, ... and hosts", for a refusal of a key the format does not have.
std::string seed_key_list() {
    std::string out;
    for (const auto& k : kSeedKeys)
        out += (out.empty() ? "" : &k == &kSeedKeys[std::size(kSeedKeys) - 1] ? " and " : ", ") + std::string(k.seed);
    return out;
}

// The seed tool's deploy_key names an entry of its secret store, which is a command that prints
// the key; sitesfs reaches the same secret through its `cmd:` provider. A value that already names
// a provider (`file:blog`, as a NixOS module may declare) is taken as it is.
constexpr std::string_view kSecretStore = "cmd:";

const SeedKey* seed_key(std::string_view key) {
    for (const auto& k : kSeedKeys)
        if (k.seed == key) return &k;
    return nullptr;
}

std::string quote(std::string_view s) {
    std::ostringstream out;
    out << toml::toml_formatter{toml::value<std::string>(std::string(s)), toml::format_flags::allow_unicode_strings};
    return out.str();
}

// Site names may hold dots, which a bare key would turn into nested tables.
std::string table_key(std::string_view name) {
    const bool bare = std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
    return bare ? std::string(name) : quote(name);
}

// A value as report lines quote it: one line of ASCII (no multi-line strings, non-ASCII escaped).
// Tables, dotted keys included, print as sections over several lines: they are only named.
std::string shown(const toml::node& n) {
    if (n.is_table()) return "a table";
    if (n.is_array_of_tables()) return "an array of tables";
    std::ostringstream out;
    out << toml::toml_formatter{n, toml::format_flags::none};
    return out.str();
}

toml::table parse_seed(const std::filesystem::path& file) {
    std::optional<std::string> text;
    try {
        text = read_file(file);
    } catch (const FileError& e) {
        throw StoreError(e.what());
    }
    if (!text) throw StoreError("cannot read " + file.string() + ": " + std::strerror(ENOENT));
    try {
        return toml::parse(*text, std::string_view(file.string()));
    } catch (const toml::parse_error& e) {
        throw StoreError(toml_error_text(e, file.string()));
    }
}

std::string global_note(std::string_view key, const toml::node& value) {
    std::string where;
    if (key == "root") where = "set data_dir in the sitesfs config";
    else if (key == "caddyfile") where = "set file in the [proxy] table of the sitesfs config";
    else if (key == "log") where = "sitesfs logs deploys to deploy.log in its state dir";
    else where = "not part of the seed format";
    return "[global] " + printable(key) + " = " + shown(value) + " not imported: " + where;
}

// What one [sites.KEY] table asks for: the site to create, or the problems that refuse it. Values
// are checked here to report every problem at once; the store checks them again under its own
// policy (local repos), and claims the domains, when it creates the site.
struct SeedSite {
    NewSite site;
    std::string taken;  // "domain, repo, branch"
    std::vector<std::string> problems;
};

SeedSite read_site(const Store& store, const std::string& key, const toml::node& node) {
    SeedSite out;
    out.site.name = key;
    auto& problems = out.problems;
    if (const Checked c = check_site_name(key); !c.ok) problems.push_back(c.reason);
    else if (store.site(key)) problems.push_back("site '" + key + "' already exists");
    const toml::table* table = node.as_table();
    if (!table) {
        problems.push_back("sites." + printable(key) + " must be a table");
        return out;
    }
    for (const auto& [k, v] : *table)
        if (!seed_key(k.str()))
            problems.push_back("unknown key '" + printable(k.str()) + "'; a site has " + seed_key_list());
    const ValidationPolicy permissive{.allow_local_repos = true};
    for (const auto& sk : kSeedKeys) {
        const toml::node* n = table->get(sk.seed);
        if (!n) {
            if (sk.required) problems.push_back("missing key '" + std::string(sk.seed) + "'");
            continue;
        }
        const auto* text = n->as_string();
        if (!text) {
            problems.push_back(std::string(sk.seed) + " must be a string, not " + shown(*n));
            continue;
        }
        std::string value(trim(text->get()));
        if (sk.field == FieldName("deploy_key_ref") && !value.empty() && value.find(':') == std::string::npos)
            value = std::string(kSecretStore) + value;
        if (const Checked c = find_field(sk.field.str())->check(value, permissive); !c.ok) problems.push_back(c.reason);
        else out.site.values.emplace_back(std::string(sk.field.str()), std::move(value));
        out.taken += (out.taken.empty() ? "" : ", ") + std::string(sk.seed);
    }
    return out;
}

// Sites are created in batches, each made durable at once: one flush per batch, not one per site.
constexpr size_t kImportBatch = 1000;

// Creates the sites in `batch` (indices into `sites`); a refusal becomes the site's problem.
void create_batch(Store& store, std::vector<SeedSite>& sites, std::vector<size_t>& batch) {
    std::vector<NewSite> wanted;
    for (const size_t i : batch) wanted.push_back(sites[i].site);
    const std::vector<Outcome> outcomes = store.create_sites(wanted);
    for (size_t k = 0; k < batch.size(); ++k)
        if (!outcomes[k].ok()) sites[batch[k]].problems.push_back(outcomes[k].reason);
    batch.clear();
}

}  // namespace

ImportReport import_seed_toml(Store& store, const std::filesystem::path& file) {
    const toml::table root = parse_seed(file);
    ImportReport report;
    for (const auto& [k, v] : root)
        if (k != "global" && k != "sites")
            report.notes.push_back(printable(k.str()) + " not imported: the seed format has only [global] and [sites.NAME]");
    if (const toml::node* global = root.get("global")) {
        if (const toml::table* table = global->as_table()) {
            for (const auto& [k, v] : *table) report.notes.push_back(global_note(k.str(), v));
        } else {
            report.notes.push_back("global not imported: it must be a table");
        }
    }
    const toml::node* sites = root.get("sites");
    if (!sites) return report;
    if (!sites->is_table()) {
        report.refused.push_back("sites: must be a table of [sites.NAME] tables, not " + shown(*sites));
        return report;
    }
    // toml++ tables iterate in key order, which makes the import order the sorted one.
    std::vector<SeedSite> read;
    std::vector<size_t> batch;
    for (const auto& [k, v] : *sites->as_table()) {
        read.push_back(read_site(store, std::string(k.str()), v));
        if (!read.back().problems.empty()) continue;
        batch.push_back(read.size() - 1);
        if (batch.size() == kImportBatch) create_batch(store, read, batch);
    }
    create_batch(store, read, batch);
    for (const auto& s : read) {
        if (s.problems.empty()) report.taken.push_back(s.site.name + ": " + s.taken);
        for (const auto& p : s.problems) report.refused.push_back(printable(s.site.name) + ": " + p);
    }
    return report;
}

std::string export_seed_toml(const Store& store, const SeedGlobals& globals) {
    std::string out = "# exported by sitesfs; the seed tool's sites.toml format\n[global]\n";
    out += "root = " + quote(globals.root) + "\n";
    out += "caddyfile = " + quote(globals.caddyfile) + "\n";
    out += "log = " + quote(globals.log) + "\n";
    for (const auto& name : store.site_names()) {
        const SiteRef s = store.site(name);
        if (!s) continue;  // removed since site_names()
        out += "\n[sites." + table_key(name) + "]\n";
        for (const auto& sk : kSeedKeys) {
            const std::string& value = s->field(sk.field).value;
            if (sk.field == FieldName("deploy_key_ref") && value.starts_with(kSecretStore)) {
                // The seed's own spelling; any other provider keeps its prefix, which import takes as it is.
                out += "deploy_key = " + quote(value.substr(kSecretStore.size())) + "\n";
            } else if (sk.required || !value.empty()) {
                out += std::string(sk.seed) + " = " + quote(value) + "\n";
            }
        }
    }
    return out;
}

}  // namespace sitesfs
