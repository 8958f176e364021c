// The `_headers` parser: the checks of fuzz_rules.hpp, and for each accepted path a regex made only
// of the template's pieces (fuzz_support.cpp) with one group per unique name, and 1..kMaxHeadersPerRule
// headers of distinct allow-listed canonical names with values in their alphabet.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "tests/fuzz/fuzz_rules.hpp"

namespace {

using namespace sitesfs;

void check_rule(std::string_view input, const hooks::HeaderRule& r) {
    const auto fail = [&](const std::string& what) {
        fuzz::violation(what, fuzz::shown_rules_input(input, "line " + std::to_string(r.line)));
    };
    if (auto why = fuzz::path_pattern_problem(r.path); !why.empty()) fail("path: " + why);
    if (r.headers.empty() || r.headers.size() > hooks::kMaxHeadersPerRule) fail("no headers, or more than the cap");
    const auto& allowed = hooks::allowed_header_names();
    std::set<std::string> names;
    for (const auto& h : r.headers) {
        if (std::find(allowed.begin(), allowed.end(), h.name) == allowed.end()) fail("header name " + h.name);
        if (!names.insert(h.name).second) fail("header " + h.name + " twice");
        if (auto why = fuzz::header_value_problem(h.value); !why.empty()) fail("value of " + h.name + ": " + why);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    fuzz::check_rules_file(input, &hooks::parse_headers, hooks::kMaxHeaderRules, &check_rule);
    return 0;
}
