// Every TCP connection libgit2 opens (plain HTTP, the socket under HTTPS's TLS, SSH) is made by the
// stream registered here, so a remote that accepts and then says nothing fails with a timeout
// instead of blocking a reconcile worker in recv() forever. libgit2 1.5 has no timeout of its own
// (GIT_OPT_SET_SERVER_TIMEOUT is 1.7).
//
// libgit2 calls the stream's constructor with only a host and a port, on the thread that runs the
// git operation; what that operation allows (the limits, how to notice it was cancelled) is handed
// over in a thread-local StreamScope around the operation.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace sitesfs::hooks {

struct StreamLimits {
    std::chrono::milliseconds connect{30000};  // [git] connect_timeout
    std::chrono::milliseconds io{60000};       // [git] io_timeout: the longest the server may say nothing
};

// What ended a connection early, written by whichever thread noticed (see `watch` below).
struct StreamReport {
    std::mutex mu;
    std::string failure;    // "no data from the server HOST:PORT for 60s (timed out; [git] io_timeout)"
    bool cancelled = false;
};

struct StreamSettings {
    StreamLimits limits;
    // Polled on the operation's thread, a few times a second, while a connect, read or write waits.
    std::function<bool()> stop;
    // SSH: libssh2 reads and writes the socket itself, never through the stream, so a thread watches
    // the socket instead (bytes received but unread, and the kernel's time since the last data
    // arrived) and shuts it down when the server has said nothing for `limits.io` or `cancelled`
    // says so. `cancelled` is then called from that thread.
    bool watch = false;
    const std::function<bool()>* cancelled = nullptr;
    std::shared_ptr<StreamReport> report = std::make_shared<StreamReport>();
};

// Registers the stream with libgit2; init_git() calls it once.
void register_git_stream();

// Streams made on this thread while a scope lives use its settings; outside any scope, the
// default limits and no cancellation. Scopes do not nest.
class StreamScope {
public:
    explicit StreamScope(const StreamSettings& settings);
    ~StreamScope();
    StreamScope(const StreamScope&) = delete;
    StreamScope& operator=(const StreamScope&) = delete;
};

}  // namespace sitesfs::hooks
