#include "hooks/reload.hpp"

#include <poll.h>

#include <sdbus-c++/sdbus-c++.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>

#include "hooks/command.hpp"

namespace sitesfs::hooks {

namespace {

constexpr const char* kService = "org.freedesktop.systemd1";
constexpr const char* kObject = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";

using SteadyClock = std::chrono::steady_clock;

std::chrono::microseconds remaining(SteadyClock::time_point deadline) {
    return std::max(std::chrono::duration_cast<std::chrono::microseconds>(deadline - SteadyClock::now()),
                    std::chrono::microseconds(0));
}

// A method call's share of the deadline. Never 0, which sd-bus reads as "its default of 25s".
std::chrono::microseconds call_timeout(SteadyClock::time_point deadline) {
    return std::max(remaining(deadline), std::chrono::microseconds(1));
}

// Best effort: systemd drops the subscription anyway when the connection closes, so the reply is
// not waited for (the call goes out when the connection is flushed on close).
class Unsubscribe {
public:
    explicit Unsubscribe(sdbus::IProxy& proxy) : proxy_(proxy) {}
    Unsubscribe(const Unsubscribe&) = delete;
    Unsubscribe& operator=(const Unsubscribe&) = delete;
    ~Unsubscribe() {
        try {
            proxy_.callMethod("Unsubscribe").onInterface(kManager).dontExpectReply();
        } catch (const sdbus::Error&) {
        }
    }

private:
    sdbus::IProxy& proxy_;
};

// Where createSystemBusConnection() looks, for the message when it cannot connect.
std::string system_bus_address() {
    const char* env = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
    if (!env) return "unix:path=/run/dbus/system_bus_socket (the default; DBUS_SYSTEM_BUS_ADDRESS is not set)";
    if (!*env) return "'' (DBUS_SYSTEM_BUS_ADDRESS is set but empty)";
    return std::string(env) + " (from DBUS_SYSTEM_BUS_ADDRESS)";
}

class SystemdReloader final : public Reloader {
public:
    SystemdReloader(std::string unit, std::chrono::milliseconds timeout) : unit_(std::move(unit)), timeout_(timeout) {}

    std::string describe() const override { return "systemd reload of " + unit_; }

    void reload() override {
        const auto deadline = SteadyClock::now() + timeout_;

        // A connection per reload: nothing to keep alive or reconnect between deploys, and the
        // subscription ends with the connection even when Unsubscribe does not get through.
        std::unique_ptr<sdbus::IConnection> bus;
        try {
            bus = sdbus::createSystemBusConnection();
        } catch (const sdbus::Error& e) {
            fail("cannot reach the system bus at " + system_bus_address() + ": " + e.getMessage(),
                 RunningConfig::unchanged);
        }

        Stage stage = Stage::preparing;
        try {
            run_job(*bus, deadline, stage);
        } catch (const sdbus::Error& e) {
            const std::string& name = e.getName();
            const bool timed_out =
                name == "org.freedesktop.DBus.Error.Timeout" || name == "org.freedesktop.DBus.Error.NoReply";
            // Once ReloadUnit is out, only an error reply to it is a refusal; the job it started
            // runs on whether or not this connection sees it end.
            const bool no_verdict = timed_out || name == "org.freedesktop.DBus.Error.Disconnected";
            const RunningConfig running = stage == Stage::waiting || (stage == Stage::asking && no_verdict)
                                              ? RunningConfig::unknown
                                              : RunningConfig::unchanged;
            if (timed_out)
                fail("systemd did not answer within " + duration_text(timeout_) + " (" + name + ")", running);
            fail(name + ": " + e.getMessage(), running);
        }
    }

private:
    // How far a reload got, for what a failure leaves the proxy running.
    enum class Stage { preparing, asking, waiting };

    [[noreturn]] void fail(const std::string& why, RunningConfig running) const {
        throw ReloadError(describe() + ": " + why, running);
    }

    // Everything happens on this thread: the signal handler runs from processPendingRequest() below,
    // never from a thread of sdbus-c++'s own. That thread (enterEventLoopAsync) lets the sdbus::Error
    // escape when the bus goes away under it, and std::terminate would take the daemon down; here it
    // is a failed reload like any other.
    void run_job(sdbus::IConnection& bus, SteadyClock::time_point deadline, Stage& stage) {
        // Every JobRemoved seen, job path -> result. systemd may announce the end of the job before
        // the ReloadUnit reply is read (sd-bus queues it while waiting for the reply), so the job's
        // path is only looked up here once the reply told us which one is ours.
        std::map<std::string, std::string> finished;

        auto proxy = sdbus::createProxy(bus, kService, kObject);
        proxy->uponSignal("JobRemoved")
            .onInterface(kManager)
            .call([&finished](uint32_t, const sdbus::ObjectPath& job, const std::string&, const std::string& result) {
                finished[job] = result;
            });
        // Installs the match rule with a synchronous AddMatch, so no JobRemoved can slip past
        // between Subscribe and ReloadUnit.
        proxy->finishRegistration();

        proxy->callMethod("Subscribe").onInterface(kManager).withTimeout(call_timeout(deadline));
        const Unsubscribe unsubscribe(*proxy);
        sdbus::ObjectPath job;
        stage = Stage::asking;
        proxy->callMethod("ReloadUnit")
            .onInterface(kManager)
            .withTimeout(call_timeout(deadline))
            .withArguments(unit_, std::string("replace"))
            .storeResultsTo(job);
        stage = Stage::waiting;

        const std::string result = wait_for(bus, finished, job, deadline);
        // "timeout": systemd killed the reload command midway, perhaps after it handed Caddy the
        // config. "failed" is the command's own refusal; the others never ran it.
        if (result != "done")
            fail("job " + result + " (journalctl -u " + unit_ + " says why)",
                 result == "timeout" ? RunningConfig::unknown : RunningConfig::unchanged);
    }

    std::string wait_for(sdbus::IConnection& bus, const std::map<std::string, std::string>& finished,
                         const std::string& job, SteadyClock::time_point deadline) const {
        for (;;) {
            if (const auto it = finished.find(job); it != finished.end()) return it->second;
            if (bus.processPendingRequest()) continue;
            // Rounded up, so the wait never ends before the deadline it reports.
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(remaining(deadline)).count();
            if (left == 0)
                fail("no JobRemoved for job " + job + " within " + duration_text(timeout_), RunningConfig::unknown);
            const auto poll_data = bus.getEventLoopPollData();
            const int bus_timeout = poll_data.getPollTimeout();  // -1: sd-bus has no timer of its own
            const int left_ms = static_cast<int>(std::min<int64_t>(left, std::numeric_limits<int>::max()));
            const int wait_ms = bus_timeout < 0 ? left_ms : std::min(bus_timeout, left_ms);
            pollfd p{poll_data.fd, poll_data.events, 0};
            if (poll(&p, 1, wait_ms) < 0 && errno != EINTR)
                fail(std::string("waiting for the system bus: ") + std::strerror(errno), RunningConfig::unknown);
        }
    }

    std::string unit_;
    std::chrono::milliseconds timeout_;
};

}  // namespace

std::unique_ptr<Reloader> make_systemd_reloader(const std::string& unit, std::chrono::milliseconds timeout) {
    return std::make_unique<SystemdReloader>(unit, timeout);
}

}  // namespace sitesfs::hooks
