// What certificate the proxy serves for a name: one TLS handshake with that SNI to the proxy's
// HTTPS listener on this host. It reports; it does not authenticate (the peer is our own Caddy on
// loopback, and a certificate from Caddy's local CA is as much an answer as Let's Encrypt's).
#pragma once

#include <chrono>
#include <string>

#include "schemas/site_record.hpp"

namespace sitesfs::hooks {

struct CertificateSeen {
    std::string error;    // non-empty: the listener could not be reached, so nothing is known
    bool served = false;  // the handshake completed with a certificate
    std::string issuer;   // the issuer's organization, else its common name, printable ASCII
    Timestamp not_after{};
};

// address: "127.0.0.1:443" or "[::1]:443". The whole exchange is bounded by `timeout`.
CertificateSeen served_certificate(const std::string& address, const std::string& server_name,
                                   std::chrono::milliseconds timeout);

}  // namespace sitesfs::hooks
