// Allow-list validators for every value a person can write into a site directory.
// Each takes the value with surrounding whitespace already removed and either accepts it (with the
// normalized form that is stored) or refuses it with a reason a person can act on. No validator ever
// escapes or repairs hostile input: anything outside the allowed alphabet is refused.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/text.hpp"

namespace sitesfs {

struct Checked {
    bool ok = false;
    std::string value;   // normalized value to store (when ok)
    std::string reason;  // why it was refused (when !ok), e.g. "label 2 of 'bad..com' is empty"

    static Checked accept(std::string v) { return {true, std::move(v), {}}; }
    static Checked refuse(std::string why) { return {false, {}, std::move(why)}; }
};

struct ValidationPolicy {
    bool allow_local_repos = false;  // file:// URLs and absolute local paths (--allow-local-repos)
    // The builders this host's config defines ([builders.NAME]): a write naming another is refused.
    // Unset when stored values are read back: a builder removed from the config since fails the
    // site's deploy (saying so) rather than making its state unreadable.
    std::optional<std::vector<std::string>> builders;
};

// Site directory names: 1-63 chars, [a-z0-9] first, then [a-z0-9.-].
Checked check_site_name(std::string_view name);

// Field validators. The empty value is accepted by every one of them: it means "unset".
Checked check_repo(std::string_view v, const ValidationPolicy& policy);
Checked check_domain(std::string_view v, const ValidationPolicy& policy);
Checked check_branch(std::string_view v, const ValidationPolicy& policy);
Checked check_path(std::string_view v, const ValidationPolicy& policy);
Checked check_deploy_key_ref(std::string_view v, const ValidationPolicy& policy);
Checked check_commit(std::string_view v, const ValidationPolicy& policy);
// How paths are found in the release: static (the default) or spa.
Checked check_routing(std::string_view v, const ValidationPolicy& policy);
// What the names after the first in `domain` do: serve the site (the default) or redirect to the first.
Checked check_aliases(std::string_view v, const ValidationPolicy& policy);
// PROVIDER:NAME of the site's `user bcrypt-hash` lines; empty: no password.
Checked check_auth_ref(std::string_view v, const ValidationPolicy& policy);
// The health check: "PATH" or "PATH TEXT" (the body must contain TEXT), e.g. "/en/ Welcome".
Checked check_health_check(std::string_view v, const ValidationPolicy& policy);

// The builder that turns the commit into the release ([builders.NAME]); empty: the tree as committed.
Checked check_build(std::string_view v, const ValidationPolicy& policy);
// Whether a release holds the commit's submodules: none (the default) or recursive.
Checked check_submodules(std::string_view v, const ValidationPolicy& policy);
// A write to `ctl`: one verb a line (refresh, redeploy), blank lines ignored; the value is the
// strongest verb written, empty when there was none.
Checked check_ctl(std::string_view v, const ValidationPolicy& policy);
// A builder's name by the rule `build` and [builders.NAME] share: "" when fine, else why not.
std::string builder_name_problem(std::string_view name);

// Where the site is deployed: empty for every host, else host names and `label:NAME` items
// separated by whitespace.
Checked check_hosts(std::string_view v, const ValidationPolicy& policy);

// A stored check split into its path (never empty when the value is set) and its text.
struct HealthCheck {
    std::string path;
    std::string text;
};
HealthCheck split_health_check(std::string_view stored_check);

// The names in a stored domain value (check_domain's normal form: names separated by whitespace),
// in their order.
std::vector<std::string> split_domains(std::string_view stored_domain);
// The items of a stored hosts value (check_hosts' normal form), in their order.
std::vector<std::string> split_hosts(std::string_view stored_hosts);
// The prefix of a hosts item that names a label rather than a host.
inline constexpr std::string_view kHostLabelPrefix = "label:";
// A host's own name and labels ([store] host and labels) by the rules a hosts value names them
// with, lower-case already: "" when fine, else why not.
std::string host_name_problem(std::string_view host);
std::string host_label_problem(std::string_view label);

// The URL git should fetch for a stored repo value: `owner/name` becomes
// https://github.com/owner/name.git, everything else is returned unchanged.
std::string repo_fetch_url(std::string_view stored_repo);

// The repository a stored repo value names, to tell whether two values name the same one (the
// push webhook's matching, docs/webhooks.md): host, port unless the scheme's default, and path,
// lower-cased, without scheme, user or a trailing ".git"; owner/name stands for its GitHub URL.
// "github.com/owner/name" for https://github.com/Owner/Name.git, git@github.com:owner/name and
// owner/name alike; "/srv/git/blog" for file:///srv/git/blog.git.
std::string repo_identity(std::string_view stored_repo);

}  // namespace sitesfs
