// One validator per target (FUZZ_FIELD, see CMakeLists.txt), under both policies.
// Properties: an accepted value is in the field's alphabet (fuzz_support.cpp) and is accepted
// again unchanged (normal form is a fixed point); a refusal has a one-line printable reason; the
// policy only ever widens what repo accepts, and changes nothing for the other fields.
#include <cstddef>
#include <cstdint>
#include <string>

#include "schemas/site_schema.hpp"
#include "schemas/validators.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace sitesfs;

constexpr std::string_view kField = FUZZ_FIELD;

// The validators the store applies (the schema's table), and the site-name check mkdir applies.
Checked check(std::string_view v, const ValidationPolicy& policy) {
    if (kField == "site_name") return check_site_name(v);
    static const FieldSpec* const spec = find_field(kField);
    return spec->check(v, policy);
}

std::string shown(std::string_view input, const Checked& c) {
    std::string out = "field " + std::string(kField) + ", input of " + std::to_string(input.size()) + " bytes\n";
    return out + (c.ok ? "accepted: [" + c.value + "]" : "refused: [" + c.reason + "]");
}

void check_one(std::string_view input, const Checked& c, const ValidationPolicy& policy) {
    if (!c.ok) {
        if (auto why = fuzz::message_problem(c.reason); !why.empty()) fuzz::violation("refusal reason: " + why, shown(input, c));
        if (!c.value.empty()) fuzz::violation("a refusal carries a value", shown(input, c));
        return;
    }
    if (auto why = fuzz::alphabet_problem(kField, c.value); !why.empty())
        fuzz::violation("accepted value outside the alphabet: " + why, shown(input, c));
    const Checked again = check(c.value, policy);
    if (!again.ok || again.value != c.value) fuzz::violation("normal form is not a fixed point", shown(c.value, again));
    if (kField == "domain") {
        // What the proxy renderer and the store split the stored value into.
        std::string joined;
        for (const auto& name : split_domains(c.value)) joined += (joined.empty() ? "" : " ") + name;
        if (joined != c.value) fuzz::violation("split_domains does not give back the stored names", shown(input, c));
    }
    if (kField == "repo" && repo_fetch_url(c.value).starts_with("-"))
        fuzz::violation("the fetch URL would be read as an option", shown(input, c));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const ValidationPolicy strict{.allow_local_repos = false};
    const ValidationPolicy local{.allow_local_repos = true};
    // The store trims before it checks; the raw input is checked as well, since a validator's
    // contract must hold for any bytes it is given.
    for (const std::string_view v : {input, trim(input)}) {
        const Checked a = check(v, strict);
        const Checked b = check(v, local);
        check_one(v, a, strict);
        check_one(v, b, local);
        if (a.ok && (!b.ok || b.value != a.value)) fuzz::violation("allowing local repos refused a value", shown(v, b));
        if (kField != "repo" && (a.ok != b.ok || a.value != b.value || a.reason != b.reason))
            fuzz::violation("the local-repo policy changed the verdict of another field", shown(v, a) + "\n" + shown(v, b));
        if (kField == "repo" && !a.ok && b.ok && !(b.value.starts_with("/") || b.value.starts_with("file://")))
            fuzz::violation("only local repos may depend on the policy", shown(v, b));
    }
    return 0;
}
