#include "tests/integration/deploy_fixture.hpp"

#include <strings.h>

namespace sitesfs::it {

void DeployTest::SetUp() {
    std::string why;
    if (!fuse_available(&why)) SITESFS_CANNOT_RUN() << "cannot open /dev/fuse: " << why;
    autostart_ = false;
    reconcile_ = true;
    ASSERT_NO_FATAL_FAILURE(MountTest::SetUp());
    stdfs::create_directories(tmp() / "caddy");
    caddy_ = std::make_unique<CaddyServer>(tmp() / "caddy", caddy_mode_);
    if (caddy_mode_ != CaddyServer::Mode::PlainHttp) health_port_ = free_port();
    ASSERT_TRUE(caddy_->start(&why)) << why;
    repo_ = std::make_unique<TestRepo>(tmp() / "git");
    daemon_env_ = caddy_->env();
    if (reload_mode_ != "command") {
        stdfs::create_directories(tmp() / "bus");
        bus_ = std::make_unique<PrivateBus>(tmp() / "bus");
        ASSERT_TRUE(bus_->start(&why)) << why;
        ASSERT_NO_FATAL_FAILURE(start_systemd(reload_mode_));
        daemon_env_.push_back("DBUS_SYSTEM_BUS_ADDRESS=" + bus_->address());
    }
    ASSERT_NO_FATAL_FAILURE(before_start());
    if (IsSkipped()) return;  // before_start found the machine lacking, and said what
    spit(config_file(), config_text() + extra_config());
    ASSERT_NO_FATAL_FAILURE(start({"--config", config_file().string()}));
}

void DeployTest::TearDown() {
    MountTest::TearDown();  // sitesfs first: nothing may reload while the others go
    systemd_.reset();
    bus_.reset();
    caddy_.reset();
}

void DeployTest::start_systemd(const std::string& mode) {
    systemd_.reset();
    systemd_ = std::make_unique<FakeSystemd>(*bus_, tmp() / "bus", mode, caddy_->reload_command(), caddy_->env());
    std::string why;
    ASSERT_TRUE(systemd_->start(&why)) << why;
}

std::string DeployTest::config_text() const {
    std::string reload = "mode = \"systemd\"\ntimeout = 20\n";
    if (reload_mode_ == "command") {
        reload = "mode = \"command\"\ncommand = [";
        for (const auto& a : caddy_->reload_command()) reload += "\"" + a + "\", ";
        reload += "]\n";
    }
    const std::string port = std::to_string(caddy_->port());
    std::string proxy = "scheme = \"http\"\nport = " + port + "\n";
    std::string health = "address = \"127.0.0.1:" + port + "\"\n";
    if (caddy_mode_ != CaddyServer::Mode::PlainHttp) {
        // Caddy's https_port holds the sites without a port of their own.
        proxy = "scheme = \"\"\n";
        health = "address = \"127.0.0.1:" + std::to_string(health_port_) + "\"\ntls_address = \"127.0.0.1:" +
                 std::to_string(caddy_->https_port()) + "\"\n";
    }
    return "data_dir = \"" + data().string() + "\"\n"
           "[proxy]\nfile = \"" + caddy_->sites_file().string() + "\"\nmain_config = \"" +
           caddy_->main_config().string() + "\"\n" + proxy +
           "[reload]\n" + reload +
           "[health]\n" + health + "timeout = 5\n"
           "[reconcile]\npoll_interval = " + poll_interval_ + "\n" + reconcile_config_ +
           "[metrics]\ntextfile = \"" + (tmp() / "sitesfs.prom").string() + "\"\n"
           "[filesystem]\nwait_timeout = 8\n";
}

Run DeployTest::fetch(const std::string& host, const std::string& path) const {
    if (caddy_mode_ != CaddyServer::Mode::PlainHttp) {
        const std::string at = host + ":" + std::to_string(caddy_->https_port());
        // -k: the local CA is trusted nowhere (skip_install_trust); HTTP/1.1 for the same header
        // layout as the plain mode.
        return run({"curl", "-s", "-i", "-k", "--http1.1", "--max-time", "5", "--resolve", at + ":127.0.0.1",
                    "https://" + at + path});
    }
    return run({"curl", "-s", "-i", "--max-time", "5", "-H", "Host: " + host,
                "http://127.0.0.1:" + std::to_string(caddy_->port()) + path});
}

std::string DeployTest::body(const std::string& host, const std::string& path) const {
    const Run r = fetch(host, path);
    const size_t split = r.out.find("\r\n\r\n");
    return split == std::string::npos ? "<no answer: " + describe(r) + ">" : r.out.substr(split + 4);
}

std::string DeployTest::header(const std::string& host, const std::string& name) const {
    for (const auto& line : split_lines(fetch(host).out)) {
        if (line.size() > name.size() + 1 && strncasecmp(line.c_str(), (name + ":").c_str(), name.size() + 1) == 0) {
            std::string v = line.substr(name.size() + 1);
            while (!v.empty() && (v.front() == ' ')) v.erase(0, 1);
            while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
            return v;
        }
    }
    return "<no " + name + ">";
}

std::string DeployTest::create_site(const std::string& site, const std::string& domain) const {
    EXPECT_TRUE(shell("mkdir " + site + " && echo " + repo_->url() + " > " + site + "/repo && echo " + domain +
                      " > " + site + "/domain"));
    return wait(site);
}

int DeployTest::deploy_log_lines(const std::string& site) const {
    int n = 0;
    for (const auto& line : split_lines(slurp(deploy_log())))
        if (line.find("\"site\":\"" + site + "\"") != std::string::npos) ++n;
    return n;
}

}  // namespace sitesfs::it
