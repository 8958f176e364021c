#include "webhook/listener.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/text.hpp"
#include "hooks/net.hpp"
#include "webhook/push_event.hpp"
#include "webhook/signature.hpp"

namespace sitesfs::webhook {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kUnix = "unix:";
// sun_path is 108 bytes with its NUL; a little kept back so no path is cut at the edge.
constexpr size_t kMaxUnixPath = 100;
// After answering, what the client still sends is read and dropped for this long, so that closing
// with unread bytes (which makes the kernel send a reset) does not destroy the answer in flight.
constexpr std::chrono::milliseconds kDrainTime{1000};
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kShown = 80;

// Every outcome, so that a dashboard's series exist before the first of each.
constexpr std::string_view kOutcomes[] = {"refreshed",    "no_site",     "ping",        "ignored",
                                          "bad_signature", "missing_signature", "unknown_sender",
                                          "bad_payload",  "bad_request", "too_large",   "rate_limited",
                                          "timeout",      "unavailable"};

std::string status_text(int status) {
    switch (status) {
        case 200: return "OK";
        case 202: return "Accepted";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 417: return "Expectation Failed";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Error";
    }
}

std::string outcome_of_refusal(int status) {
    if (status == 413) return "too_large";
    if (status == 408) return "timeout";
    return "bad_request";
}

std::string response(int status, const std::string& body) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) +
                      "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\nConnection: close\r\n";
    if (status == 429) out += "Retry-After: 1\r\n";
    if (status == 401) out += "WWW-Authenticate: Signature\r\n";
    return out + "\r\n" + body;
}

std::string errno_text(int err) { return std::strerror(err); }

void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

bool is_push(Provider p, const std::string& event) {
    if (p == Provider::gitlab) return event == "Push Hook" || event == "Tag Push Hook";
    return event == "push";
}

std::string joined(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
    return out;
}

}  // namespace

std::string listen_address_problem(std::string_view listen) {
    if (listen.starts_with(kUnix)) {
        const std::string_view path = listen.substr(kUnix.size());
        if (!path.starts_with('/')) return "a unix socket needs an absolute path, like unix:/run/sitesfs/webhook.sock";
        if (path.size() > kMaxUnixPath) return "the socket's path is longer than " + std::to_string(kMaxUnixPath) + " bytes";
        for (const char c : path)
            if (c <= 0x20 || c >= 0x7f) return "the socket's path may hold only visible ASCII";
        return {};
    }
    const auto at = hooks::parse_endpoint(std::string(listen));
    if (!at) return "must be IP:PORT, [IPv6]:PORT (names are not resolved) or unix:/PATH";
    if (at->port == 0) return "needs a port from 1 to 65535";
    if (!at->loopback())
        return "must be a loopback address (127.0.0.1 or [::1]) or a unix socket: the listener speaks plain HTTP, and "
               "Caddy, on this host, takes the webhook over HTTPS and proxies it here";
    return {};
}

struct Listener::Connection {
    int fd = -1;
    std::string received;
    Clock::time_point deadline;
    bool draining = false;  // answered; reading what is left until the client closes
    bool continued = false;  // "100 Continue" sent
};

Listener::Listener(Store& store, ListenerOptions options, hooks::SecretBuffer secret)
    : store_(store),
      options_(std::move(options)),
      secret_(std::move(secret)),
      tokens_(options_.burst),
      refilled_(Clock::now()) {
    for (const std::string_view o : kOutcomes) requests_.emplace(o, 0);
    bind_socket();
}

Listener::~Listener() { stop(); }

void Listener::bind_socket() {
    const std::string& listen = options_.listen;
    if (const std::string why = listen_address_problem(listen); !why.empty())
        throw ListenerError("webhook listen \"" + printable(listen) + "\": " + why);
    if (secret_.empty()) throw ListenerError("webhook: the secret is empty");
    if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw ListenerError("webhook: pipe: " + errno_text(errno));
    const auto fail = [&](const std::string& what) {
        const int err = errno;
        if (!unix_path_.empty()) unlink(unix_path_.c_str());
        close_fd(listen_fd_);
        close_fd(wake_[0]);
        close_fd(wake_[1]);
        throw ListenerError("webhook listen \"" + printable(listen) + "\": " + what + ": " + errno_text(err));
    };
    if (listen.starts_with(kUnix)) {
        const std::string path(listen.substr(kUnix.size()));
        // A socket left by a daemon that did not stop cleanly is ours to replace; anything else at
        // that path is not ours to remove.
        struct stat st{};
        if (lstat(path.c_str(), &st) == 0) {
            if (!S_ISSOCK(st.st_mode)) {
                errno = EEXIST;
                fail(path + " exists and is not a socket");
            }
            if (unlink(path.c_str()) != 0) fail("cannot remove the stale socket " + path);
        }
        listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (listen_fd_ < 0) fail("socket");
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("bind " + path);
        unix_path_ = path;
        // Connecting needs write permission on the socket: the daemon's user and group only.
        if (chmod(path.c_str(), 0660) != 0) fail("chmod 0660 " + path);
    } else {
        const auto at = hooks::parse_endpoint(listen);
        listen_fd_ = socket(at->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (listen_fd_ < 0) fail("socket");
        const int one = 1;
        setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&at->addr), at->len) != 0) fail("bind");
    }
    if (::listen(listen_fd_, 64) != 0) fail("listen");
}

void Listener::start() {
    thread_ = std::thread([this] { loop(); });
    spdlog::info("webhook: listening on {} (max_body {} bytes, {} requests/s, burst {})", options_.listen,
                 options_.limits.max_body, options_.rate, options_.burst);
}

void Listener::stop() {
    if (thread_.joinable()) {
        const char byte = 0;
        while (write(wake_[1], &byte, 1) < 0 && errno == EINTR) {
        }
        thread_.join();
    }
    close_fd(listen_fd_);
    close_fd(wake_[0]);
    close_fd(wake_[1]);
    if (!unix_path_.empty()) {
        unlink(unix_path_.c_str());
        unix_path_.clear();
    }
}

void Listener::count(const std::string& outcome) {
    const std::lock_guard lock(metrics_mu_);
    ++requests_[outcome];
}

bool Listener::take_token() {
    const auto now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - refilled_).count();
    refilled_ = now;
    tokens_ = std::min<double>(options_.burst, tokens_ + elapsed * options_.rate);
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
}

std::string Listener::metrics() const {
    const std::lock_guard lock(metrics_mu_);
    std::string out =
        "# HELP sitesfs_webhook_requests_total Webhook requests answered, by outcome.\n"
        "# TYPE sitesfs_webhook_requests_total counter\n";
    for (const auto& [outcome, n] : requests_)
        out += "sitesfs_webhook_requests_total{outcome=\"" + outcome + "\"} " + std::to_string(n) + "\n";
    out += "# HELP sitesfs_webhook_refreshes_total Sites a verified push made refresh.\n"
           "# TYPE sitesfs_webhook_refreshes_total counter\n"
           "sitesfs_webhook_refreshes_total " + std::to_string(refreshes_) + "\n";
    return out;
}

Answer Listener::handle(const HttpRequest& r) {
    if (r.method != "POST") return {405, "only POST is answered here\n", "bad_request"};
    const auto provider = provider_of(r);
    if (!provider)
        return {400, "not a webhook sitesfs knows: no X-GitHub-Event, X-Gitea-Event, X-Forgejo-Event or X-Gitlab-Event header\n",
                "unknown_sender"};
    // The signature first: nothing of an unverified body is read.
    switch (verify(*provider, r, secret_.view())) {
        case Verdict::ok: break;
        case Verdict::missing:
            spdlog::warn("webhook: a {} request without a signature, refused (401)", to_string(*provider));
            return {401, "no signature: give the webhook the secret [webhook] secret_ref names\n", "missing_signature"};
        case Verdict::wrong:
            spdlog::warn("webhook: a {} request with a wrong signature, refused (401)", to_string(*provider));
            return {401, "the signature does not match the secret [webhook] secret_ref names\n", "bad_signature"};
    }
    const std::string event = event_of(r, *provider);
    if (*provider == Provider::github && event == "ping") return {200, "pong\n", "ping"};
    if (!is_push(*provider, event))
        return {202, "event \"" + printable_prefix(event, kShown) + "\" is not a push; nothing to do\n", "ignored"};
    const PushParse push = parse_push_event(r.body, options_.policy);
    if (!push.ok) return {400, push.reason + "\n", "bad_payload"};
    const PushEvent& e = push.event;
    const std::string repo = e.repositories.front();
    if (e.branch().empty())
        return {200, printable_prefix(e.ref, kShown) + " is not a branch; no site follows it\n", "no_site"};
    // Placed here or not: the store asks the hosts it is placed on.
    std::vector<std::string> sites;
    for (const std::string& name : store_.site_names()) {
        const SiteRef site = store_.site(name);
        if (site && follows(*site, e)) sites.push_back(name);
    }
    if (sites.empty())
        return {200, "no site follows " + printable_prefix(repo, kShown) + " branch " + printable_prefix(e.branch(), kShown) + "\n",
                "no_site"};
    std::vector<std::string> asked, failed;
    for (const std::string& site : sites) {
        const Outcome o = store_.write_field(site, "ctl", "refresh\n");
        if (o.ok()) {
            asked.push_back(site);
        } else if (o.err != ENOENT) {  // removed meanwhile: nothing to ask
            spdlog::warn("webhook: site {}: the refresh was not asked: {}", site, o.reason);
            failed.push_back(site);
        }
    }
    {
        const std::lock_guard lock(metrics_mu_);
        refreshes_ += asked.size();
    }
    spdlog::info("webhook: {} push to {} branch {}: refreshing {}", to_string(*provider), printable_prefix(repo, kShown),
                 printable_prefix(e.branch(), kShown), asked.empty() ? "nothing" : joined(asked));
    // The sender's delivery log then shows the push was not acted on, and it can be redelivered.
    if (!failed.empty())
        return {503, "the store did not take the refresh of " + joined(failed) + "; the daemon's log says why" +
                         (asked.empty() ? "" : "; refreshed: " + joined(asked)) + "\n",
                "unavailable"};
    if (asked.empty()) return {200, "the sites that followed it were removed meanwhile\n", "no_site"};
    return {200, "refreshed: " + joined(asked) + "\n", "refreshed"};
}

void Listener::loop() {
    std::vector<Connection> conns;
    const size_t cap = options_.limits.max_head + options_.limits.max_body + 1;
    std::vector<char> chunk(kReadChunk);

    // Answers, then half-closes and drains; counts the outcome.
    const auto answer = [&](Connection& c, const Answer& a) {
        count(a.outcome);
        const std::string out = response(a.status, a.body);
        size_t sent = 0;
        // The answer is small and the socket's buffer empty: one send nearly always takes it all;
        // a client that does not read it loses the rest.
        while (sent < out.size()) {
            const ssize_t n = send(c.fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            sent += static_cast<size_t>(n);
        }
        shutdown(c.fd, SHUT_WR);
        c.draining = true;
        c.received.clear();
        c.received.shrink_to_fit();
        c.deadline = std::min(c.deadline, Clock::now() + kDrainTime);
    };
    const auto refused = [&](Connection& c, int status, const std::string& reason) {
        answer(c, take_token() ? Answer{status, reason + "\n", outcome_of_refusal(status)}
                               : Answer{429, "too many requests; try again in a second\n", "rate_limited"});
    };

    for (;;) {
        std::vector<pollfd> fds;
        fds.push_back({wake_[0], POLLIN, 0});
        const bool accepting = conns.size() < options_.max_connections;
        fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});
        for (const Connection& c : conns) fds.push_back({c.fd, POLLIN, 0});
        auto next = Clock::now() + std::chrono::hours(1);
        for (const Connection& c : conns) next = std::min(next, c.deadline);
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count() + 1;
        const int ready = poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(wait, 0)));
        if (ready < 0 && errno != EINTR) {
            spdlog::error("webhook: poll: {}; the listener stops", errno_text(errno));
            break;
        }
        if (fds[0].revents) break;

        for (size_t i = 0; i < conns.size(); ++i) {
            Connection& c = conns[i];
            if (!(fds[i + 2].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const ssize_t n = recv(c.fd, chunk.data(), chunk.size(), 0);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (n <= 0) {  // closed (or reset) before a whole request, or done draining
                close_fd(c.fd);
                continue;
            }
            if (c.draining) continue;
            c.received.append(chunk.data(), static_cast<size_t>(n));
            if (c.received.size() > cap) {
                refused(c, 400, "more bytes than Content-Length: one request per connection");
                continue;
            }
            const HttpParse p = parse_request(c.received, options_.limits);
            if (p.state == HttpParse::State::refused) {
                refused(c, p.status, p.reason);
            } else if (p.state == HttpParse::State::incomplete && p.wants_continue && !c.continued) {
                // What the head alone can refuse (a body over max_body, a malformed head) was
                // refused above, before the client sends the body; the signature needs the body.
                static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
                c.continued = true;
                if (send(c.fd, kContinue.data(), kContinue.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(kContinue.size()))
                    close_fd(c.fd);
            } else if (p.state == HttpParse::State::complete) {
                // The bucket is taken before the signature is checked, so a flood costs no HMAC.
                if (!take_token()) {
                    answer(c, {429, "too many requests; try again in a second\n", "rate_limited"});
                    continue;
                }
                Answer a;
                try {
                    a = handle(p.request);
                } catch (const std::exception& e) {
                    spdlog::error("webhook: {}", e.what());
                    a = {500, "internal error; see the daemon's log\n", "bad_request"};
                }
                answer(c, a);
            }
        }

        const auto now = Clock::now();
        for (Connection& c : conns) {
            if (c.fd < 0 || c.deadline > now) continue;
            if (c.draining) {
                close_fd(c.fd);
            } else {
                refused(c, 408, "the request did not arrive within " + std::to_string(options_.read_timeout.count()) + " ms");
            }
        }
        std::erase_if(conns, [](const Connection& c) { return c.fd < 0; });

        if (accepting && (fds[1].revents & POLLIN)) {
            while (conns.size() < options_.max_connections) {
                const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                    if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        spdlog::warn("webhook: accept: {}", errno_text(errno));
                    break;
                }
                conns.push_back({fd, {}, Clock::now() + options_.read_timeout, false});
            }
        }
    }
    for (Connection& c : conns) close_fd(c.fd);
}

}  // namespace sitesfs::webhook
