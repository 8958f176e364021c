// What the `_redirects` and `_headers` targets check alike, for a parser of either file: a refusal
// is one printable line naming a line of the file (or the size cap); the same file with CRLF line
// ends gets the same verdict; an accepted file has at most `max_rules` rules, in file order, each
// passing `check_rule`. And what both check of a path pattern.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "hooks/site_rules.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace sitesfs::fuzz {

inline std::string shown_rules_input(std::string_view input, std::string_view verdict) {
    return "input of " + std::to_string(input.size()) + " bytes\n" + std::string(verdict);
}

// The regex is made only of the template's pieces (fuzz_support.cpp), one group per name, each name once.
inline std::string path_pattern_problem(const hooks::PathPattern& p) {
    if (auto why = rules_regex_problem(p.regex, p.names.size()); !why.empty()) return "regex " + p.regex + ": " + why;
    if (std::set<std::string>(p.names.begin(), p.names.end()).size() != p.names.size()) return "a capture name twice";
    return {};
}

template <typename Rule>
struct RulesVerdict {
    std::vector<Rule> rules;
    std::string error;
    bool operator==(const RulesVerdict&) const = default;
};

template <typename Rule>
RulesVerdict<Rule> parse_rules(std::vector<Rule> (*parse)(std::string_view), std::string_view text) {
    try {
        return {parse(text), {}};
    } catch (const hooks::RulesError& e) {
        return {{}, e.what()};
    }
}

template <typename Rule>
void check_rules_file(std::string_view input, std::vector<Rule> (*parse)(std::string_view), size_t max_rules,
                      void (*check_rule)(std::string_view input, const Rule&)) {
    const RulesVerdict<Rule> v = parse_rules(parse, input);
    if (!v.error.empty()) {
        if (auto why = message_problem(v.error); !why.empty()) violation("refusal: " + why, shown_rules_input(input, v.error));
        if (!v.error.starts_with("line ") && !v.error.starts_with("the file is "))
            violation("a refusal without its line", shown_rules_input(input, v.error));
    } else {
        if (v.rules.size() > max_rules) violation("more rules than the cap", shown_rules_input(input, ""));
        for (size_t i = 0; i < v.rules.size(); ++i) {
            if (i > 0 && v.rules[i].line <= v.rules[i - 1].line) violation("rules out of file order", shown_rules_input(input, ""));
            check_rule(input, v.rules[i]);
        }
    }
    if (input.find('\r') == std::string_view::npos && input.size() < hooks::kMaxRulesFileBytes / 2) {
        std::string crlf;
        for (char c : input) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
        if (!(parse_rules(parse, crlf) == v)) violation("CRLF line ends change the verdict", shown_rules_input(input, v.error));
    }
}

}  // namespace sitesfs::fuzz
