// A real Caddy (Debian's package) for one test: a loopback port, the admin endpoint on a unix
// socket in the test's temp dir, HOME and XDG dirs in that temp dir. Stopped (and its process group
// killed) by the destructor, also when the test fails.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace sitesfs::it {

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();
// Whether something accepts TCP connections on 127.0.0.1:port.
bool port_accepts(int port);
// The last `count` lines of `text` (a log), for failure messages.
std::string tail_lines(const std::string& text, size_t count);

class CaddyServer {
public:
    enum class Mode {
        // `auto_https off`; unknown hosts on port() get 404 "no site".
        PlainHttp,
        // Caddy's default automatic HTTPS, with certificates from its own local CA at once
        // (`local_certs`, `skip_install_trust`: nothing outside `dir` is touched): HTTPS on
        // https_port(), port() redirects plain HTTP to HTTPS.
        AutomaticHttps,
        // Automatic HTTPS from an ACME CA that never answers (a closed loopback port): what a new
        // domain looks like while Caddy has not obtained its certificate yet.
        PendingCertificates,
    };
    // `dir` is a directory the test owns (it must exist); everything caddy needs is made in it:
    // Caddyfile (the main config), sites.conf (the generated file, empty at first), admin.sock,
    // home/, storage/, caddy.log. The main config sets `admin unix//DIR/admin.sock` and imports
    // sites.conf.
    explicit CaddyServer(const std::filesystem::path& dir, Mode mode = Mode::PlainHttp);
    ~CaddyServer();
    CaddyServer(const CaddyServer&) = delete;
    CaddyServer& operator=(const CaddyServer&) = delete;

    // `caddy run` in the background; returns once the port answers, or false with `why` filled.
    bool start(std::string* why);
    void stop();

    int port() const { return port_; }
    int https_port() const { return https_port_; }  // the HTTPS modes only
    std::string address() const;  // "127.0.0.1:PORT"
    std::filesystem::path main_config() const;
    std::filesystem::path sites_file() const;
    std::filesystem::path admin_socket() const;
    std::filesystem::path log_file() const;
    // argv that makes this caddy load main_config() again: caddy reload --config ... --adapter caddyfile
    std::vector<std::string> reload_command() const;
    // HOME=..., XDG_CONFIG_HOME=..., XDG_DATA_HOME=... for any process that runs caddy for this test.
    std::vector<std::string> env() const;

private:
    std::filesystem::path dir_;
    Mode mode_;
    int port_ = 0;
    int https_port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace sitesfs::it
