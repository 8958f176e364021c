// A strict, bounded HTTP/1.1 request parser for the webhook listener: one request per connection,
// a body only with Content-Length. Everything a webhook sender does not need (chunked bodies,
// folded headers, bare LF line ends, pipelining) is refused rather than interpreted, so that what
// the listener reads is exactly what the sender signed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sitesfs::webhook {

struct HttpLimits {
    size_t max_head = 16 * 1024;  // request line and headers, CRLFs included
    size_t max_headers = 64;
    size_t max_body = 1024 * 1024;  // [webhook] max_body
};

struct HttpRequest {
    std::string method;  // "POST"
    std::string target;  // "/hook"
    std::string version;  // "HTTP/1.1" or "HTTP/1.0"
    // Names lower-cased, values without surrounding blanks, in the order sent.
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    // The value of the header of that (lower-case) name; null when absent.
    const std::string* header(std::string_view name) const;
};

struct HttpParse {
    enum class State { incomplete, complete, refused };
    State state = State::incomplete;
    // incomplete: the head is whole and valid, and asks for "100 Continue" before the body is sent.
    bool wants_continue = false;
    HttpRequest request;  // complete
    int status = 0;       // refused: the status to answer (400, 411, 413, 417, 431, 505)
    std::string reason;   // refused: why, printable ASCII, for the answer's body
};

// Parses what a connection has sent so far. `incomplete` asks for more bytes; the caller bounds
// how many (max_head + max_body) and how long it waits. A head that says the body is too large is
// refused (413) before the body is read.
HttpParse parse_request(std::string_view received, const HttpLimits& limits);

}  // namespace sitesfs::webhook
