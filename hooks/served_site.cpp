#include "hooks/served_site.hpp"

#include <algorithm>
#include <sstream>

#include "common/text.hpp"
#include "schemas/validators.hpp"

namespace sitesfs::hooks {

namespace {

bool is_user_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '@' || c == '-';
}

bool is_bcrypt_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '/';
}

// "$2a$", "$2b$" or "$2y$", a two-digit cost, '$', then 22 of salt and 31 of hash.
bool is_bcrypt_hash(std::string_view h) {
    return h.size() == 60 && h.starts_with("$2") && (h[2] == 'a' || h[2] == 'b' || h[2] == 'y') && h[3] == '$' &&
           h[4] >= '0' && h[4] <= '3' && h[5] >= '0' && h[5] <= '9' && h[6] == '$' &&
           std::all_of(h.begin() + 7, h.end(), is_bcrypt_char);
}

}  // namespace

ServedValues desired_serving(const SiteRecord& s) {
    return {s.field("domain").value, s.field("path").value, s.field("routing").value, s.field("aliases").value,
            s.field("auth_ref").value};
}

ServedValues actual_serving(const ActualState& a) { return {a.domain, a.path, a.routing, a.aliases, a.auth_ref}; }

std::vector<BasicAuthUser> auth_users(const KeyProviders& providers, std::string_view auth_ref) {
    const std::string what = "auth_ref " + std::string(auth_ref);
    const SecretBuffer text = resolve_secret(providers, auth_ref, "auth_ref");
    std::vector<BasicAuthUser> users;
    std::istringstream lines{std::string(text.view())};
    int n = 0;
    for (std::string line; std::getline(lines, line);) {
        ++n;
        const std::string_view l = trim(line);
        if (l.empty() || l.front() == '#') continue;
        const size_t gap = l.find_first_of(" \t");
        const std::string_view user = l.substr(0, gap);
        const std::string_view hash = gap == std::string_view::npos ? std::string_view() : trim(l.substr(gap));
        const std::string at = what + " line " + std::to_string(n) + ": ";
        if (user.empty() || user.size() > 64 || !std::all_of(user.begin(), user.end(), is_user_char))
            throw KeyError(at + "the user name must be 1-64 of A-Z, a-z, 0-9, '.', '_', '@', '-'");
        if (!is_bcrypt_hash(hash))
            throw KeyError(at + "write USER BCRYPT-HASH (a bcrypt hash: $2a$, $2b$ or $2y$, as `caddy hash-password` "
                                "or `htpasswd -nbB` make)");
        if (std::any_of(users.begin(), users.end(), [&](const BasicAuthUser& u) { return u.user == user; }))
            throw KeyError(at + "user " + std::string(user) + " is listed twice");
        if (users.size() == kMaxAuthUsers) throw KeyError(at + "more than " + std::to_string(kMaxAuthUsers) + " users");
        users.push_back({std::string(user), std::string(hash)});
    }
    if (users.empty()) throw KeyError(what + ": no `USER BCRYPT-HASH` line");
    return users;
}

ProxySite served_site(const std::string& name, const ServedValues& v, const SitePaths& paths, const std::string& commit,
                      ServedTree tree, std::vector<BasicAuthUser> users) {
    ProxySite s;
    s.site = name;
    s.domains = split_domains(v.domain);
    s.root = v.path.empty() ? paths.current : paths.current / v.path;
    s.commit = commit;
    s.routing = v.routing == "spa" ? Routing::spa : Routing::static_site;
    s.redirect_aliases = v.aliases == "redirect";
    s.not_found_page = tree.not_found_page;
    s.users = std::move(users);
    s.rules = std::move(tree.rules);
    return s;
}

}  // namespace sitesfs::hooks
