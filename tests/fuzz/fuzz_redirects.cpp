// The `_redirects` parser: the checks of fuzz_rules.hpp, and for each accepted rule a FROM regex
// made only of the template's pieces (fuzz_support.cpp, written from the header's contract) with one
// group per unique name, a TO in its alphabet whose capture references are FROM's groups, a status
// from the list, a URL only with a 3xx status.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "tests/fuzz/fuzz_rules.hpp"

namespace {

using namespace sitesfs;

void check_rule(std::string_view input, const hooks::RedirectRule& r) {
    const auto fail = [&](const std::string& what) {
        fuzz::violation(what, fuzz::shown_rules_input(input, "line " + std::to_string(r.line)));
    };
    if (auto why = fuzz::path_pattern_problem(r.from); !why.empty()) fail("FROM: " + why);
    if (!std::set<int>{200, 301, 302, 307, 308, 404}.contains(r.status)) fail("status " + std::to_string(r.status));
    if (r.external && (r.status == 200 || r.status == 404)) fail("a URL with status " + std::to_string(r.status));
    std::string target;
    for (const auto& part : r.to) {
        if (part.group == 0 && part.text.empty()) fail("an empty literal part");
        if (part.group != 0 && !part.text.empty()) fail("a capture part with text");
        if (part.group < 0 || part.group > static_cast<int>(r.from.names.size())) fail("group " + std::to_string(part.group));
        target += part.group == 0 ? part.text : "\x01";
    }
    if (auto why = fuzz::rules_target_problem(target, r.external); !why.empty()) fail("TO: " + why);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    fuzz::check_rules_file(input, &hooks::parse_redirects, hooks::kMaxRedirectRules, &check_rule);
    return 0;
}
