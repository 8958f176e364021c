#include "webhook/signature.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <array>
#include <stdexcept>

#include "common/hex.hpp"
#include "common/text.hpp"

namespace sitesfs::webhook {

namespace {

using Digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

Digest hmac(std::string_view key, std::string_view data) {
    Digest out{};
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
              data.size(), out.data(), &len) ||
        len != out.size())
        throw std::runtime_error("HMAC-SHA256 failed in OpenSSL");
    return out;
}

Digest sha256(std::string_view data) {
    Digest out{};
    if (!SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data()))
        throw std::runtime_error("SHA-256 failed in OpenSSL");
    return out;
}

std::string hex(const Digest& d) { return hex_lower(d.data(), d.size()); }

// `given` against the expected hex, in constant time once the length (public: 64) matches. Hex
// case carries no secret, so it is folded first.
Verdict compare_hex(std::string_view given, const Digest& expected) {
    const std::string want = hex(expected);
    const std::string got = ascii_lower(given);
    if (got.size() != want.size()) return Verdict::wrong;
    return CRYPTO_memcmp(got.data(), want.data(), want.size()) == 0 ? Verdict::ok : Verdict::wrong;
}

}  // namespace

std::string_view to_string(Provider p) {
    switch (p) {
        case Provider::github: return "github";
        case Provider::gitea: return "gitea";
        case Provider::gitlab: return "gitlab";
    }
    return "";
}

std::optional<Provider> provider_of(const HttpRequest& r) {
    if (r.header("x-gitlab-event")) return Provider::gitlab;
    if (r.header("x-gitea-event") || r.header("x-forgejo-event")) return Provider::gitea;
    if (r.header("x-github-event")) return Provider::github;
    return std::nullopt;
}

std::string event_of(const HttpRequest& r, Provider p) {
    const std::string* v = nullptr;
    switch (p) {
        case Provider::gitlab: v = r.header("x-gitlab-event"); break;
        case Provider::gitea:
            v = r.header("x-gitea-event");
            if (!v) v = r.header("x-forgejo-event");
            break;
        case Provider::github: v = r.header("x-github-event"); break;
    }
    return v ? *v : std::string();
}

Verdict verify(Provider p, const HttpRequest& r, std::string_view secret) {
    // An empty secret would make every signature computable by anyone; the listener never starts
    // with one, and this refuses it again so no caller can get that wrong.
    if (secret.empty()) return Verdict::wrong;
    switch (p) {
        case Provider::github: {
            const std::string* sig = r.header("x-hub-signature-256");
            if (!sig) return Verdict::missing;
            if (!sig->starts_with("sha256=")) return Verdict::wrong;
            return compare_hex(std::string_view(*sig).substr(7), hmac(secret, r.body));
        }
        case Provider::gitea: {
            const std::string* sig = r.header("x-gitea-signature");
            if (!sig) sig = r.header("x-forgejo-signature");
            if (!sig) return Verdict::missing;
            return compare_hex(*sig, hmac(secret, r.body));
        }
        case Provider::gitlab: {
            const std::string* token = r.header("x-gitlab-token");
            if (!token) return Verdict::missing;
            // Digests of both, so that the comparison's length and time say nothing of the secret's.
            const Digest a = sha256(*token), b = sha256(secret);
            return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0 ? Verdict::ok : Verdict::wrong;
        }
    }
    return Verdict::wrong;
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) { return hex(hmac(key, data)); }

}  // namespace sitesfs::webhook
