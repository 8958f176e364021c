// The Caddy renderer. The input is decoded into a scheme, a port and up to six sites
// (name, domain, path, commit, routing, aliases, 404 page, _redirects and _headers text).
// Validated mode builds each site as the product does: every value through its validator or
// parser (a refused value never reaches the proxy), the root as DATA/NAME/current[/PATH], no
// domain in two sites; the renderer must then render without an error. Raw mode hands the
// undecoded strings straight to the renderer, which must refuse them or render them safely.
// Either way the output after the fixed prelude (header and snippets) is tokenized as Caddy would
// and every token must be a fixed token of the template or exactly one of the values given in
// (a quoted token: a header value given in); braces balance; no "{$"; `import` only of the
// prelude's snippets; no comment.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "hooks/proxy_config.hpp"
#include "hooks/site_rules.hpp"
#include "schemas/validators.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace sitesfs;
using hooks::ProxySite;

struct RawSite {
    std::string name, domain, path, commit, redirects, headers;
};

const std::set<std::string> kTemplateTokens = {
    "{",        "}",         "root",   "*",    "file_server", "header",      "bind",  "basicauth", "handle",
    "redir",    "rewrite",   "status", "404",  "not",         "file",        "{path}", "{path}.html",
    "{path}/index.html",     "path_regexp",  "301", "302", "307", "308", "200", "{uri}"};
const std::set<std::string> kSnippets = {
    "sitesfs_commit",          "sitesfs_site",           "sitesfs_static",     "sitesfs_spa",
    "sitesfs_errors",          "sitesfs_errors_404_page", "sitesfs_redirect",  "sitesfs_redirect_forced",
    "sitesfs_rewrite",         "sitesfs_rewrite_forced", "sitesfs_rewrite_404", "sitesfs_rewrite_404_forced"};

// Whitespace-separated tokens; a token that starts with '"' runs to the next '"' (Caddy's quoting).
std::vector<std::string> split_ws(const std::string& line) {
    std::vector<std::string> out;
    std::string cur;
    bool quoted = false;
    for (char c : line) {
        if (quoted) {
            cur += c;
            if (c == '"') quoted = false;
        } else if (c == ' ' || c == '\t') {
            if (!cur.empty()) out.push_back(std::move(cur));
            cur.clear();
        } else {
            if (cur.empty() && c == '"') quoted = true;
            cur += c;
        }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

// A rule's matcher names and the text of its target, as the renderer writes them.
void rule_values(const ProxySite& s, std::set<std::string>& values) {
    for (size_t i = 0; i < s.rules.redirects.size(); ++i) {
        const auto& r = s.rules.redirects[i];
        const std::string name = "r" + std::to_string(i);
        values.insert(name);
        values.insert("@" + name);
        values.insert(r.from.regex);
        std::string to;
        for (const auto& part : r.to)
            to += part.group == 0 ? part.text : "{re." + name + "." + std::to_string(part.group) + "}";
        values.insert(to);
    }
    for (size_t i = 0; i < s.rules.headers.size(); ++i) {
        const auto& r = s.rules.headers[i];
        const std::string name = "h" + std::to_string(i);
        values.insert(name);
        values.insert("@" + name);
        values.insert(r.path.regex);
        for (const auto& h : r.headers) {
            values.insert(h.name);
            values.insert("\"" + h.value + "\"");
        }
    }
}

void check_output(const std::string& out, const std::vector<ProxySite>& sites, const hooks::ProxyOptions& options) {
    auto fail = [&](const std::string& what) { fuzz::violation(what, out); };
    // Values: each address exactly as the template joins it, each root and each commit.
    std::set<std::string> values;
    std::map<std::string, int> roots;
    for (const auto& s : sites) {
        for (const auto& d : s.domains) {
            std::string address = (options.scheme.empty() ? "" : options.scheme + "://") + d;
            if (options.port != 0) address += ":" + std::to_string(options.port);
            values.insert(address);
            values.insert(address + ",");
            if (d.find('\n') != std::string::npos) fail("a domain holds a newline");
        }
        values.insert(s.root.string());
        values.insert(s.commit);
        ++roots[s.root.string()];
        rule_values(s, values);
        for (const auto& u : s.users) {
            values.insert(u.user);
            values.insert(u.hash);
        }
        const std::string first = s.domains.empty() ? "" : s.domains.front();
        for (const std::string& scheme : {options.scheme.empty() ? std::string("https") : options.scheme, std::string("http")})
            values.insert(scheme + "://" + first + (options.port != 0 ? ":" + std::to_string(options.port) : "") + "{uri}");
    }
    hooks::ProxyOptions bare = options;
    const std::string prelude = hooks::make_caddy_config(bare)->render({});
    if (!out.starts_with(prelude)) fail("the output does not start with the prelude");
    if (out.find("{$") != std::string::npos) fail("an environment placeholder {$ in the output");
    for (char c : out)
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') || static_cast<unsigned char>(c) >= 0x7f)
            fail("a byte that is not printable ASCII, newline or tab");
    std::istringstream lines(out.substr(std::min(prelude.size(), out.size())));
    std::string line;
    int depth = 0, blocks = 0;
    std::map<std::string, int> seen;
    while (std::getline(lines, line)) {
        const auto tokens = split_ws(line);
        for (size_t i = 0; i < tokens.size(); ++i) {
            const std::string& t = tokens[i];
            if (t.front() == '#' || t.front() == '`' || t.find('\\') != std::string::npos)
                fail("a comment, backquote or escape in token [" + t + "]");
            if (t == "import") {
                if (i + 1 >= tokens.size() || !kSnippets.contains(tokens[i + 1])) fail("an import of something else");
                ++i;
                continue;
            }
            if (t == "{") {
                if (i + 1 != tokens.size()) fail("'{' is not the last token of its line");
                if (depth++ == 0) ++blocks;
            } else if (t == "}") {
                if (tokens.size() != 1) fail("'}' is not alone on its line");
                if (--depth < 0) fail("a '}' closes nothing");
            } else if (!kTemplateTokens.contains(t) && !values.contains(t)) {
                fail("token [" + t + "] is neither a template token nor a value given in");
            }
            ++seen[t];
        }
    }
    if (depth != 0) fail("braces do not balance");
    size_t expected_blocks = 0;
    for (const auto& s : sites) expected_blocks += s.redirect_aliases && s.domains.size() > 1 ? 2 : 1;
    if (options.health_port == 0 && blocks != static_cast<int>(expected_blocks)) fail("not one block per site (and its aliases)");
    for (const auto& [root, n] : roots)
        if (seen[root] != n) fail("root " + root + " is not there once per site");
}

std::string consume(FuzzedDataProvider& in) { return in.ConsumeRandomLengthString(300); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    hooks::ProxyOptions options;
    options.scheme = std::vector<std::string>{"", "http", "https"}[in.ConsumeIntegralInRange<int>(0, 2)];
    options.port = in.ConsumeBool() ? 0 : in.ConsumeIntegralInRange<int>(1, 65535);
    const auto proxy = hooks::make_caddy_config(options);
    std::vector<RawSite> raw(in.ConsumeIntegralInRange<size_t>(1, 6));
    for (auto& r : raw) r = {consume(in), consume(in), consume(in), consume(in), consume(in), consume(in)};
    const bool spa = in.ConsumeBool(), redirect_aliases = in.ConsumeBool(), not_found_page = in.ConsumeBool();

    // Validated mode.
    const ValidationPolicy policy;
    const std::filesystem::path data_dir = "/var/lib/sitesfs";
    std::vector<ProxySite> sites;
    std::set<std::string> names, domains;
    for (const auto& r : raw) {
        const Checked name = check_site_name(r.name);
        const Checked domain = check_domain(trim(r.domain), policy);
        const Checked path = check_path(trim(r.path), policy);
        const Checked commit = check_commit(trim(r.commit), policy);
        // A site is served once its domain is set and git resolved a full commit id.
        if (!name.ok || !domain.ok || domain.value.empty() || !path.ok || !commit.ok || commit.value.size() != 40) continue;
        if (!names.insert(name.value).second) continue;
        const auto list = split_domains(domain.value);
        if (std::any_of(list.begin(), list.end(), [&](const std::string& d) { return domains.contains(d); })) continue;
        domains.insert(list.begin(), list.end());
        const auto current = data_dir / name.value / "current";
        ProxySite site{name.value, list, path.value.empty() ? current : current / path.value, commit.value};
        site.routing = spa ? hooks::Routing::spa : hooks::Routing::static_site;
        site.redirect_aliases = redirect_aliases;
        site.not_found_page = not_found_page;
        // Rules files that parse; one that does not fails the deploy and never reaches here.
        try {
            site.rules.redirects = hooks::parse_redirects(r.redirects);
        } catch (const hooks::RulesError&) {
        }
        try {
            site.rules.headers = hooks::parse_headers(r.headers);
        } catch (const hooks::RulesError&) {
        }
        sites.push_back(std::move(site));
    }
    if (!sites.empty()) {
        std::string out;
        try {
            out = proxy->render(sites);
        } catch (const hooks::ProxyError& e) {
            fuzz::violation("the renderer refused sites the validators accepted", e.what());
        }
        check_output(out, sites, options);
    }

    // Raw mode: the renderer's own checks are the last line of defence.
    std::vector<ProxySite> unchecked;
    for (const auto& r : raw) {
        ProxySite site{r.name, {r.domain}, r.path, r.commit};
        site.redirect_aliases = redirect_aliases;
        // Rules as no parser would accept them: the renderer's checks alone stand in the way.
        hooks::RedirectRule rule;
        rule.from.regex = r.redirects;
        rule.to = {{r.headers, 0}};
        site.rules.redirects.push_back(rule);
        hooks::HeaderRule header;
        header.path.regex = r.headers;
        header.headers = {{r.name, r.redirects}};
        site.rules.headers.push_back(header);
        site.users = {{r.path, r.commit}};
        unchecked.push_back(std::move(site));
    }
    try {
        check_output(proxy->render(unchecked), unchecked, options);
    } catch (const hooks::ProxyError& e) {
        if (auto why = fuzz::message_problem(e.what()); !why.empty()) fuzz::violation("the renderer's refusal: " + why, e.what());
    }
    return 0;
}
