// The push webhook listener ([webhook], docs/webhooks.md): a thread serving HTTP/1.1 on a loopback
// address or a unix socket, for Caddy to proxy to. A request whose signature proves it was sent
// with the shared secret, and that announces a push, makes every site following the pushed branch
// of that repository refresh: the reconciler asks the remote itself, so a payload can make sitesfs
// look sooner but never makes it deploy anything the remote does not have.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include "hooks/deploy_keys.hpp"
#include "schemas/validators.hpp"
#include "store/store.hpp"
#include "webhook/http_request.hpp"

namespace sitesfs::webhook {

struct ListenerOptions {
    // "127.0.0.1:9418", "[::1]:9418" or "unix:/run/sitesfs/webhook.sock"; listen_address_problem
    // holds it to loopback.
    std::string listen;
    HttpLimits limits;  // limits.max_body is [webhook] max_body
    unsigned rate = 10;   // requests answered per second, on average ([webhook] rate)
    unsigned burst = 20;  // ... and at once after a quiet spell ([webhook] burst)
    // A connection that has not sent its whole request by then is answered 408 and closed, so a
    // slow client holds a slot for this long at most.
    std::chrono::milliseconds read_timeout{5000};
    size_t max_connections = 16;
    ValidationPolicy policy;  // payload URLs are held to what a site's repo may be
};

// Why `listen` cannot be the listener's address, or "" when it can: a numeric loopback address
// with a port, or "unix:" and an absolute path.
std::string listen_address_problem(std::string_view listen);

struct ListenerError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// What the listener answers a complete request, and the outcome it is counted under.
struct Answer {
    int status = 200;
    std::string body;
    std::string outcome;
};

class Listener {
public:
    // Binds, so that an address in use stops the daemon before it mounts; connections wait in the
    // backlog until start(). Throws ListenerError naming the address and what failed. `secret` must
    // not be empty (the daemon refuses short ones).
    // A verified push is written to the store as `refresh` to each following site's `ctl`, as a
    // person would: the store tells every host the site is placed on (docs/cluster.md).
    Listener(Store& store, ListenerOptions options, hooks::SecretBuffer secret);
    ~Listener();
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    // Starts answering, on a thread of its own.
    void start();
    // Closes every connection, joins, removes the unix socket. Idempotent.
    void stop();

    // Prometheus text: requests by outcome (every outcome, zeros included) and sites refreshed.
    std::string metrics() const;

private:
    struct Connection;
    // The answer to a complete request (signature, event, matching); refreshes what it lists.
    Answer handle(const HttpRequest& request);
    void bind_socket();
    void loop();
    void count(const std::string& outcome);
    bool take_token();

    Store& store_;
    const ListenerOptions options_;
    const hooks::SecretBuffer secret_;
    int listen_fd_ = -1;
    int wake_[2] = {-1, -1};
    std::string unix_path_;  // the socket file to remove at stop; empty for TCP
    std::thread thread_;

    // The token bucket, touched only by the listener's thread.
    double tokens_;
    std::chrono::steady_clock::time_point refilled_;

    mutable std::mutex metrics_mu_;
    std::map<std::string, uint64_t> requests_;
    uint64_t refreshes_ = 0;
};

}  // namespace sitesfs::webhook
