// The site-file codec, in memory: the input is up to three site files (split at NUL bytes) named
// blog.toml, docs.toml and shop.toml. Each one either fails to parse with a StoreError naming the
// file, or parses into a record whose every stored value, desired and actual, is one its validator
// accepts unchanged; and rendering that record gives a file that parses back to the same bytes.
// (A domain claimed by two files is the store's check at load, covered by tests/unit/store_test.cpp.)
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "schemas/site_schema.hpp"
#include "store/site_file.hpp"
#include "store/store.hpp"
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
        if (is_writable(f)) check_value(s.name + ": desired." + std::string(f.name), f.name, s.field(FieldName::known(f.name)).value);
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
    std::string_view input(reinterpret_cast<const char*>(data), size);
    for (const char* name : kNames) {
        const size_t nul = input.find('\0');
        const std::string_view text = input.substr(0, nul);
        const std::string shown = std::string(name) + ".toml";
        SiteRecord site;
        try {
            site = parse_site_file(text, name, shown);
        } catch (const StoreError& e) {
            const std::string message = e.what();
            if (!message.starts_with(shown)) fuzz::violation("the error does not start with the file it is about", message);
            if (auto why = fuzz::message_problem(message); !why.empty()) fuzz::violation("the error message: " + why, message);
            site.name.clear();
        }
        if (!site.name.empty()) {
            check_site(site);
            const std::string rendered = render_site_file(site);
            try {
                const SiteRecord again = parse_site_file(rendered, name, shown);
                if (render_site_file(again) != rendered) fuzz::violation("a rendered file does not parse back to itself", rendered);
            } catch (const StoreError& e) {
                fuzz::violation(std::string("a rendered file does not parse: ") + e.what(), rendered);
            }
        }
        if (nul == std::string_view::npos) break;
        input.remove_prefix(nul + 1);
    }
    return 0;
}
