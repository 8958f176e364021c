// The state-file loader: the input is up to three site files (split at NUL bytes) named
// blog.toml, docs.toml and shop.toml in a fresh state dir. Opening either fails with a StoreError
// naming one of the files and changes nothing on disk, or succeeds with every stored value, desired
// and actual, one its validator accepts unchanged, and no domain served by two sites.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "store/file_store.hpp"
#include "schemas/site_schema.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace sitesfs;

constexpr const char* kNames[] = {"blog", "docs", "shop"};

void check_value(const std::string& what, std::string_view field, const std::string& value) {
    const FieldSpec* spec = find_field(field);
    const Checked c = spec->check(value, ValidationPolicy{.allow_local_repos = true});
    if (!c.ok || c.value != value) fuzz::violation("the loader accepted a value its validator does not", what + " = [" + value + "]");
    if (auto why = fuzz::alphabet_problem(field, value); !why.empty()) fuzz::violation("loaded value outside the alphabet: " + why, what + " = [" + value + "]");
}

void check_site(const SiteRecord& s) {
    for (const auto& f : site_fields())
        if (is_writable(f)) check_value(s.name + ": desired." + std::string(f.name), f.name, s.field(f.name).value);
    // The reconciler hands these to the proxy renderer at start (Reconciler::load_served).
    check_value(s.name + ": actual.domain", "domain", s.actual.domain);
    check_value(s.name + ": actual.path", "path", s.actual.path);
    check_value(s.name + ": actual.commit", "commit", s.actual.commit);
    if (!s.actual.commit.empty() && s.actual.commit.size() != 40)
        fuzz::violation("a served commit that is not a full object id", s.name + ": [" + s.actual.commit + "]");
    // Independently of the loader: the states a reconciler reports, by name.
    static const std::set<std::string_view> states = {"", "pending", "deploying", "live", "failed"};
    if (!states.contains(to_string(s.actual.state)))
        fuzz::violation("an unknown actual.state was loaded", s.name + ": [" + std::string(to_string(s.actual.state)) + "]");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const fuzz::ScratchDir scratch("state");
    scratch.clear();
    const auto sites = scratch.path() / "state" / "sites";
    std::filesystem::create_directories(sites);

    std::vector<std::pair<std::filesystem::path, std::string>> files;
    std::string_view input(reinterpret_cast<const char*>(data), size);
    for (const char* name : kNames) {
        const size_t nul = input.find('\0');
        files.emplace_back(sites / (std::string(name) + ".toml"), std::string(input.substr(0, nul)));
        fuzz::write_file(files.back().first, files.back().second);
        if (nul == std::string_view::npos) break;
        input.remove_prefix(nul + 1);
    }

    std::unique_ptr<Store> store;
    try {
        store = open_file_store({scratch.path() / "state", false, {}});
    } catch (const StoreError& e) {
        const std::string message = e.what();
        bool named = false;
        for (const auto& [file, _] : files) named = named || message.starts_with(file.string());
        if (!named) fuzz::violation("the error does not start with the file it is about", message);
        if (auto why = fuzz::message_problem(message); !why.empty()) fuzz::violation("the error message: " + why, message);
    }
    for (const auto& [file, bytes] : files)
        if (fuzz::read_file(file) != bytes) fuzz::violation("opening the store changed a site file", file.string());
    if (!store) return 0;

    if (store->site_count() != files.size()) fuzz::violation("not every site file was loaded", std::to_string(store->site_count()));
    std::set<std::string> domains;
    for (const auto& name : store->site_names()) {
        const SiteRef s = store->site(name);
        check_site(*s);
        for (const auto& d : split_domains(s->field("domain").value))
            if (!domains.insert(d).second) fuzz::violation("a domain is served by two sites", d);
    }
    return 0;
}
