// Telling the proxy to load the config file that was just swapped in. Three ways, chosen by
// [reload] mode in the config file:
//   systemd  systemd's Manager.ReloadUnit over D-Bus, waiting for the job's JobRemoved signal
//   command  a configured argv run directly (no shell), e.g. caddy reload --config ... --adapter caddyfile
//   none     nothing (the proxy watches the file itself, or an operator reloads)
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace sitesfs::hooks {

// What a failed reload leaves the proxy running. A refusal (a failed job, a command that exited
// non-zero, a D-Bus error reply, nothing asked at all) leaves its running config as it was: Caddy
// keeps the old config when a new one fails to load. A reload that timed out or whose answer was
// lost may still have gone through, late.
enum class RunningConfig { unchanged, unknown };

// A failed reload, with the reason a person reads in `status`, e.g.
// "systemd reload of caddy.service: job failed", "org.freedesktop.DBus.Error.AccessDenied: ...".
struct ReloadError : std::runtime_error {
    ReloadError(const std::string& what, RunningConfig running) : std::runtime_error(what), running(running) {}
    RunningConfig running;
};

enum class ReloadMode { systemd, command, none };

struct ReloadConfig {
    ReloadMode mode = ReloadMode::systemd;
    std::string unit = "caddy.service";    // systemd mode
    std::vector<std::string> command;      // command mode
    std::chrono::milliseconds timeout{30000};
};

class Reloader {
public:
    virtual ~Reloader() = default;
    // Returns once the proxy runs the new config; throws ReloadError otherwise. Called by one
    // thread at a time (the reconciler serializes proxy changes).
    virtual void reload() = 0;
    virtual std::string describe() const = 0;  // "systemd reload of caddy.service", for logs
};

std::unique_ptr<Reloader> make_reloader(const ReloadConfig& config);

// The systemd mode on its own (hooks/reload_systemd.cpp). Connects to the system bus on each
// reload (DBUS_SYSTEM_BUS_ADDRESS is honoured, which is how the tests point it at a private bus):
// registers the JobRemoved match, calls Subscribe, then ReloadUnit(unit, "replace"), and waits up to
// `timeout` for JobRemoved of the returned job, which may arrive before the method reply does.
// result "done" is success; any other result, a D-Bus error (AccessDenied, NoSuchUnit, no bus) or
// the timeout throws ReloadError naming it. RunningConfig::unknown once the reload may have been
// started and no verdict came back: the wait timed out, the bus went away, the call's reply
// timed out, or the job itself timed out ("timeout").
std::unique_ptr<Reloader> make_systemd_reloader(const std::string& unit, std::chrono::milliseconds timeout);

}  // namespace sitesfs::hooks
