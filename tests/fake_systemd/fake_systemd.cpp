// Stands in for systemd on a private bus, for tests of the systemd reload mode:
//
//   fake-systemd --address ADDR --mode MODE [--unit NAME] [--record FILE] -- CMD ARGS...
//
// Owns org.freedesktop.systemd1 and serves the part of org.freedesktop.systemd1.Manager that
// sitesfs uses: Subscribe, Unsubscribe, ReloadUnit(name, mode) -> job path, and the JobRemoved
// signal. A reload of NAME (default caddy.service) runs CMD ARGS; any other unit is NoSuchUnit.
// MODE decides how the job ends:
//   normal  reply with the job path, run CMD, JobRemoved "done" (exit 0) or "failed"
//   early   run CMD and send JobRemoved before the reply, the order that races a careless client
//   fail    JobRemoved "failed" without running CMD
//   deny    org.freedesktop.DBus.Error.AccessDenied, as systemd says to an unprivileged caller
//   silent  reply and run CMD, but never send JobRemoved
//   hang    never reply to ReloadUnit
// --record FILE gets one line per ReloadUnit call: "ReloadUnit caddy.service replace -> done".
// Prints "ready" once the name is owned; exits 0 on SIGTERM or SIGINT.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <sdbus-c++/sdbus-c++.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "hooks/command.hpp"

namespace {

constexpr const char* kManager = "org.freedesktop.systemd1.Manager";
const std::set<std::string> kModes{"normal", "early", "fail", "deny", "silent", "hang"};

struct Options {
    std::string address;
    std::string mode;
    std::string unit = "caddy.service";
    std::string record;
    std::vector<std::string> command;
};

[[noreturn]] void usage_error(const std::string& why) {
    std::cerr << "fake-systemd: " << why
              << "\nusage: fake-systemd --address ADDR --mode normal|early|fail|deny|silent|hang "
                 "[--unit NAME] [--record FILE] -- CMD ARGS...\n";
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    int i = 1;
    for (; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--") {
            ++i;
            break;
        }
        if (i + 1 >= argc) usage_error(arg + " needs a value");
        const std::string value = argv[++i];
        if (arg == "--address") o.address = value;
        else if (arg == "--mode") o.mode = value;
        else if (arg == "--unit") o.unit = value;
        else if (arg == "--record") o.record = value;
        else usage_error("unknown option " + arg);
    }
    o.command.assign(argv + i, argv + argc);
    if (o.address.empty()) usage_error("--address is required");
    if (!kModes.contains(o.mode)) usage_error("unknown --mode '" + o.mode + "'");
    if (o.command.empty()) usage_error("no command after --");
    return o;
}

class Manager {
public:
    Manager(sdbus::IConnection& bus, Options options)
        : options_(std::move(options)), object_(sdbus::createObject(bus, "/org/freedesktop/systemd1")) {
        object_->registerMethod("Subscribe").onInterface(kManager).implementedAs([] {});
        object_->registerMethod("Unsubscribe").onInterface(kManager).implementedAs([] {});
        object_->registerMethod("ReloadUnit")
            .onInterface(kManager)
            .withInputParamNames("name", "mode")
            .withOutputParamNames("job")
            .implementedAs([this](sdbus::Result<sdbus::ObjectPath>&& reply, std::string name, std::string mode) {
                reload_unit(std::move(reply), name, mode);
            });
        object_->registerSignal("JobRemoved")
            .onInterface(kManager)
            .withParameters<uint32_t, sdbus::ObjectPath, std::string, std::string>("id", "job", "unit", "result");
        object_->finishRegistration();
    }

private:
    // Runs on the bus loop, so CMD blocks other callers while it runs: one reload at a time, as
    // systemd's job queue does for one unit.
    void reload_unit(sdbus::Result<sdbus::ObjectPath>&& reply, const std::string& name, const std::string& mode) {
        const std::string call = "ReloadUnit " + name + " " + mode;
        if (name != options_.unit) {
            record(call + " -> NoSuchUnit");
            throw sdbus::Error("org.freedesktop.systemd1.NoSuchUnit", "Unit " + name + " not found.");
        }
        if (options_.mode == "deny") {
            record(call + " -> AccessDenied");
            throw sdbus::Error("org.freedesktop.DBus.Error.AccessDenied", "Access denied (fake-systemd --mode deny)");
        }
        if (options_.mode == "hang") {
            record(call + " -> no reply");
            unanswered_.push_back(std::move(reply));  // kept, so no reply is ever sent
            return;
        }

        const uint32_t id = ++last_job_;
        const sdbus::ObjectPath job("/org/freedesktop/systemd1/job/" + std::to_string(id));
        const bool early = options_.mode == "early";
        if (!early) reply.returnResults(job);
        std::string result = "failed";
        if (options_.mode != "fail") {
            const auto run = sitesfs::hooks::run_command(options_.command, std::chrono::seconds(60));
            if (run.ok()) result = "done";
            else std::cerr << "fake-systemd: reload command: " << run.summary() << std::endl;
        }
        if (options_.mode == "silent") {
            record(call + " -> " + result + " (JobRemoved withheld)");
            return;
        }
        record(call + " -> " + result);
        object_->emitSignal("JobRemoved").onInterface(kManager).withArguments(id, job, name, result);
        if (early) reply.returnResults(job);
    }

    void record(const std::string& line) const {
        if (options_.record.empty()) return;
        std::ofstream out(options_.record, std::ios::app);
        out << line << '\n';
    }

    Options options_;
    std::unique_ptr<sdbus::IObject> object_;
    uint32_t last_job_ = 0;
    std::vector<sdbus::Result<sdbus::ObjectPath>> unanswered_;
};

// The bus loop on the main thread, next to a signalfd for SIGTERM/SIGINT: no thread of
// sdbus-c++'s own, so a lost bus ends the program with a message instead of std::terminate.
int serve(sdbus::IConnection& bus, int stop_fd) {
    for (;;) {
        while (bus.processPendingRequest()) {
        }
        const auto poll_data = bus.getEventLoopPollData();
        pollfd fds[2] = {{poll_data.fd, poll_data.events, 0}, {stop_fd, POLLIN, 0}};
        if (poll(fds, 2, poll_data.getPollTimeout()) < 0 && errno != EINTR) {
            std::cerr << "fake-systemd: poll: " << std::strerror(errno) << std::endl;
            return 1;
        }
        if (fds[1].revents & POLLIN) return 0;
    }
}

}  // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    const int stop_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
    if (stop_fd < 0) {
        std::cerr << "fake-systemd: signalfd: " << std::strerror(errno) << std::endl;
        return 1;
    }

    try {
        auto bus = sdbus::createSessionBusConnectionWithAddress(options.address);
        Manager manager(*bus, options);
        // The name last, so a client that sees it owned finds the object in place.
        bus->requestName("org.freedesktop.systemd1");
        std::cout << "ready" << std::endl;
        return serve(*bus, stop_fd);
    } catch (const sdbus::Error& e) {
        std::cerr << "fake-systemd: " << e.getName() << ": " << e.getMessage() << std::endl;
        return 1;
    }
}
