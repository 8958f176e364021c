// What the proxy config says for one site. A deploy builds it from the desired values it
// deployed; a start-up rebuilds it from the same values as the store recorded them (the actual
// state), so a restart renders what the deploy validated.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "hooks/deploy.hpp"
#include "hooks/deploy_keys.hpp"
#include "hooks/proxy_config.hpp"
#include "hooks/site_rules.hpp"
#include "schemas/site_record.hpp"

namespace sitesfs::hooks {

// The values a site is served by (each in its schema field's normal form).
struct ServedValues {
    std::string domain, path, routing, aliases, auth_ref;
};
ServedValues desired_serving(const SiteRecord& site);
ServedValues actual_serving(const ActualState& actual);

// The `USER BCRYPT-HASH` lines auth_ref names, by the deploy-key providers. Blank lines and
// '#' comments are skipped; at least one user, at most kMaxAuthUsers. Throws KeyError, whose text
// never holds a hash.
inline constexpr size_t kMaxAuthUsers = 100;
std::vector<BasicAuthUser> auth_users(const KeyProviders& providers, std::string_view auth_ref);

ProxySite served_site(const std::string& name, const ServedValues& values, const SitePaths& paths,
                      const std::string& commit, ServedTree tree, std::vector<BasicAuthUser> users);

}  // namespace sitesfs::hooks
