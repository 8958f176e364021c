#include "tests/support/dbus.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <functional>
#include <optional>

#include "tests/integration/mount_fixture.hpp"

namespace sitesfs::it {

namespace {

// D-Bus address values escape every byte outside [-0-9A-Za-z_/.\*] as %XX.
std::string address_escape(const std::string& s) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (const unsigned char c : s) {
        if (std::isalnum(c) || std::strchr("-_/.\\*", c)) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string xml_escape(const std::string& s) {
    std::string out;
    for (const char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            default: out += c;
        }
    }
    return out;
}

bool accepts_connections(const stdfs::path& socket_path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

// Polls `ready` until it holds, the process exits or 10 s pass; on failure `why` says which.
bool wait_until_ready(pid_t pid, const std::string& what, const stdfs::path& log, const std::function<bool()>& ready,
                      std::string* why) {
    std::optional<int> exited;
    const bool ok = eventually(
        [&] {
            if (ready()) return true;
            exited = wait_child(pid, Ms(0));
            return exited.has_value();
        },
        10s);
    if (ok && !exited) return true;
    if (why) {
        *why = what + (exited ? " exited (" + wait_status_text(*exited) + ")" : std::string(" was not ready within 10 s")) +
               "; its log " + log.string() + ":\n" + slurp(log);
    }
    return false;
}

// SIGTERM to the process group, then terminate_child's grace period and SIGKILL.
void stop_group(pid_t& pid) {
    if (pid <= 0) return;
    kill(-pid, SIGTERM);
    terminate_child(pid, 5s);
    pid = -1;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// PrivateBus

PrivateBus::PrivateBus(const stdfs::path& dir) : dir_(dir) {}

PrivateBus::~PrivateBus() { stop(); }

stdfs::path PrivateBus::socket() const { return dir_ / "system_bus_socket"; }
stdfs::path PrivateBus::log_file() const { return dir_ / "dbus-daemon.log"; }
std::string PrivateBus::address() const { return "unix:path=" + address_escape(socket().string()); }

bool PrivateBus::start(std::string* why) {
    if (pid_ > 0) return true;
    if (socket().string().size() >= sizeof(sockaddr_un::sun_path)) {
        if (why) *why = "socket path too long for AF_UNIX: " + socket().string();
        return false;
    }
    // Everyone may own, send and receive anything: the tests play both systemd and its clients.
    // No <servicedir>, so nothing is ever activated.
    spit(dir_ / "bus.conf",
         "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
         " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
         "<busconfig>\n"
         "  <type>system</type>\n"
         "  <listen>unix:path=" + xml_escape(address_escape(socket().string())) + "</listen>\n"
         "  <auth>EXTERNAL</auth>\n"
         "  <policy context=\"default\">\n"
         "    <allow user=\"*\"/>\n"
         "    <allow own=\"*\"/>\n"
         "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
         "    <allow receive_sender=\"*\"/>\n"
         "    <allow eavesdrop=\"true\"/>\n"
         "  </policy>\n"
         "</busconfig>\n");
    pid_ = spawn_logged({"dbus-daemon", "--nofork", "--config-file=" + (dir_ / "bus.conf").string(), "--print-address"},
                        log_file());
    if (pid_ < 0) {
        if (why) *why = std::string("cannot start dbus-daemon: ") + std::strerror(errno);
        return false;
    }
    if (wait_until_ready(pid_, "dbus-daemon", log_file(), [this] { return accepts_connections(socket()); }, why))
        return true;
    stop();
    return false;
}

void PrivateBus::stop() { stop_group(pid_); }

// ---------------------------------------------------------------------------------------------
// FakeSystemd

FakeSystemd::FakeSystemd(const PrivateBus& bus, const stdfs::path& dir, std::string mode,
                         std::vector<std::string> reload_command, std::vector<std::string> env, std::string unit)
    : address_(bus.address()),
      dir_(dir),
      mode_(std::move(mode)),
      command_(std::move(reload_command)),
      env_(std::move(env)),
      unit_(std::move(unit)) {}

FakeSystemd::~FakeSystemd() {
    stop();
    if (const auto report = sanitizer_report(slurp(log_file())); !report.empty())
        ADD_FAILURE() << "fake-systemd reported:\n" << report;
}

stdfs::path FakeSystemd::log_file() const { return dir_ / "fake-systemd.log"; }

bool FakeSystemd::start(std::string* why) {
    if (pid_ > 0) return true;
    std::vector<std::string> argv{FAKE_SYSTEMD_BINARY, "--address", address_, "--mode", mode_, "--unit", unit_,
                                  "--record", (dir_ / "fake-systemd.calls").string(), "--"};
    argv.insert(argv.end(), command_.begin(), command_.end());
    // The log is appended to across restarts; only a "ready" after this point counts.
    const size_t log_start = slurp(log_file()).size();
    pid_ = spawn_logged(argv, log_file(), env_);
    if (pid_ < 0) {
        if (why) *why = std::string("cannot start " FAKE_SYSTEMD_BINARY ": ") + std::strerror(errno);
        return false;
    }
    const auto ready = [&] {
        const std::string log = slurp(log_file());
        return log.size() > log_start && ("\n" + log.substr(log_start)).find("\nready\n") != std::string::npos;
    };
    if (wait_until_ready(pid_, "fake-systemd", log_file(), ready, why)) return true;
    stop();
    return false;
}

void FakeSystemd::stop() { stop_group(pid_); }

std::vector<std::string> FakeSystemd::calls() const { return split_lines(slurp(dir_ / "fake-systemd.calls")); }

}  // namespace sitesfs::it
