#include "hooks/http_probe.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>

#include "hooks/command.hpp"
#include "hooks/net.hpp"
#include "schemas/validators.hpp"

namespace sitesfs::hooks {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHead = 64 * 1024;

// Up to 80 bytes of what the server sent, printable, for a "malformed" message.
std::string excerpt(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s.substr(0, 80)) {
        if (c == '\r') out += "\\r";
        else if (c == '\n') out += "\\n";
        else if (c < 0x20 || c >= 0x7f) out += '?';
        else out += static_cast<char>(c);
    }
    return out + (s.size() > 80 ? "...\"" : "\"");
}

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return std::string(s);
}

enum class Progress { need_more, done, bad };

// Decodes a chunked body as far as `raw` goes, up to kMaxProbeBody bytes of payload.
Progress dechunk(std::string_view raw, std::string& body, std::string& why) {
    body.clear();
    for (;;) {
        const size_t eol = raw.find("\r\n");
        if (eol == std::string_view::npos) return Progress::need_more;
        const std::string size_text = trim(raw.substr(0, eol).substr(0, raw.substr(0, eol).find(';')));
        if (size_text.empty() || size_text.size() > 8 ||
            !std::all_of(size_text.begin(), size_text.end(), [](unsigned char c) { return std::isxdigit(c); })) {
            why = "chunk size " + excerpt(raw.substr(0, eol));
            return Progress::bad;
        }
        const size_t size = std::stoul(size_text, nullptr, 16);
        raw.remove_prefix(eol + 2);
        // The last chunk; trailers, if any, carry nothing a health check reads.
        if (size == 0) return Progress::done;
        const size_t take = std::min(size, raw.size());
        body.append(raw.substr(0, take));
        if (body.size() >= kMaxProbeBody) {
            body.resize(kMaxProbeBody);
            return Progress::done;
        }
        if (raw.size() < size + 2) return Progress::need_more;
        if (raw.substr(size, 2) != "\r\n") {
            why = "chunk not followed by CRLF";
            return Progress::bad;
        }
        raw.remove_prefix(size + 2);
    }
}

// The answer as far as it has arrived.
struct Parser {
    std::string raw;
    bool head_done = false;
    size_t body_start = 0;
    std::optional<size_t> content_length;
    bool chunked = false;
    std::string why;  // set with Progress::bad

    Progress parse_head(ProbeResult& r) {
        size_t end = raw.find("\r\n\r\n");
        size_t sep = 4;
        if (end == std::string::npos) {
            end = raw.find("\n\n");
            sep = 2;
        }
        if (end == std::string::npos) {
            if (raw.size() > kMaxHead) {
                why = "no end of the header within " + std::to_string(kMaxHead) + " bytes";
                return Progress::bad;
            }
            return Progress::need_more;
        }
        std::string_view head = std::string_view(raw).substr(0, end);
        size_t eol = head.find('\n');
        const std::string_view status_line = head.substr(0, eol);
        // "HTTP/1.1 200 OK": version, space, three digits, then an optional reason.
        if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.") || status_line[8] != ' ' ||
            !std::all_of(status_line.begin() + 9, status_line.begin() + 12,
                         [](char c) { return c >= '0' && c <= '9'; }) ||
            (status_line.size() > 12 && status_line[12] != ' ' && status_line[12] != '\r')) {
            why = "status line " + excerpt(status_line);
            return Progress::bad;
        }
        r.status = std::stoi(std::string(status_line.substr(9, 3)));
        while (eol != std::string_view::npos) {
            head.remove_prefix(eol + 1);
            eol = head.find('\n');
            const std::string_view line = head.substr(0, eol);
            const size_t colon = line.find(':');
            if (colon == std::string_view::npos || colon == 0) {
                why = "header line " + excerpt(line);
                return Progress::bad;
            }
            r.headers[ascii_lower(std::string(line.substr(0, colon)))] = trim(line.substr(colon + 1));
        }
        head_done = true;
        body_start = end + sep;
        if (auto te = r.headers.find("transfer-encoding"); te != r.headers.end())
            chunked = ascii_lower(te->second).find("chunked") != std::string::npos;
        if (auto cl = r.headers.find("content-length"); cl != r.headers.end() && !chunked) {
            const std::string& v = cl->second;
            if (v.empty() || v.size() > 18 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
                why = "content-length " + excerpt(v);
                return Progress::bad;
            }
            content_length = std::stoull(v);
        }
        // These statuses never have a body (RFC 9112 6.3).
        if (r.status / 100 == 1 || r.status == 204 || r.status == 304) content_length = 0;
        return Progress::need_more;
    }

    // Called after each read; `closed` when the server closed the connection.
    Progress feed(ProbeResult& r, bool closed) {
        if (!head_done) {
            const Progress p = parse_head(r);
            if (p == Progress::bad) return p;
            if (!head_done) {
                if (closed) {
                    why = raw.empty() ? "connection closed without an answer"
                                      : "connection closed inside the header after " + excerpt(raw);
                    return Progress::bad;
                }
                return Progress::need_more;
            }
        }
        const std::string_view body = std::string_view(raw).substr(body_start);
        if (chunked) {
            const Progress p = dechunk(body, r.body, why);
            if (p == Progress::need_more && closed) {
                why = "connection closed inside a chunked body";
                return Progress::bad;
            }
            return p;
        }
        const size_t want = std::min(content_length.value_or(kMaxProbeBody), kMaxProbeBody);
        r.body = std::string(body.substr(0, want));
        if (r.body.size() >= want) return Progress::done;
        if (!closed) return Progress::need_more;
        if (content_length) {
            why = "connection closed after " + std::to_string(r.body.size()) + " of " +
                  std::to_string(*content_length) + " body bytes";
            return Progress::bad;
        }
        return Progress::done;  // no length given: the body ends with the connection
    }
};

// Only the error: a half-parsed status or header is no answer.
ProbeResult failed(std::string error) {
    ProbeResult r;
    r.error = std::move(error);
    return r;
}

}  // namespace

ProbeResult http_get(const std::string& address, const std::string& host, const std::string& path,
                     std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    const std::string no_answer = "no answer from " + address + " within " + duration_text(timeout);
    const auto endpoint = parse_endpoint(address);
    if (!endpoint)
        return failed("address " + excerpt(address) + " is not IP:PORT or [IPv6]:PORT (names are not resolved)");
    // The values go into the request line and a header verbatim; CR, LF or spaces would forge
    // another header or request.
    const auto bad_char = [](unsigned char c) { return c <= 0x20 || c == 0x7f; };
    if (path.empty() || path[0] != '/' || std::any_of(path.begin(), path.end(), bad_char))
        return failed("path " + excerpt(path) + " must start with '/' and have no spaces or control characters");
    if (host.empty() || std::any_of(host.begin(), host.end(), bad_char))
        return failed("host " + excerpt(host) + " is empty or has spaces or control characters");

    std::string error;
    const Socket sock = connect_to(*endpoint, address, deadline, timeout, error);
    if (sock.fd() < 0) return failed(error);

    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host +
                                "\r\nConnection: close\r\nUser-Agent: sitesfs-health\r\n\r\n";
    for (size_t sent = 0; sent < request.size();) {
        if (!wait_for(sock.fd(), POLLOUT, deadline))
            return failed(no_answer);
        const ssize_t n = ::send(sock.fd(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0)
            return failed("cannot send to " + address + ": " + std::strerror(errno));
        sent += static_cast<size_t>(n);
    }

    ProbeResult r;
    Parser parser;
    char buf[16384];
    for (;;) {
        if (!wait_for(sock.fd(), POLLIN, deadline))
            return failed(parser.raw.empty() ? no_answer
                                             : "incomplete answer from " + address + " within " +
                                                   duration_text(timeout) + " (" + std::to_string(parser.raw.size()) +
                                                   " bytes)");
        const ssize_t n = ::recv(sock.fd(), buf, sizeof buf, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0)
            return failed(errno == ECONNRESET ? "connection reset by " + address
                                              : "cannot read from " + address + ": " + std::strerror(errno));
        parser.raw.append(buf, static_cast<size_t>(n));
        const Progress p = parser.feed(r, n == 0);
        if (p == Progress::done) return r;
        if (p == Progress::bad)
            return failed("malformed HTTP answer from " + address + ": " + parser.why);
    }
}

std::string probe_name(const std::string& domain) {
    return domain.starts_with("*.") ? "sitesfs-health" + domain.substr(1) : domain;
}

std::optional<Target> same_site_target(const std::string& location, const Target& from,
                                       const std::vector<std::string>& domains) {
    if (location.empty()) return std::nullopt;
    if (location.starts_with("//")) return same_site_target("http:" + location, from, domains);
    if (location[0] == '/') return Target{from.host, location};
    std::string rest;
    for (const char* scheme : {"http://", "https://"})
        if (ascii_lower(location.substr(0, std::strlen(scheme))) == scheme) rest = location.substr(std::strlen(scheme));
    if (rest.empty()) {
        // A relative reference ("en/", "../x") or another scheme; only the first is followed.
        if (location.find(':') < location.find('/')) return std::nullopt;
        return Target{from.host, from.path.substr(0, from.path.rfind('/') + 1) + location};
    }
    const size_t slash = rest.find('/');
    std::string host = ascii_lower(rest.substr(0, slash));
    const std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
    if (const size_t colon = host.rfind(':'); colon != std::string::npos && host.find(']') == std::string::npos)
        host.resize(colon);
    for (const auto& d : domains) {
        const bool match = d.starts_with("*.") ? host.size() > d.size() - 1 && host.ends_with(d.substr(1)) &&
                                                     host.find('.') == host.size() - (d.size() - 1)
                                               : host == d;
        if (match) return Target{host, path};
    }
    return std::nullopt;
}

}  // namespace sitesfs::hooks
