// The generated proxy config: every live site in one file that the main proxy config imports.
// ProxyConfig is the seam an nginx renderer can implement later; CaddyConfig is the first one.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "hooks/site_rules.hpp"

namespace sitesfs::hooks {

// The proxy refused a candidate config, or the file could not be swapped; what() carries the
// proxy's own message (its last line), e.g. "caddy validate: Error: adapting config ...".
struct ProxyError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// One live site as the proxy must serve it. Every string here has passed the schema's validators
// (domains are lower-case ASCII hostnames, optionally "*." first; commit is 40 hex; root is a path
// sitesfs built from the data dir and validated names), and the renderer still refuses anything
// outside those alphabets rather than emit it.
// How a request path finds its file (the `routing` field; docs/serving.md).
enum class Routing { static_site, spa };

// One `USER BCRYPT-HASH` line of a site's auth_ref: USER of [A-Za-z0-9._@-], HASH a bcrypt hash
// ("$2a$", "$2b$" or "$2y$", two cost digits, '$', 53 of [./A-Za-z0-9]).
struct BasicAuthUser {
    std::string user;
    std::string hash;
    bool operator==(const BasicAuthUser&) const = default;
};

struct ProxySite {
    std::string site;                    // site directory name
    std::vector<std::string> domains;    // at least one
    std::filesystem::path root;          // DATA/NAME/current[/path]
    std::string commit;                  // served commit, 40 hex
    Routing routing = Routing::static_site;
    bool redirect_aliases = false;       // names after the first answer 308 to it
    bool not_found_page = false;         // the served tree has a /404.html
    std::vector<BasicAuthUser> users;    // any: basic auth on the whole site
    SiteRules rules;                     // the release's _redirects and _headers
    bool operator==(const ProxySite&) const = default;
};

struct ProxyOptions {
    std::filesystem::path file = "/etc/caddy/sites.conf";  // the generated file
    // The main config that imports `file`. Validation loads a copy of it with the import line
    // pointed at the candidate, so the candidate is checked in the context it will run in.
    // Empty: the candidate is validated on its own.
    std::filesystem::path main_config;
    std::string caddy = "caddy";          // the caddy binary (PATH lookup)
    std::string scheme;                   // "" (caddy's default, https), "http" or "https"
    int port = 0;                         // 0: the scheme's default port
    std::chrono::milliseconds timeout{30000};  // for one `caddy validate`
    // The health listener: each site block is rendered a second time as http://DOMAIN:PORT, bound
    // to this loopback IP, for the health check (docs/operations.md, "Health checks"). Port 0:
    // none, the check reaches the public plain-HTTP listener itself.
    std::string health_ip;
    int health_port = 0;
};

class ProxyConfig {
public:
    virtual ~ProxyConfig() = default;
    // Deterministic bytes for a set of sites: sorted by first domain then site name, a header
    // comment saying the file is generated. Throws ProxyError when a value is outside its alphabet.
    virtual std::string render(const std::vector<ProxySite>& sites) const = 0;
    // Throws ProxyError with the proxy's message when it would not load `candidate`.
    virtual void validate(const std::filesystem::path& candidate) const = 0;
    virtual const ProxyOptions& options() const = 0;
};

std::unique_ptr<ProxyConfig> make_caddy_config(const ProxyOptions& options);

// The generated file as it was before a swap, so a failed deploy can put it back.
struct ProxyFileBefore {
    bool existed = false;
    std::string bytes;
};

// Swaps `bytes` in as options().file, only if they differ from what is there: temp file in the same
// dir (mode 0644), validate, fsync, rename, fsync the dir. Returns whether the file changed; `before`
// receives what was there. On any failure nothing is swapped and ProxyError says why.
bool swap_proxy_file(const ProxyConfig& proxy, const std::string& bytes, ProxyFileBefore& before);

// Puts a previous state back (the same temp + fsync + rename, without validation: it was live).
// `existed == false` removes the file. Throws ProxyError.
void restore_proxy_file(const ProxyConfig& proxy, const ProxyFileBefore& before);

}  // namespace sitesfs::hooks
