// The webhook's request parser and push-event extraction. Whatever the bytes: a refusal has one of
// the statuses the parser documents and a printable reason; a complete request is exactly what its
// head announced (lower-case token names, values without controls, the body Content-Length long)
// and no strict prefix of it is complete or refused; a push event's fields are within their caps and
// its repositories are identities of URLs a site's repo may hold. The raw bytes are also read as a
// payload on their own, so the JSON side is fuzzed without an HTTP head in front.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_support.hpp"
#include "webhook/http_request.hpp"
#include "webhook/push_event.hpp"
#include "webhook/signature.hpp"

namespace {

using namespace sitesfs;
using namespace sitesfs::webhook;

constexpr HttpLimits kLimits{.max_head = 4096, .max_headers = 32, .max_body = 64 * 1024};
const ValidationPolicy kPolicy{.allow_local_repos = true};

bool is_token(std::string_view s, bool lower) {
    if (s.empty()) return false;
    for (const char c : s) {
        const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (!lower && c >= 'A' && c <= 'Z');
        if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) return false;
    }
    return true;
}

void check_push(std::string_view input, std::string_view body) {
    const PushParse p = parse_push_event(body, kPolicy);
    if (!p.ok) {
        if (auto why = fuzz::message_problem(p.reason); !why.empty()) fuzz::violation("push refusal: " + why, input);
        return;
    }
    const PushEvent& e = p.event;
    if (e.ref.empty() || e.ref.size() > 512) fuzz::violation("ref empty or over its cap", input);
    if (e.repositories.empty() || e.repositories.size() > 16) fuzz::violation("repositories empty or over the cap", input);
    for (const std::string& id : e.repositories) {
        if (auto why = fuzz::message_problem(id); !why.empty()) fuzz::violation("repository identity: " + why, input);
        if (id.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos)
            fuzz::violation("repository identity not lower-case", id);
    }
    if (!e.default_branch.empty() && !check_branch(e.default_branch, kPolicy).ok)
        fuzz::violation("default branch git would refuse", e.default_branch);
    SiteRecord site;
    site.desired["repo"].value = "owner/site";
    (void)follows(site, e);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const HttpParse p = parse_request(input, kLimits);
    if (p.wants_continue && (p.state != HttpParse::State::incomplete || p.request.version != "HTTP/1.1"))
        fuzz::violation("100 Continue asked for a request that is not a whole HTTP/1.1 head waiting for its body", input);
    switch (p.state) {
        case HttpParse::State::incomplete: break;
        case HttpParse::State::refused: {
            const int s = p.status;
            if (s != 400 && s != 411 && s != 413 && s != 417 && s != 431 && s != 505)
                fuzz::violation("refused with status " + std::to_string(s), input);
            if (auto why = fuzz::message_problem(p.reason); !why.empty()) fuzz::violation("refusal: " + why, input);
            break;
        }
        case HttpParse::State::complete: {
            const HttpRequest& r = p.request;
            if (!is_token(r.method, false) || r.target.empty() || r.target.front() != '/')
                fuzz::violation("method or target outside the grammar", input);
            if (r.headers.size() > kLimits.max_headers) fuzz::violation("more headers than the cap", input);
            for (const auto& [name, value] : r.headers) {
                if (!is_token(name, true)) fuzz::violation("header name not a lower-case token", name);
                for (const char c : value)
                    if ((c < 0x20 && c != '\t') || c == 0x7f) fuzz::violation("control byte in a header value", input);
            }
            const std::string* length = r.header("content-length");
            if (r.body.size() > kLimits.max_body || (length ? *length != std::to_string(r.body.size()) : !r.body.empty()))
                fuzz::violation("body is not what Content-Length announced", input);
            if (size > 0 && parse_request(input.substr(0, size - 1 - (size > 1 ? data[0] % (size - 1) : 0)), kLimits).state !=
                                HttpParse::State::incomplete)
                fuzz::violation("a strict prefix of a complete request is not incomplete", input);
            if (const auto provider = provider_of(r)) (void)verify(*provider, r, "fuzzing-secret-0123456789");
            check_push(input, r.body);
            break;
        }
    }
    check_push(input, input);
    return 0;
}
