#include "webhook/http_request.hpp"

#include <charconv>

#include "common/text.hpp"

namespace sitesfs::webhook {

namespace {

constexpr size_t kMaxMethod = 16;
constexpr size_t kMaxTarget = 2048;
constexpr size_t kShown = 60;

// RFC 9110 tchar: what a method and a header name are made of.
bool is_tchar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
// Visible ASCII, space and tab: obs-text (bytes >= 0x80) and controls are refused in values.
bool is_value_char(char c) { return (c >= 0x20 && c < 0x7f) || c == '\t'; }
bool is_blank(char c) { return c == ' ' || c == '\t'; }

HttpParse refuse(int status, std::string reason) {
    HttpParse p;
    p.state = HttpParse::State::refused;
    p.status = status;
    p.reason = std::move(reason);
    return p;
}

std::string_view trim_blanks(std::string_view v) {
    while (!v.empty() && is_blank(v.front())) v.remove_prefix(1);
    while (!v.empty() && is_blank(v.back())) v.remove_suffix(1);
    return v;
}

// "METHOD SP TARGET SP HTTP/1.x": "" when fine, else why not (and the status in `status`).
std::string request_line_problem(std::string_view line, HttpRequest& r, int& status) {
    status = 400;
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
        return "the request line is not METHOD TARGET HTTP/1.1";
    const std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                           version = line.substr(sp2 + 1);
    if (method.empty() || method.size() > kMaxMethod)
        return "the method is empty or longer than " + std::to_string(kMaxMethod) + " bytes";
    for (const char c : method)
        if (!is_tchar(c)) return "the method has a byte outside RFC 9110's token characters";
    if (target.empty() || target.front() != '/' || target.size() > kMaxTarget)
        return "the target must be a path starting with '/', at most " + std::to_string(kMaxTarget) + " bytes";
    for (const char c : target)
        if (c <= 0x20 || c >= 0x7f) return "the target has a byte outside visible ASCII";
    if (version != "HTTP/1.1" && version != "HTTP/1.0") {
        status = 505;
        return "only HTTP/1.1 (and 1.0) are spoken here, not \"" + printable_prefix(version, kShown) + "\"";
    }
    r.method = method;
    r.target = target;
    r.version = version;
    return {};
}

}  // namespace

const std::string* HttpRequest::header(std::string_view name) const {
    for (const auto& [n, v] : headers)
        if (n == name) return &v;
    return nullptr;
}

HttpParse parse_request(std::string_view received, const HttpLimits& limits) {
    const size_t end = received.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (received.size() > limits.max_head)
            return refuse(431, "the request line and headers are longer than " + std::to_string(limits.max_head) + " bytes");
        // A bare LF would end a line for some parsers and not for others: refused at once rather
        // than waited on until the deadline.
        for (size_t i = 0; i < received.size(); ++i)
            if (received[i] == '\n' && (i == 0 || received[i - 1] != '\r'))
                return refuse(400, "lines must end with CRLF, not a bare LF");
        return {};
    }
    if (end + 4 > limits.max_head)
        return refuse(431, "the request line and headers are longer than " + std::to_string(limits.max_head) + " bytes");

    HttpParse p;
    HttpRequest& r = p.request;
    const std::string_view head = received.substr(0, end + 2);  // every line with its CRLF
    size_t at = 0;
    bool first = true;
    std::string_view content_length;
    bool has_length = false;
    while (at < head.size()) {
        const size_t eol = head.find("\r\n", at);
        const std::string_view line = head.substr(at, eol - at);
        at = eol + 2;
        if (line.find('\n') != std::string_view::npos || line.find('\r') != std::string_view::npos)
            return refuse(400, "lines must end with CRLF, not a bare LF or CR");
        if (first) {
            first = false;
            int status = 400;
            if (std::string why = request_line_problem(line, r, status); !why.empty()) return refuse(status, why);
            continue;
        }
        if (line.empty() || is_blank(line.front()))
            return refuse(400, "a header line starts with a blank (obsolete line folding is not accepted)");
        if (r.headers.size() == limits.max_headers)
            return refuse(431, "more than " + std::to_string(limits.max_headers) + " headers");
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) return refuse(400, "a header line has no NAME:");
        const std::string_view name = line.substr(0, colon), value = trim_blanks(line.substr(colon + 1));
        for (const char c : name)
            if (!is_tchar(c)) return refuse(400, "a header name has a byte outside RFC 9110's token characters");
        for (const char c : value)
            if (!is_value_char(c))
                return refuse(400, "the value of " + printable_prefix(name, kShown) + " has a control or non-ASCII byte");
        std::string lower = ascii_lower(name);
        if (lower == "transfer-encoding")
            return refuse(411, "Transfer-Encoding is not accepted; send the body with a Content-Length");
        if (lower == "content-length") {
            if (has_length) return refuse(400, "Content-Length is given twice");
            has_length = true;
            content_length = value;
        }
        r.headers.emplace_back(std::move(lower), std::string(value));
    }

    size_t length = 0;
    if (!has_length) {
        if (r.method == "POST") return refuse(411, "a POST needs a Content-Length");
    } else {
        const auto [ptr, ec] = std::from_chars(content_length.data(), content_length.data() + content_length.size(), length);
        if (content_length.empty() || ec != std::errc() || ptr != content_length.data() + content_length.size())
            return refuse(ec == std::errc::result_out_of_range ? 413 : 400, "Content-Length is not a whole number of bytes");
        // Decimal by the RFC, but a leading zero reads as octal to some parsers: refused rather than
        // risk that a proxy in front and this listener disagree where the body ends.
        if (content_length.size() > 1 && content_length.front() == '0')
            return refuse(400, "Content-Length has a leading zero");
    }
    if (length > limits.max_body)
        return refuse(413, "the body is " + std::to_string(length) + " bytes; at most " + std::to_string(limits.max_body) +
                               " are accepted ([webhook] max_body)");
    // RFC 9110 10.1.1: 100-continue is the one expectation defined, and an HTTP/1.0 client is never
    // sent a 1xx. libcurl asks for it before a body over 1 MiB (over 1 KiB before 7.69), other
    // clients when told to, and each waits about a second for it otherwise.
    const std::string* expect = r.header("expect");
    if (expect && ascii_lower(*expect) != "100-continue")
        return refuse(417, "Expect: " + printable_prefix(*expect, kShown) + " is not an expectation this listener meets");
    const std::string_view rest = received.substr(end + 4);
    if (rest.size() < length) {
        p.wants_continue = expect && rest.empty() && r.version == "HTTP/1.1";
        return p;
    }
    if (rest.size() > length) return refuse(400, "more bytes than Content-Length: one request per connection");
    r.body = rest;
    p.state = HttpParse::State::complete;
    return p;
}

}  // namespace sitesfs::webhook
