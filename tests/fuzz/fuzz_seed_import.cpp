// The sites.toml importer, into a fresh file store on tmpfs (the store keeps its fsyncs; they are
// free there). Either parsing fails with a StoreError naming the file, or: every site in the store
// was reported taken with exactly the normalized values of its table, every other site was reported
// refused, every report line is one printable line, and the export parses back to the same sites.
#include <toml++/toml.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "store/file_store.hpp"
#include "store/seed_format.hpp"
#include "schemas/site_schema.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace sitesfs;

constexpr std::pair<std::string_view, std::string_view> kKeys[] = {
    {"domain", "domain"}, {"repo", "repo"},  {"branch", "branch"}, {"commit", "commit"},
    {"path", "path"},     {"deploy_key", "deploy_key_ref"}, {"check", "check"}};

// What the store must hold for one seed key of a taken site.
std::string expected(const toml::table& site, std::string_view seed_key, std::string_view field) {
    const auto text = site[seed_key].value<std::string>();
    if (!text) return {};
    std::string value(trim(*text));
    if (field == "deploy_key_ref" && !value.empty() && value.find(':') == std::string::npos) value = "cmd:" + value;
    return find_field(field)->check(value, ValidationPolicy{}).value;
}

void check_lines(const char* kind, const std::vector<std::string>& lines) {
    for (const auto& line : lines)
        if (auto why = fuzz::message_problem(line); !why.empty()) fuzz::violation(std::string("a report line (") + kind + "): " + why, line);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const fuzz::ScratchDir scratch("seed");
    scratch.clear();
    const auto file = scratch.path() / "sites.toml";
    const std::string text(reinterpret_cast<const char*>(data), size);
    fuzz::write_file(file, text);
    const auto store = open_file_store({scratch.path() / "state", false, {}});

    ImportReport report;
    try {
        report = import_seed_toml(*store, file);
    } catch (const StoreError& e) {
        const std::string message = e.what();
        if (!message.starts_with(file.string() + ":")) fuzz::violation("the error does not start with the file", message);
        if (auto why = fuzz::message_problem(message); !why.empty()) fuzz::violation("the error message: " + why, message);
        if (store->site_count() != 0) fuzz::violation("a file that does not parse created sites", message);
        return 0;
    }
    check_lines("taken", report.taken);
    check_lines("refused", report.refused);
    check_lines("notes", report.notes);
    if (report.taken.size() != store->site_count())
        fuzz::violation("taken lines and sites differ", std::to_string(report.taken.size()) + " vs " + std::to_string(store->site_count()));

    const toml::table root = toml::parse(text);  // parsed above without an error
    const toml::table* seeds = root["sites"].as_table();
    if (!seeds && store->site_count() != 0) fuzz::violation("sites created without a [sites] table", "");
    if (!seeds) return 0;
    for (const auto& [key, node] : *seeds) {
        const std::string name(key.str());
        const SiteRef s = store->site(name);
        if (!s) {
            if (!std::any_of(report.refused.begin(), report.refused.end(),
                             [&](const std::string& l) { return l.starts_with(printable(name) + ": "); }))
                fuzz::violation("a site neither taken nor refused", printable(name));
            continue;
        }
        for (const auto& [seed_key, field] : kKeys) {
            const std::string& got = s->field(FieldName::known(field)).value;
            if (got != expected(*node.as_table(), seed_key, field))
                fuzz::violation("a taken site holds another value than its table", name + "." + std::string(field) + " = [" + got + "]");
            if (auto why = fuzz::alphabet_problem(field, got); !why.empty()) fuzz::violation("imported value outside the alphabet: " + why, got);
        }
    }

    // The export is what /sites/.sites.toml shows: it must parse back to the same sites and values,
    // every desired field (the pin and any key provider included) read as an import reads it.
    const std::string exported = export_seed_toml(*store, {"/srv/www", "/etc/caddy/sites.conf", "/var/log/deploy.log"});
    toml::table back;
    try {
        back = toml::parse(exported);
    } catch (const toml::parse_error& e) {
        fuzz::violation("the export does not parse", std::string(e.description()) + "\n" + exported);
    }
    const toml::table* sites = back["sites"].as_table();
    if ((sites ? sites->size() : 0) != store->site_count()) fuzz::violation("the export lists other sites", exported);
    for (const auto& name : store->site_names()) {
        const toml::table* site = back["sites"][name].as_table();
        for (const auto& [seed_key, field] : kKeys)
            if (!site || expected(*site, seed_key, field) != store->site(name)->field(FieldName::known(field)).value)
                fuzz::violation("the export holds another " + std::string(field) + " for " + name, exported);
    }
    return 0;
}
