#include "tests/support/caddy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "tests/integration/mount_fixture.hpp"

namespace sitesfs::it {

namespace {

sockaddr_in loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

}  // namespace

bool port_accepts(int port) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const sockaddr_in a = loopback(port);
    const bool ok = connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    return ok;
}

std::string tail_lines(const std::string& text, size_t count) {
    const auto lines = split_lines(text);
    std::string out;
    for (size_t i = lines.size() > count ? lines.size() - count : 0; i < lines.size(); ++i) out += lines[i] + "\n";
    return out;
}

int free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in a = loopback(0);
    socklen_t len = sizeof a;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        const int err = errno;
        close(fd);
        throw std::runtime_error(std::string("cannot find a free port: ") + std::strerror(err));
    }
    close(fd);
    return ntohs(a.sin_port);
}

// Absolute, because the admin address and the import must not depend on caddy's cwd.
CaddyServer::CaddyServer(const std::filesystem::path& dir, Mode mode)
    : dir_(std::filesystem::absolute(dir)), mode_(mode), port_(free_port()) {
    std::filesystem::create_directories(dir_ / "home");
    // Caddy 2.6.2 has no `persist_config` global option; the autosave it writes goes to
    // XDG_CONFIG_HOME, which is inside `dir`. The unix admin address is "unix/" + an absolute
    // path, hence the double slash.
    const std::string admin = "\tadmin unix/" + admin_socket().string() + "\n";
    if (mode_ != Mode::PlainHttp) {
        https_port_ = free_port();
        const std::string issuer = mode_ == Mode::AutomaticHttps
                                       ? "\tlocal_certs\n"
                                       : "\tacme_ca https://127.0.0.1:" + std::to_string(free_port()) + "/directory\n";
        spit(main_config(), "{\n" + admin + issuer +
                                "\tskip_install_trust\n"
                                "\thttp_port " + std::to_string(port_) + "\n" +
                                "\thttps_port " + std::to_string(https_port_) + "\n" +
                                "\tstorage file_system " + (dir_ / "storage").string() + "\n" +
                                "}\n\nimport " + sites_file().string() + "\n");
    } else {
        spit(main_config(),
             "{\n" + admin +
                 "\tauto_https off\n"
                 "}\n"
                 "\n"
                 "import " + sites_file().string() + "\n"
                 "\n"
                 "# Host-matched site blocks from the import come first in Caddy's route order; this one\n"
                 "# catches every other host on the port.\n"
                 "http://:" + std::to_string(port_) + " {\n"
                 "\trespond \"no site\" 404\n"
                 "}\n");
    }
    // Empty, an imported file fails ("Could not read tokens while importing ...: EOF"); a comment
    // is enough.
    spit(sites_file(), "# no sites yet\n");
}

CaddyServer::~CaddyServer() { stop(); }

bool CaddyServer::start(std::string* why) {
    // A socket left by an earlier run would look like this caddy is up.
    std::filesystem::remove(admin_socket());
    pid_ = spawn_logged({"caddy", "run", "--config", main_config().string(), "--adapter", "caddyfile"}, log_file(),
                        env());
    const auto fail = [&](const std::string& what) {
        if (why) *why = what + "; caddy.log ends with:\n" + tail_lines(slurp(log_file()), 20);
        stop();
        return false;
    };
    if (pid_ < 0) return fail("cannot start caddy: " + std::string(std::strerror(errno)));
    std::optional<int> exited;
    // The admin socket as well as the port: something else may hold a port free_port() handed out.
    const bool up = eventually(
        [&] {
            if ((exited = wait_child(pid_, Ms(0)))) return true;
            // With automatic HTTPS and no site yet, caddy listens on no port at all.
            return std::filesystem::exists(admin_socket()) && (mode_ != Mode::PlainHttp || port_accepts(port_));
        },
        10s);
    if (exited) {
        pid_ = -1;
        return fail("caddy exited (" + wait_status_text(*exited) + ") before serving port " + std::to_string(port_));
    }
    if (!up) return fail("caddy did not answer on port " + std::to_string(port_) + " within 10 s");
    return true;
}

void CaddyServer::stop() {
    if (pid_ > 0) terminate_child(pid_);
    pid_ = -1;
}

std::string CaddyServer::address() const { return "127.0.0.1:" + std::to_string(port_); }
std::filesystem::path CaddyServer::main_config() const { return dir_ / "Caddyfile"; }
std::filesystem::path CaddyServer::sites_file() const { return dir_ / "sites.conf"; }
std::filesystem::path CaddyServer::admin_socket() const { return dir_ / "admin.sock"; }
std::filesystem::path CaddyServer::log_file() const { return dir_ / "caddy.log"; }

// `caddy reload` takes the admin address from the config it loads (verified with 2.6.2 and a
// unix socket), so no --address is needed.
std::vector<std::string> CaddyServer::reload_command() const {
    return {"caddy", "reload", "--config", main_config().string(), "--adapter", "caddyfile"};
}

std::vector<std::string> CaddyServer::env() const {
    const auto home = dir_ / "home";
    return {"HOME=" + home.string(), "XDG_CONFIG_HOME=" + (home / ".config").string(),
            "XDG_DATA_HOME=" + (home / ".local/share").string()};
}

}  // namespace sitesfs::it
