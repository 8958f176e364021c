// Who sent a webhook, and whether they knew the secret. Every comparison with secret material runs
// in constant time (CRYPTO_memcmp on equal-length digests), so a wrong guess tells nothing about
// how close it was.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "webhook/http_request.hpp"

namespace sitesfs::webhook {

// Gitea and Forgejo sign alike and send the same payload, so they are one format.
enum class Provider { github, gitea, gitlab };
std::string_view to_string(Provider p);

// The sender, by its event header: X-Gitlab-Event, else X-Gitea-Event or X-Forgejo-Event, else
// X-GitHub-Event. That order matters: Gitea also sends X-GitHub-Event for compatibility.
// nullopt: none of them, not a webhook this listener understands.
std::optional<Provider> provider_of(const HttpRequest& request);
// That header's value ("push", "Push Hook"); "" when absent.
std::string event_of(const HttpRequest& request, Provider provider);

enum class Verdict { ok, missing, wrong };

// GitHub: X-Hub-Signature-256 = "sha256=" + hex HMAC-SHA256(secret, body).
// Gitea/Forgejo: X-Gitea-Signature (or X-Forgejo-Signature) = hex HMAC-SHA256(secret, body).
// GitLab: X-Gitlab-Token = the secret itself (GitLab signs nothing; TLS to Caddy protects it).
Verdict verify(Provider provider, const HttpRequest& request, std::string_view secret);

// Lower-case hex of HMAC-SHA256(key, data): what senders put in their signature headers.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

}  // namespace sitesfs::webhook
