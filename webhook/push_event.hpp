// What a push event says that the listener uses: the ref pushed and which repository it went to.
// Nothing else is read from the payload, the pushed commit least of all: a verified push only makes
// the reconciler ask the remote itself (docs/webhooks.md).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "schemas/site_record.hpp"
#include "schemas/validators.hpp"

namespace sitesfs::webhook {

struct PushEvent {
    std::string ref;  // "refs/heads/main", "refs/tags/v1"
    // repo_identity() of every clone URL the payload names that check_repo accepts, deduplicated.
    std::vector<std::string> repositories;
    std::string default_branch;  // "" when the payload has none
    // The branch pushed: ref without "refs/heads/"; "" for a tag or any other ref.
    std::string branch() const;
};

struct PushParse {
    bool ok = false;
    PushEvent event;
    std::string reason;  // !ok: why, printable ASCII
};

// The push payloads of GitHub, Gitea/Forgejo and GitLab share "ref"; the clone URLs are
// repository.{clone_url, ssh_url, html_url, git_url} (GitHub, Gitea) and project.{git_http_url,
// git_ssh_url, web_url} or repository.{git_http_url, git_ssh_url, homepage} (GitLab); the default
// branch repository.default_branch or project.default_branch. A URL is taken only when check_repo
// accepts it under `policy`, as a site's repo would be.
PushParse parse_push_event(std::string_view json, const ValidationPolicy& policy);

// Whether `site` follows what `push` changed: its repo names one of the push's repositories and its
// branch is the one pushed (an empty branch follows the remote's default branch).
bool follows(const SiteRecord& site, const PushEvent& push);

}  // namespace sitesfs::webhook
