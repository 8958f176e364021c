// The fixture for tests that deploy end to end: a real Caddy, real git repositories, and reloads
// through a systemd stand-in on a private D-Bus (or a reload command), with sitesfs mounted over
// them. Everything it starts is stopped in TearDown, also after a failure.
#pragma once

#include <memory>
#include <string>

#include "tests/integration/mount_fixture.hpp"
#include "tests/support/caddy.hpp"
#include "tests/support/dbus.hpp"
#include "tests/support/git.hpp"

namespace sitesfs::it {

class DeployTest : public MountTest {
protected:
    // Reload through systemd over D-Bus (fake-systemd in `mode`), or "command" for caddy reload.
    std::string reload_mode_ = "normal";
    // Lines added to the config's [reconcile] table (a TOML table cannot be opened twice, so
    // extra_config() cannot carry them), e.g. "max_files = 5000\n".
    std::string reconcile_config_;
    // [reconcile] poll_interval in seconds: 1 makes a push live within a second or two.
    std::string poll_interval_ = "1";
    // The HTTPS modes: Caddy's automatic HTTPS, sitesfs with [proxy] scheme = "" and the health
    // listener on a port of its own (health_port_).
    CaddyServer::Mode caddy_mode_ = CaddyServer::Mode::PlainHttp;
    int health_port_ = 0;

    void SetUp() override;
    void TearDown() override;

    // For fixtures that need more servers or settings.
    virtual void before_start() {}
    virtual std::string extra_config() const { return {}; }

    void start_systemd(const std::string& mode);

    stdfs::path config_file() const { return tmp() / "sitesfs.toml"; }
    stdfs::path data() const { return tmp() / "data"; }
    stdfs::path deploy_log() const { return state() / "deploy.log"; }
    // The config file the fixture writes (before extra_config()).
    std::string config_text() const;

    // curl through Caddy with a Host header: the answer a visitor of http://HOST gets (of
    // https://HOST, over TLS with SNI, in the HTTPS modes).
    Run fetch(const std::string& host, const std::string& path = "/") const;
    std::string body(const std::string& host, const std::string& path = "/") const;
    std::string header(const std::string& host, const std::string& name) const;

    // Blocks until the site settles for what was written before (the wait file).
    std::string wait(const std::string& site) const { return read(site + "/wait"); }

    // mkdir + repo + domain with echo, then waits; returns what wait printed.
    std::string create_site(const std::string& site, const std::string& domain) const;

    int deploy_log_lines(const std::string& site) const;

    std::unique_ptr<CaddyServer> caddy_;
    std::unique_ptr<TestRepo> repo_;
    std::unique_ptr<PrivateBus> bus_;
    std::unique_ptr<FakeSystemd> systemd_;
};

}  // namespace sitesfs::it
