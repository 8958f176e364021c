#include "hooks/tls_probe.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>

#include <ctime>
#include <memory>

#include "hooks/net.hpp"

namespace sitesfs::hooks {

namespace {

struct SslCtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
};
struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};

// The issuer shows in a one-line status file: printable ASCII only.
std::string name_entry(X509_NAME* name, int nid) {
    const int at = X509_NAME_get_index_by_NID(name, nid, -1);
    if (at < 0) return {};
    unsigned char* utf8 = nullptr;
    const int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at)));
    if (len < 0) return {};
    std::string out;
    for (int i = 0; i < len && out.size() < 80; ++i)
        out += utf8[i] >= 0x20 && utf8[i] < 0x7f ? static_cast<char>(utf8[i]) : '?';
    OPENSSL_free(utf8);
    return out;
}

}  // namespace

CertificateSeen served_certificate(const std::string& address, const std::string& server_name,
                                   std::chrono::milliseconds timeout) {
    CertificateSeen seen;
    const Deadline deadline = std::chrono::steady_clock::now() + timeout;
    const auto endpoint = parse_endpoint(address);
    if (!endpoint) {
        seen.error = "address '" + address + "' is not IP:PORT or [IPv6]:PORT";
        return seen;
    }
    const Socket sock = connect_to(*endpoint, address, deadline, timeout, seen.error);
    if (sock.fd() < 0) return seen;

    const std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) {
        seen.error = "cannot set up TLS";
        return seen;
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    const std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
    if (!ssl || SSL_set_tlsext_host_name(ssl.get(), server_name.c_str()) != 1 || SSL_set_fd(ssl.get(), sock.fd()) != 1) {
        seen.error = "cannot set up TLS for " + server_name;
        return seen;
    }
    for (;;) {
        const int rc = SSL_connect(ssl.get());
        if (rc == 1) break;
        const int why = SSL_get_error(ssl.get(), rc);
        short events = 0;
        if (why == SSL_ERROR_WANT_READ) events = POLLIN;
        else if (why == SSL_ERROR_WANT_WRITE) events = POLLOUT;
        ERR_clear_error();
        // Refused handshakes are the answer "no certificate for this name" (Caddy sends an alert).
        if (events == 0) return seen;
        if (!wait_for(sock.fd(), events, deadline)) {
            seen.error = "no TLS answer from " + address + " for " + server_name;
            return seen;
        }
    }
    const std::unique_ptr<X509, X509Free> cert(SSL_get1_peer_certificate(ssl.get()));
    if (!cert) return seen;
    seen.served = true;
    X509_NAME* issuer = X509_get_issuer_name(cert.get());
    seen.issuer = name_entry(issuer, NID_organizationName);
    if (seen.issuer.empty()) seen.issuer = name_entry(issuer, NID_commonName);
    if (seen.issuer.empty()) seen.issuer = "an unnamed issuer";
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) == 1) seen.not_after = Clock::from_time_t(timegm(&tm));
    return seen;
}

}  // namespace sitesfs::hooks
