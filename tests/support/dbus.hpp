// A private D-Bus system bus and a stand-in for systemd on it (tests/fake_systemd), so the systemd
// reload mode runs for real without touching the machine's systemd. Point the code under test at
// the bus with DBUS_SYSTEM_BUS_ADDRESS=bus.address(). Destructors stop the processes (and their
// process groups), also when the test fails.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace sitesfs::it {

class PrivateBus {
public:
    // `dir` is a directory the test owns (it must exist); bus.conf, system_bus_socket and
    // dbus-daemon.log are made in it.
    explicit PrivateBus(const std::filesystem::path& dir);
    ~PrivateBus();
    PrivateBus(const PrivateBus&) = delete;
    PrivateBus& operator=(const PrivateBus&) = delete;

    // dbus-daemon in the background; returns once the socket accepts connections, or false with
    // `why` filled (including the daemon's log).
    bool start(std::string* why);
    void stop();

    std::string address() const;  // "unix:path=DIR/system_bus_socket"
    std::filesystem::path socket() const;
    std::filesystem::path log_file() const;

private:
    std::filesystem::path dir_;
    pid_t pid_ = -1;
};

class FakeSystemd {
public:
    // fake-systemd --address bus.address() --mode MODE --unit UNIT --record DIR/fake-systemd.calls
    //   -- RELOAD_COMMAND..., with `env` (NAME=VALUE) added to its environment, which the reload
    // command inherits. MODE: normal, early, fail, deny, silent, hang (tests/fake_systemd).
    FakeSystemd(const PrivateBus& bus, const std::filesystem::path& dir, std::string mode,
                std::vector<std::string> reload_command, std::vector<std::string> env = {},
                std::string unit = "caddy.service");
    ~FakeSystemd();
    FakeSystemd(const FakeSystemd&) = delete;
    FakeSystemd& operator=(const FakeSystemd&) = delete;

    // Returns once it owns org.freedesktop.systemd1 (it printed "ready"), or false with `why`.
    bool start(std::string* why);
    void stop();

    // The ReloadUnit calls answered so far by every fake-systemd started on `dir`, one line each:
    // "ReloadUnit caddy.service replace -> done" (or -> failed, AccessDenied, NoSuchUnit, ...).
    std::vector<std::string> calls() const;
    int reloads() const { return static_cast<int>(calls().size()); }
    std::filesystem::path log_file() const;

private:
    std::string address_;
    std::filesystem::path dir_;
    std::string mode_;
    std::vector<std::string> command_;
    std::vector<std::string> env_;
    std::string unit_;
    pid_t pid_ = -1;
};

}  // namespace sitesfs::it
