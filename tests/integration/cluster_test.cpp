// Two sitesfs hosts on one etcd (a real 3-member cluster of Debian's etcd-server on loopback),
// each with its own mount, state dir, data dir and Caddy: what a person sees on either, and what
// visitors of either get.
#include <csignal>
#include <thread>

#include "tests/integration/deploy_fixture.hpp"
#include "tests/support/etcd.hpp"

namespace sitesfs::it {
namespace {

class Cluster : public DeployTest {
protected:
    Cluster() { reload_mode_ = "command"; }

    void before_start() override {
        if (!stdfs::exists("/usr/bin/etcd") || !stdfs::exists("/usr/bin/etcdctl"))
            SITESFS_CANNOT_RUN() << "etcd-server/etcd-client not installed (scripts/install-deps)";
        stdfs::create_directories(tmp() / "etcd");
        etcd_ = std::make_unique<EtcdCluster>(tmp() / "etcd", EtcdCluster::Options{});
        std::string why;
        ASSERT_TRUE(etcd_->start(&why)) << why;
    }
    std::string extra_config() const override { return store_config("a"); }

    void TearDown() override {
        DeployTest::TearDown();  // both hosts first: they talk to etcd until they stop
        b_caddy_.reset();
        etcd_.reset();
    }

    std::string store_config(const std::string& host) const {
        std::string endpoints;
        for (const auto& e : etcd_->endpoints()) endpoints += "\"" + e + "\", ";
        return "[store]\nbackend = \"etcd\"\nendpoints = [" + endpoints + "]\nhost = \"" + host +
               "\"\ntimeout = 3\nlease_ttl = 2\n";
    }

    // Host b: its own Caddy, data dir, state dir and mount (TMP/b), the same etcd.
    void start_b() {
        stdfs::create_directories(tmp() / "caddy-b");
        b_caddy_ = std::make_unique<CaddyServer>(tmp() / "caddy-b");
        std::string why;
        ASSERT_TRUE(b_caddy_->start(&why)) << why;
        launch_b();
    }
    void launch_b() {
        std::string config = config_text();
        auto swap = [&](const std::string& from, const std::string& to) {
            for (size_t at = config.find(from); at != std::string::npos; at = config.find(from, at + to.size()))
                config.replace(at, from.size(), to);
        };
        swap((tmp() / "caddy").string() + "/", (tmp() / "caddy-b").string() + "/");
        swap("reload\", \"--config\", \"" + caddy_->main_config().string(), "reload\", \"--config\", \"" + b_caddy_->main_config().string());
        swap(":" + std::to_string(caddy_->port()), ":" + std::to_string(b_caddy_->port()));
        swap("port = " + std::to_string(caddy_->port()), "port = " + std::to_string(b_caddy_->port()));
        swap(data().string(), (tmp() / "data-b").string());
        swap((tmp() / "sitesfs.prom").string(), (tmp() / "sitesfs-b.prom").string());
        spit(tmp() / "b.toml", config + store_config("b"));
        b_ = start_instance("b", {"--config", (tmp() / "b.toml").string(), "--state-dir", (tmp() / "state-b").string(), "--allow-local-repos"});
        ASSERT_NE(b_, nullptr);
    }
    std::string on_b(const std::string& rel) const { return slurp(tmp() / "b" / rel); }
    std::string body_b(const std::string& host) const {
        const Run r = run({"curl", "-s", "--max-time", "5", "-H", "Host: " + host, "http://127.0.0.1:" + std::to_string(b_caddy_->port()) + "/"});
        return r.out;
    }

    std::unique_ptr<EtcdCluster> etcd_;
    std::unique_ptr<CaddyServer> b_caddy_;
    Daemon* b_ = nullptr;
};

TEST_F(Cluster, AWriteOnOneHostIsServedByBothAndStatusShowsBoth) {
    ASSERT_NO_FATAL_FAILURE(start_b());
    const std::string sha = repo_->commit({{"index.html", "hello from the cluster\n"}});
    // wait settles once every host the site is placed on has settled.
    EXPECT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log() << slurp(b_->log);
    EXPECT_EQ(body("blog.test"), "hello from the cluster\n");
    EXPECT_EQ(body_b("blog.test"), "hello from the cluster\n") << slurp(b_->log);
    for (const std::string& status : {read("blog/status"), on_b("blog/status")}) {
        EXPECT_NE(status.find("state: live\n"), std::string::npos) << status;
        EXPECT_NE(status.find("host: a live " + sha + "\n"), std::string::npos) << status;
        EXPECT_NE(status.find("host: b live " + sha + "\n"), std::string::npos) << status;
    }
    const std::string store = read(".store");
    EXPECT_NE(store.find("backend: etcd\n"), std::string::npos) << store;
    EXPECT_NE(store.find("member: a alive\n"), std::string::npos) << store;
    EXPECT_NE(store.find("member: b alive\n"), std::string::npos) << store;

    // Placed on a alone, b takes it down and the site is live without b.
    EXPECT_TRUE(shell("echo a > blog/hosts"));
    EXPECT_EQ(wait("blog"), "live " + sha + "\n");
    EXPECT_TRUE(eventually([&] { return body_b("blog.test") == "no site"; }, 20s)) << body_b("blog.test");
    EXPECT_EQ(read("blog/status").find("host: b"), std::string::npos) << read("blog/status");
}

TEST_F(Cluster, TwoHostsRaceForOneDomainAndOneWins) {
    ASSERT_NO_FATAL_FAILURE(start_b());
    EXPECT_TRUE(shell("mkdir one && mkdir " + (tmp() / "b" / "two").string()));
    for (int round = 0; round < 5; ++round) {
        const std::string domain = "race" + std::to_string(round) + ".test";
        const Run r = sh("(echo " + domain + " > one/domain; echo a=$?) & (echo " + domain + " > " +
                         (tmp() / "b" / "two").string() + "/domain; echo b=$?) & wait");
        const bool a_won = r.out.find("a=0") != std::string::npos;
        const bool b_won = r.out.find("b=0") != std::string::npos;
        EXPECT_NE(a_won, b_won) << describe(r);
        EXPECT_NE(r.err.find("File exists"), std::string::npos) << describe(r);
    }
}

TEST_F(Cluster, AKilledHostShowsGoneAndConvergesWhenRestarted) {
    ASSERT_NO_FATAL_FAILURE(start_b());
    const std::string sha = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log() << slurp(b_->log);
    terminate_child(b_->pid, 0s, SIGKILL);
    b_->pid = -1;  // reaped: the fixture must not signal the pid again
    EXPECT_TRUE(eventually([&] { return read("blog/status").find("host: b gone") != std::string::npos; }, 15s))
        << read("blog/status");
    EXPECT_NE(read("blog/status").find("state: gone"), std::string::npos) << read("blog/status");
    // a serves on; a change made while b is away reaches b when it comes back.
    const std::string sha2 = repo_->commit({{"index.html", "v2\n"}});
    EXPECT_TRUE(eventually([&] { return body("blog.test") == "v2\n"; }, 20s)) << daemon_log();
    run({"fusermount3", "-u", "-z", (tmp() / "b").string()});
    ASSERT_NO_FATAL_FAILURE(launch_b());
    EXPECT_TRUE(eventually([&] { return read("blog/status").find("host: b live " + sha2) != std::string::npos; }, 30s))
        << read("blog/status") << slurp(b_->log);
    EXPECT_EQ(body_b("blog.test"), "v2\n");
}

}  // namespace
}  // namespace sitesfs::it
