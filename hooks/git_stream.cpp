#include "hooks/git_stream.hpp"

#include "hooks/command.hpp"

#include <git2.h>
#include <git2/sys/stream.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <type_traits>

namespace sitesfs::hooks {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How often a wait looks at the cancellation flag: a superseded run or a shutdown stops this fast.
constexpr milliseconds kSlice{100};

thread_local const StreamSettings* t_settings = nullptr;

// libgit2 1.5's SSH transport takes any standard stream to be its own git_socket_stream
// (src/libgit2/streams/socket.h) and hands `s` to libssh2, so a replacement must begin with the
// same fields in the same order.
struct Stream;
struct SocketStreamHead {
    git_stream parent;
    char* host;
    char* port;
    int s;
    Stream* owner;  // ours, after libgit2's fields
};
static_assert(std::is_standard_layout_v<SocketStreamHead>);

struct Stream {
    SocketStreamHead head{};
    std::string host, port;
    StreamLimits limits;
    std::function<bool()> stop;
    bool watch = false;
    const std::function<bool()>* cancelled = nullptr;
    std::shared_ptr<StreamReport> report;

    // The SSH watchdog.
    std::thread watchdog;
    std::mutex mu;
    std::condition_variable wake;
    bool closing = false;
};

// `parent` is the first member of a standard-layout struct, so the two pointers are interconvertible.
Stream& self(git_stream* s) { return *reinterpret_cast<SocketStreamHead*>(s)->owner; }

int set_error(const std::string& message) {
    git_error_set_str(GIT_ERROR_NET, message.c_str());
    return -1;
}

int report_failure(Stream& st, const std::string& message) {
    {
        const std::lock_guard lock(st.report->mu);
        if (st.report->failure.empty()) st.report->failure = message;
    }
    return set_error(message);
}

int report_cancelled(Stream& st) {
    {
        const std::lock_guard lock(st.report->mu);
        st.report->cancelled = true;
    }
    return set_error("cancelled");
}

enum class Wait { ready, timed_out, stopped };

// Waits for `events` on the socket until `deadline`, in slices so that `stop` is polled meanwhile.
// An error or hang-up on the socket counts as ready: the next call reports it.
Wait wait_for(Stream& st, short events, Clock::time_point deadline) {
    for (;;) {
        const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
        if (left <= milliseconds::zero()) return Wait::timed_out;
        pollfd p{st.head.s, events, 0};
        const int n = ::poll(&p, 1, static_cast<int>(std::min(left, kSlice).count()));
        if (n > 0) return Wait::ready;
        if (n < 0 && errno != EINTR) return Wait::ready;
        if (st.stop && st.stop()) return Wait::stopped;
    }
}

std::string endpoint(const Stream& st) { return st.host + ":" + st.port; }

std::string silent_server(const Stream& st) {
    return "no data from the server " + endpoint(st) + " for " + duration_text(st.limits.io) +
           " (timed out; [git] io_timeout)";
}

// ---- SSH: watching a socket libssh2 drives ----

void watch_socket(Stream& st) {
    std::unique_lock lock(st.mu);
    for (;;) {
        if (st.wake.wait_for(lock, kSlice, [&] { return st.closing; })) return;
        bool cancelled = false;
        try {
            cancelled = st.cancelled && *st.cancelled && (*st.cancelled)();
        } catch (const std::exception&) {
            cancelled = true;  // the operation's own poll reports why
        }
        if (cancelled) {
            const std::lock_guard report(st.report->mu);
            st.report->cancelled = true;
        } else {
            int unread = 0;
            tcp_info info{};
            socklen_t size = sizeof info;
            if (::ioctl(st.head.s, FIONREAD, &unread) < 0 ||
                ::getsockopt(st.head.s, IPPROTO_TCP, TCP_INFO, &info, &size) < 0)
                continue;
            // Data waiting to be read means the client, not the server, is the slow one.
            if (unread > 0 || milliseconds(info.tcpi_last_data_recv) < st.limits.io) continue;
            const std::lock_guard report(st.report->mu);
            if (st.report->failure.empty())
                st.report->failure = silent_server(st);
        }
        // libssh2's poll wakes up, and its next read sees the end of the connection.
        ::shutdown(st.head.s, SHUT_RDWR);
        return;
    }
}

void stop_watchdog(Stream& st) {
    if (!st.watchdog.joinable()) return;
    {
        const std::lock_guard lock(st.mu);
        st.closing = true;
    }
    st.wake.notify_all();
    st.watchdog.join();
}

// ---- the git_stream callbacks ----

int stream_connect(git_stream* s) {
    Stream& st = self(s);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    addrinfo* found = nullptr;
    // getaddrinfo has no deadline of its own; the resolver's (resolv.conf timeout x attempts) bounds it.
    if (const int rc = ::getaddrinfo(st.host.c_str(), st.port.c_str(), &hints, &found); rc != 0)
        return set_error("failed to resolve address for " + st.host + ": " + ::gai_strerror(rc));
    const std::unique_ptr<addrinfo, void (*)(addrinfo*)> addresses(found, ::freeaddrinfo);

    const auto deadline = Clock::now() + st.limits.connect;
    std::string why = "no address";
    for (const addrinfo* a = found; a; a = a->ai_next) {
        const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            why = std::strerror(errno);
            continue;
        }
        st.head.s = fd;
        int err = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
        if (err == EINPROGRESS) {
            switch (wait_for(st, POLLOUT, deadline)) {
            case Wait::ready: {
                socklen_t size = sizeof err;
                if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &size) < 0) err = errno;
                break;
            }
            case Wait::timed_out:
                ::close(fd);
                st.head.s = -1;
                return report_failure(st, "could not connect to " + endpoint(st) + " within " +
                                              duration_text(st.limits.connect) + " (timed out; [git] connect_timeout)");
            case Wait::stopped:
                ::close(fd);
                st.head.s = -1;
                return report_cancelled(st);
            }
        }
        if (err == 0) {
            if (st.watch) st.watchdog = std::thread(watch_socket, std::ref(st));
            return 0;
        }
        why = std::strerror(err);
        ::close(fd);
        st.head.s = -1;
    }
    return set_error("failed to connect to " + endpoint(st) + ": " + why);
}

// A recv or send (`io`) on the non-blocking socket, retried while wait_for says it can go on: the
// server's silence for io_timeout fails it with `silence()`, a cancellation stops it.
template <class Io>
ssize_t transfer(Stream& st, short events, const char* doing, Io io, const std::function<std::string()>& silence) {
    const auto deadline = Clock::now() + st.limits.io;
    for (;;) {
        const ssize_t n = io();
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return set_error(std::string(doing) + " " + endpoint(st) + ": " + std::strerror(errno));
        switch (wait_for(st, events, deadline)) {
        case Wait::ready: continue;
        case Wait::timed_out: return report_failure(st, silence());
        case Wait::stopped: return report_cancelled(st);
        }
    }
}

ssize_t stream_read(git_stream* s, void* data, size_t len) {
    Stream& st = self(s);
    return transfer(
        st, POLLIN, "reading from", [&] { return ::recv(st.head.s, data, len, MSG_DONTWAIT); },
        [&] { return silent_server(st); });
}

ssize_t stream_write(git_stream* s, const char* data, size_t len, int) {
    Stream& st = self(s);
    return transfer(
        st, POLLOUT, "writing to", [&] { return ::send(st.head.s, data, len, MSG_DONTWAIT | MSG_NOSIGNAL); },
        [&] {
            return "the server " + endpoint(st) + " took nothing for " + duration_text(st.limits.io) +
                   " (timed out; [git] io_timeout)";
        });
}

int stream_close(git_stream* s) {
    Stream& st = self(s);
    stop_watchdog(st);
    if (st.head.s >= 0) ::close(st.head.s);
    st.head.s = -1;
    return 0;
}

void stream_free(git_stream* s) {
    Stream* st = &self(s);
    stop_watchdog(*st);
    if (st->head.s >= 0) ::close(st->head.s);
    delete st;
}

int stream_new(git_stream** out, const char* host, const char* port) {
    auto st = std::make_unique<Stream>();
    st->host = host;
    st->port = port;
    st->head.host = st->host.data();
    st->head.port = st->port.data();
    st->head.s = -1;
    st->head.owner = st.get();
    if (t_settings) {
        st->limits = t_settings->limits;
        st->stop = t_settings->stop;
        st->watch = t_settings->watch;
        st->cancelled = t_settings->cancelled;
        st->report = t_settings->report;
    } else {
        st->report = std::make_shared<StreamReport>();
    }
    git_stream& g = st->head.parent;
    g.version = GIT_STREAM_VERSION;
    g.connect = stream_connect;
    g.read = stream_read;
    g.write = stream_write;
    g.close = stream_close;
    g.free = stream_free;
    *out = &g;
    st.release();
    return 0;
}

}  // namespace

void register_git_stream() {
    git_stream_registration registration{};
    registration.version = GIT_STREAM_VERSION;
    registration.init = stream_new;
    if (git_stream_register(GIT_STREAM_STANDARD, &registration) < 0) {
        const git_error* e = git_error_last();
        throw std::runtime_error(std::string("registering the git network stream: ") +
                                 (e && e->message ? e->message : "unknown libgit2 error"));
    }
}

StreamScope::StreamScope(const StreamSettings& settings) { t_settings = &settings; }

StreamScope::~StreamScope() { t_settings = nullptr; }

}  // namespace sitesfs::hooks
