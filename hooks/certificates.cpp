#include "hooks/certificates.hpp"

#include "hooks/http_probe.hpp"
#include "hooks/tls_probe.hpp"
#include "schemas/site_schema.hpp"

namespace sitesfs::hooks {

Certificates::Certificates(std::string address, std::chrono::milliseconds timeout)
    : address_(std::move(address)), timeout_(timeout) {}

std::vector<std::string> Certificates::refresh(const std::string& site, const std::vector<std::string>& domains) {
    std::vector<std::string> lines;
    std::vector<Seen> seen;
    const Timestamp now = Clock::now();
    for (const auto& domain : domains) {
        const CertificateSeen c = served_certificate(address_, probe_name(domain), timeout_);
        Seen s{domain, c.error.empty(), c.served, 0};
        if (!c.error.empty()) {
            lines.push_back(domain + " unknown (" + c.error + ")");
        } else if (!c.served) {
            lines.push_back(domain + " none yet");
        } else {
            s.days_left = std::chrono::duration<double, std::ratio<86400>>(c.not_after - now).count();
            const std::string day = rfc3339(c.not_after).substr(0, 10);
            lines.push_back(domain + " " + c.issuer + (c.not_after < now ? " expired " : " until ") + day);
        }
        seen.push_back(std::move(s));
    }
    std::lock_guard lock(mu_);
    sites_[site] = std::move(seen);
    return lines;
}

void Certificates::forget(const std::string& site) {
    std::lock_guard lock(mu_);
    sites_.erase(site);
}

std::string Certificates::metrics() const {
    if (!enabled()) return {};
    std::string days =
        "# HELP sitesfs_tls_certificate_days_left Days until the certificate the proxy serves for a domain expires "
        "(negative: expired).\n# TYPE sitesfs_tls_certificate_days_left gauge\n";
    std::string missing =
        "# HELP sitesfs_tls_certificate_missing Domains the proxy serves no certificate for yet (1 each).\n"
        "# TYPE sitesfs_tls_certificate_missing gauge\n";
    std::lock_guard lock(mu_);
    for (const auto& [site, seen] : sites_) {
        for (const auto& s : seen) {
            // Site names and domains passed the schema's validators: no quote or backslash to escape.
            const std::string labels = "{site=\"" + site + "\",domain=\"" + s.domain + "\"}";
            if (s.served) days += "sitesfs_tls_certificate_days_left" + labels + " " + std::to_string(s.days_left) + "\n";
            else if (s.known) missing += "sitesfs_tls_certificate_missing" + labels + " 1\n";
        }
    }
    return days + missing;
}

}  // namespace sitesfs::hooks
