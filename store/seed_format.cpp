#include "store/seed_format.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "schemas/site_schema.hpp"
#include "schemas/validators.hpp"

namespace sitesfs {

namespace {

struct SeedKey {
    std::string_view seed;
    std::string_view field;
    bool required;
};

// In the order an export writes them. `commit` and `check` are not in the seed tool's format: without
// them a copy made with --import would follow the branch instead of the pin, and pass a deploy the
// original's check refuses.
constexpr SeedKey kSeedKeys[] = {
    {"domain", "domain", true},
    {"repo", "repo", true},
    {"branch", "branch", true},
    {"commit", "commit", false},
    {"path", "path", false},
    {"deploy_key", "deploy_key_ref", false},
    {"check", "check", false},
};

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
    std::string text;
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw StoreError(file.string() + ": " + std::strerror(errno));
    char buf[8192];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) != 0) {
        if (n > 0) text.append(buf, static_cast<size_t>(n));
        else if (errno != EINTR) {
            const int e = errno;
            ::close(fd);
            throw StoreError(file.string() + ": " + std::strerror(e));
        }
    }
    ::close(fd);
    try {
        return toml::parse(text, std::string_view(file.string()));
    } catch (const toml::parse_error& e) {
        std::ostringstream msg;
        msg << file.string() << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << printable(e.description());
        throw StoreError(msg.str());
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

// A site is taken whole or not at all, so every value is checked before the site is created.
// That check allows local repos; the store applies its own policy (and domain uniqueness) when
// the values are written, and a refusal there removes the site again.
void import_site(Store& store, const std::string& key, const toml::node& node, ImportReport& report) {
    std::vector<std::string> problems;
    std::vector<std::pair<const SeedKey*, std::string>> values;
    if (const Checked c = check_site_name(key); !c.ok) problems.push_back(c.reason);
    else if (store.site(key)) problems.push_back("site '" + key + "' already exists");
    if (const toml::table* table = node.as_table()) {
        for (const auto& [k, v] : *table)
            if (!seed_key(k.str()))
                problems.push_back("unknown key '" + printable(k.str()) + "'; a site has domain, repo, branch, commit, path and deploy_key");
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
            if (sk.field == "deploy_key_ref" && !value.empty() && value.find(':') == std::string::npos)
                value = std::string(kSecretStore) + value;
            if (const Checked c = find_field(sk.field)->check(value, permissive); !c.ok) problems.push_back(c.reason);
            else values.emplace_back(&sk, std::move(value));
        }
    } else {
        problems.push_back("sites." + printable(key) + " must be a table");
    }
    auto refuse_all = [&] {
        for (const auto& p : problems) report.refused.push_back(printable(key) + ": " + p);
    };
    if (!problems.empty()) return refuse_all();

    if (Outcome out = store.create_site(key); !out.ok()) {
        problems.push_back(out.reason);
        return refuse_all();
    }
    // repo last: a site is incomplete until repo and domain are set, so the reconciler never
    // starts on a site that a later refusal removes.
    std::stable_partition(values.begin(), values.end(), [](const auto& v) { return v.first->field != "repo"; });
    for (const auto& [sk, value] : values)
        if (Outcome out = store.write_field(key, sk->field, value); !out.ok()) problems.push_back(out.reason);
    if (!problems.empty()) {
        if (Outcome out = store.remove_site(key); !out.ok())
            problems.push_back("the partly imported site could not be removed again: " + out.reason);
        return refuse_all();
    }
    std::string taken;
    for (const auto& sk : kSeedKeys)
        if (node.as_table()->contains(sk.seed)) taken += (taken.empty() ? "" : ", ") + std::string(sk.seed);
    report.taken.push_back(key + ": " + taken);
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
    for (const auto& [k, v] : *sites->as_table()) import_site(store, std::string(k.str()), v, report);
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
            if (sk.field == "deploy_key_ref" && value.starts_with(kSecretStore)) {
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
