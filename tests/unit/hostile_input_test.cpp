// The hostile input corpus (tests/hostile/) against the validators: every case is refused, with a
// reason that names the field and that cannot break the one-line `status` file.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include "schemas/site_schema.hpp"
#include "schemas/validators.hpp"
#include "tests/support/hostile_corpus.hpp"

namespace sitesfs {
namespace {

const ValidationPolicy kDefault{};
const ValidationPolicy kLocal{.allow_local_repos = true};

bool has_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

std::string shown(const std::string& v) {
    std::string out;
    for (unsigned char c : v) {
        if (c >= 0x20 && c < 0x7f) out += static_cast<char>(c);
        else out += "\\x" + std::string(1, "0123456789abcdef"[c >> 4]) + "0123456789abcdef"[c & 15];
    }
    return out;
}

// The validator the filesystem runs for `field`, on the value as the filesystem passes it (trimmed).
Checked check_field(const std::string& field, const std::string& written, const ValidationPolicy& policy) {
    const FieldSpec* spec = find_field(field);
    if (spec == nullptr || spec->check == nullptr) return Checked::accept("<no validator for " + field + ">");
    return spec->check(trim(written), policy);
}

::testing::AssertionResult refused(const Checked& c, const std::string& prefix, const corpus::Case& k) {
    if (c.ok) return ::testing::AssertionFailure() << k.source << " '" << shown(k.value) << "' accepted as '" << c.value << "'";
    if (!c.value.empty()) return ::testing::AssertionFailure() << k.source << ": a refusal carries a value";
    if (c.reason.size() <= prefix.size() || c.reason.rfind(prefix, 0) != 0)
        return ::testing::AssertionFailure() << k.source << ": reason does not start with \"" << prefix << "\": " << shown(c.reason);
    if (has_control(c.reason)) return ::testing::AssertionFailure() << k.source << ": control bytes in " << shown(c.reason);
    return ::testing::AssertionSuccess();
}

TEST(HostileInput, EveryFieldCaseIsRefusedWithAReason) {
    for (const auto& [field, file] : corpus::kFieldFiles) {
        const auto cases = corpus::load(file);
        EXPECT_GE(cases.size(), 15u) << file;
        for (const auto& k : cases) {
            // The mount trims what is written; a case that trims to nothing would mean "unset".
            ASSERT_FALSE(trim(k.value).empty()) << k.source << " is only whitespace";
            EXPECT_TRUE(refused(check_field(field, k.value, kDefault), std::string(field) + " '", k));
        }
    }
}

// Only the local forms depend on --allow-local-repos; everything else in repo.txt stays refused.
TEST(HostileInput, RepoCasesAreRefusedEvenWithLocalReposAllowed) {
    for (const auto& k : corpus::load("repo.txt")) EXPECT_TRUE(refused(check_repo(trim(k.value), kLocal), "repo '", k));
}

TEST(HostileInput, LocalReposAreRefusedOnlyForWantOfTheFlag) {
    for (const auto& k : corpus::load("repo_needs_flag.txt")) {
        const Checked strict = check_repo(trim(k.value), kDefault);
        EXPECT_NE(strict.reason.find("local repositories need --allow-local-repos"), std::string::npos)
            << k.source << ": " << strict.reason;
        EXPECT_TRUE(check_repo(trim(k.value), kLocal).ok) << k.source << " is not a well-formed local repo";
    }
}

TEST(HostileInput, EverySiteNameIsRefusedWithAReason) {
    const auto cases = corpus::load("site_name.txt");
    EXPECT_GE(cases.size(), 15u);
    for (const auto& k : cases) EXPECT_TRUE(refused(check_site_name(k.value), "site name '", k));
}

// The classes issue 7 names must stay in the corpus: a case of each, found by what it contains.
TEST(HostileInput, TheCorpusCoversEveryNamedClass) {
    using Pred = std::function<bool(const std::string&)>;
    const auto contains = [](std::string part) -> Pred { return [part](const std::string& v) { return v.find(part) != std::string::npos; }; };
    const auto starts = [](std::string part) -> Pred { return [part](const std::string& v) { return v.rfind(part, 0) == 0; }; };
    const auto equals = [](std::string part) -> Pred { return [part](const std::string& v) { return v == part; }; };
    const Pred non_ascii = [](const std::string& v) { return std::any_of(v.begin(), v.end(), [](char c) { return c & 0x80; }); };
    const Pred control = [](const std::string& v) { return has_control(trim(v)); };
    const Pred long_label = [](const std::string& v) { return v.find(std::string(64, 'a')) != std::string::npos; };
    const Pred upper = [](const std::string& v) { return std::any_of(v.begin(), v.end(), [](char c) { return c >= 'A' && c <= 'Z'; }); };
    const Pred length64 = [](const std::string& v) { return v.size() == 64; };
    const std::vector<std::tuple<std::string, std::string, Pred>> classes{
        {"domain.txt", "newline", contains("\n")},     {"domain.txt", "{", contains("{")},
        {"domain.txt", "}", contains("}")},            {"domain.txt", "#", contains("#")},
        {"domain.txt", "double quote", contains("\"")}, {"domain.txt", "single quote", contains("'")},
        {"domain.txt", "{$ENV}", contains("{$")},      {"domain.txt", "space", contains(" ")},
        {"domain.txt", "import", equals("import")},    {"domain.txt", ":port", contains(":80")},
        {"domain.txt", "scheme", contains("://")},     {"domain.txt", "unicode", non_ascii},
        {"domain.txt", "over-long label", long_label}, {"repo.txt", "ext::", starts("ext::")},
        {"repo_needs_flag.txt", "file://", starts("file://")}, {"repo.txt", "-u", starts("-u")},
        {"repo.txt", "space", contains(" ")},          {"repo.txt", "control", control},
        {"branch.txt", "..", contains("..")},          {"branch.txt", "@{", contains("@{")},
        {"branch.txt", "backslash", contains("\\")},   {"site_name.txt", "/", contains("/")},
        {"site_name.txt", "..", equals("..")},         {"site_name.txt", ".", equals(".")},
        {"site_name.txt", "uppercase", upper},         {"site_name.txt", "64 chars", length64},
    };
    for (const auto& [file, what, pred] : classes) {
        const auto cases = corpus::load(file);
        EXPECT_TRUE(std::any_of(cases.begin(), cases.end(), [&](const corpus::Case& k) { return pred(k.value); }))
            << file << " has no case with " << what;
    }
}

TEST(HostileInput, EscapesDecodeAndTyposFail) {
    EXPECT_EQ(corpus::unescape("a\\nb\\t\\\\\\x00\\u{1F4A9}\\u{e9}", "t"), std::string("a\nb\t\\\0\xf0\x9f\x92\xa9\xc3\xa9", 12));
    for (const char* bad : {"a\\", "\\q", "\\x1", "\\xzz", "\\u{}", "\\u1234", "\\u{110000}", "\\u{12"})
        EXPECT_THROW(corpus::unescape(bad, "t"), std::runtime_error) << bad;
}

}  // namespace
}  // namespace sitesfs
