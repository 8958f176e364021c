// Two sitesfs hosts on one etcd (a real 3-member cluster of Debian's etcd-server on loopback),
// each with its own mount, state dir, data dir and Caddy: what a person sees on either, and what
// visitors of either get.
#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <cstdio>
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
        etcd_ = std::make_unique<EtcdCluster>(tmp() / "etcd", etcd_options_);
        std::string why;
        ASSERT_TRUE(etcd_->start(&why)) << why;
        if (etcd_options_.auth) {
            // The password through [keys]' file provider, as a deploy key: a 0600 file in the dir.
            stdfs::create_directories(keys_dir());
            stdfs::permissions(keys_dir(), stdfs::perms::owner_all);
            write_secret("etcd-password", etcd_->password());
        }
    }
    std::string extra_config() const override { return store_config("a"); }

    stdfs::path keys_dir() const { return tmp() / "keys"; }
    void write_secret(const std::string& name, const std::string& value) const {
        spit(keys_dir() / name, value);
        ::chmod((keys_dir() / name).c_str(), 0600);
    }

    void TearDown() override {
        DeployTest::TearDown();  // both hosts first: they talk to etcd until they stop
        b_caddy_.reset();
        etcd_.reset();
    }

    // With auth, also the [keys] table the password comes from (`password` names its file there).
    std::string store_config(const std::string& host, const std::string& password = "etcd-password") const {
        std::string endpoints;
        for (const auto& e : etcd_->endpoints()) endpoints += "\"" + e + "\", ";
        std::string out = "[store]\nbackend = \"etcd\"\nendpoints = [" + endpoints + "]\nhost = \"" + host +
                          "\"\ntimeout = 3\nlease_ttl = 2\n";
        if (etcd_options_.auth)
            out += "user = \"" + etcd_->user() + "\"\npassword_ref = \"file:" + password + "\"\n[keys]\ndir = \"" +
                   keys_dir().string() + "\"\n";
        return out;
    }
    // sitesfs run as a command (--import, --copy-store), not as a daemon.
    Run sitesfs_run(const std::vector<std::string>& args) const {
        std::vector<std::string> argv{sitesfs()};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv, {.timeout = 60s});
    }
    // Every line of `text` that starts with `head`.
    static std::vector<std::string> lines_with(const std::string& text, const std::string& head) {
        std::vector<std::string> out;
        for (const auto& l : split_lines(text))
            if (l.starts_with(head)) out.push_back(l);
        return out;
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

    EtcdCluster::Options etcd_options_;
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

// The values a person reads from a site's files (through the mount at `root`). An unset field
// reads "\n"; a mount hides one its mkdir made until it is written (the name is absent there),
// which is the same value.
std::map<std::string, std::string> site_values(const stdfs::path& root, const std::string& site) {
    std::map<std::string, std::string> out;
    for (const auto& f : kSiteFiles) {
        const std::string v = slurp(root / site / f);
        out[f] = v.empty() && stdfs::is_directory(root / site) ? "\n" : v;
    }
    return out;
}

// A host that ran on the file store moves to etcd (docs/cluster.md, "From one host to three").
// The poll waits an hour: only the request can bring the push to either host.
class ClusterRefresh : public Cluster {
protected:
    ClusterRefresh() { poll_interval_ = "3600"; }
};

TEST_F(ClusterRefresh, ARefreshOnOneHostDeploysThePushOnEveryHost) {
    ASSERT_NO_FATAL_FAILURE(start_b());
    const std::string first = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + first + "\n") << daemon_log() << slurp(b_->log);
    ASSERT_EQ(body_b("blog.test"), "v1\n") << slurp(b_->log);
    const std::string second = repo_->commit({{"index.html", "v2\n"}});
    const auto asked = std::chrono::steady_clock::now();
    ASSERT_TRUE(shell("echo refresh > blog/ctl"));
    ASSERT_TRUE(eventually([&] { return body("blog.test") == "v2\n" && body_b("blog.test") == "v2\n"; }, 20s, 20ms))
        << daemon_log() << slurp(b_->log);
    std::printf("refresh on a -> served by a and b: %.0f ms\n",
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - asked).count());
    EXPECT_TRUE(eventually([&] { return on_b("blog/status").find("host: b live " + second + "\n") != std::string::npos; }, 10s, 50ms))
        << on_b("blog/status");
    EXPECT_NE(slurp(b_->log).find("site blog: refresh requested"), std::string::npos) << "b heard a's request";
}

class ClusterMigration : public Cluster {
protected:
    std::string extra_config() const override { return {}; }  // the file store, until the copy
};

TEST_F(ClusterMigration, FileToEtcdCarriesEverythingWithoutRedeployingAndBackAgain) {
    const std::string sha = repo_->commit({{"index.html", "before the move\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log();
    EXPECT_TRUE(shell("printf 'blog.test\\nwww.blog.test\\n' > blog/domain && echo '/ before the move' > blog/check"));
    ASSERT_EQ(wait("blog"), "live " + sha + "\n") << daemon_log();
    const auto values = site_values(mnt(), "blog");
    const std::string generation = status_line("blog", "generation");
    const int deploys = deploy_log_lines("blog");
    ASSERT_GT(deploys, 0);
    ASSERT_TRUE(stop().has_value());

    // The copy runs with the [store] section in the config, while sitesfs is stopped.
    spit(config_file(), config_text() + store_config("a"));
    const std::vector<std::string> copy{"--config", config_file().string(), "--state-dir", state().string(),
                                        "--copy-store", "file-to-etcd"};
    const Run first = sitesfs_run(copy);
    EXPECT_EQ(first.code, 0) << describe(first);
    EXPECT_EQ(lines_with(first.out, "copied: "), std::vector<std::string>{"copied: blog"}) << first.out;
    const std::string held = etcd_->etcdctl({"get", "--print-value-only", "/sitesfs/sites/blog"});
    EXPECT_NE(held.find("generation = " + generation), std::string::npos) << held;
    EXPECT_NE(etcd_->etcdctl({"get", "--print-value-only", "/sitesfs/actual/blog/a"}).find(sha), std::string::npos);
    EXPECT_EQ(etcd_->etcdctl({"get", "--print-value-only", "/sitesfs/domains/www.blog.test"}), "blog\n");

    // On etcd: the same site, live with the same commit, and nothing deployed again.
    ASSERT_NO_FATAL_FAILURE(start({"--config", config_file().string()}));
    EXPECT_NE(read(".store").find("backend: etcd\n"), std::string::npos) << read(".store");
    EXPECT_EQ(site_values(mnt(), "blog"), values);
    EXPECT_EQ(status_line("blog", "generation"), generation);
    EXPECT_EQ(wait("blog"), "live " + sha + "\n") << daemon_log();
    EXPECT_NE(read("blog/status").find("host: a live " + sha + "\n"), std::string::npos) << read("blog/status");
    std::this_thread::sleep_for(2500ms);  // more than two reconcile polls
    EXPECT_EQ(deploy_log_lines("blog"), deploys) << slurp(deploy_log()) << daemon_log();
    EXPECT_EQ(body("blog.test"), "before the move\n");

    // A change made on etcd since: a second copy from the (older) state dir must not undo it.
    EXPECT_TRUE(shell("echo a > blog/hosts"));
    EXPECT_EQ(wait("blog"), "live " + sha + "\n");
    const auto on_etcd = site_values(mnt(), "blog");
    ASSERT_EQ(on_etcd.at("hosts"), "a\n");
    ASSERT_TRUE(stop().has_value());
    const std::string before = etcd_->etcdctl({"get", "--prefix", "/sitesfs/sites/", "-w", "json"});
    const Run again = sitesfs_run(copy);
    EXPECT_EQ(again.code, 1) << describe(again);
    EXPECT_TRUE(lines_with(again.out, "copied: ").empty()) << again.out;
    const auto refused = lines_with(again.out, "refused: ");
    ASSERT_EQ(refused.size(), 1u) << again.out;
    EXPECT_TRUE(refused[0].starts_with("refused: blog: ")) << refused[0];
    // Not one key rewritten (the json carries each key's mod_revision).
    const std::string after = etcd_->etcdctl({"get", "--prefix", "/sitesfs/sites/", "-w", "json"});
    EXPECT_EQ(after.substr(after.find("\"kvs\"")), before.substr(before.find("\"kvs\"")));

    // And back: into an empty state dir, the same values.
    const stdfs::path back = tmp() / "state-back";
    stdfs::create_directories(back);
    const Run home = sitesfs_run({"--config", config_file().string(), "--state-dir", back.string(), "--copy-store", "etcd-to-file"});
    EXPECT_EQ(home.code, 0) << describe(home);
    EXPECT_EQ(lines_with(home.out, "copied: "), std::vector<std::string>{"copied: blog"}) << home.out;
    // Read through a read-only mount of that state dir on the file store.
    spit(tmp() / "file.toml", "[filesystem]\nwait_timeout = 8\n");
    Daemon* file = start_instance("file", {"-o", "ro", "--config", (tmp() / "file.toml").string(), "--state-dir", back.string()});
    ASSERT_NE(file, nullptr);
    EXPECT_EQ(site_values(tmp() / "file", "blog"), on_etcd);
    const std::string status = slurp(tmp() / "file" / "blog" / "status");
    EXPECT_NE(status.find("generation: " + std::to_string(std::stoi(generation) + 1) + "\n"), std::string::npos) << status;
    EXPECT_NE(status.find("commit: " + sha + "\n"), std::string::npos) << status;
}

TEST_F(Cluster, ImportPutsTheSitesIntoEtcdForEveryHost) {
    ASSERT_NO_FATAL_FAILURE(start_b());
    const std::string sha = repo_->commit({{"index.html", "imported\n"}, {"public/index.html", "shop\n"}});
    const stdfs::path seed = tmp() / "sites.toml";
    spit(seed, "[global]\nroot = \"/var/lib/sites\"\n\n"
               "[sites.blog]\ndomain = \"blog.test\"\nrepo = \"" + repo_->url() + "\"\nbranch = \"main\"\n\n"
               "[sites.shop]\ndomain = \"shop.test\"\nrepo = \"" + repo_->url() + "\"\nbranch = \"main\"\npath = \"public\"\n");
    // Run on host a, beside its daemon: the command writes the sites and is no host itself.
    const Run r = sitesfs_run({"--config", config_file().string(), "--allow-local-repos", "--import", seed.string()});
    EXPECT_EQ(r.code, 0) << describe(r);
    EXPECT_EQ(lines_with(r.out, "taken: ").size(), 2u) << r.out;
    EXPECT_NE(etcd_->etcdctl({"get", "--print-value-only", "/sitesfs/domains/shop.test"}).find("shop"), std::string::npos);

    EXPECT_TRUE(eventually([&] { return sh_in(tmp() / "b", "ls").out == "blog\nshop\n"; }, 5s)) << sh_in(tmp() / "b", "ls").out;
    EXPECT_EQ(on_b("blog/domain"), "blog.test\n");
    EXPECT_EQ(on_b("blog/repo"), repo_->url() + "\n");
    EXPECT_EQ(on_b("shop/path"), "public\n");
    EXPECT_EQ(slurp(tmp() / "b" / "blog" / "wait"), "live " + sha + "\n") << slurp(b_->log);
    EXPECT_EQ(body_b("blog.test"), "imported\n");
    // The import did not take host a's place in the cluster: a is alive and serves on.
    const std::string store = read(".store");
    EXPECT_NE(store.find("member: a alive\n"), std::string::npos) << store;
    EXPECT_NE(read("blog/status").find("host: a live " + sha + "\n"), std::string::npos) << read("blog/status");
    std::this_thread::sleep_for(3s);  // longer than the lease's TTL
    EXPECT_NE(read(".store").find("member: a alive\n"), std::string::npos) << read(".store");
}

TEST_F(Cluster, AReadOnlyMountShowsTheClusterWithoutJoiningIt) {
    ASSERT_NO_FATAL_FAILURE(start_b());
    const std::string sha = repo_->commit({{"index.html", "watched\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log() << slurp(b_->log);
    spit(tmp() / "mon.toml", store_config("mon"));
    stdfs::create_directories(tmp() / "state-mon");
    Daemon* mon = start_instance("mon", {"-o", "ro", "--config", (tmp() / "mon.toml").string(), "--state-dir",
                                         (tmp() / "state-mon").string()});
    ASSERT_NE(mon, nullptr);
    const auto hosts = [](const std::string& status) { return lines_with(status, "host: "); };
    const std::vector<std::string> want{"host: a live " + sha, "host: b live " + sha};
    EXPECT_EQ(hosts(read("blog/status")), want);
    EXPECT_TRUE(eventually([&] { return hosts(slurp(tmp() / "mon" / "blog" / "status")) == want; }, 5s))
        << slurp(tmp() / "mon" / "blog" / "status");
    const std::string store = slurp(tmp() / "mon" / ".store");
    EXPECT_NE(store.find("member: a alive\n"), std::string::npos) << store;
    EXPECT_NE(store.find("member: b alive\n"), std::string::npos) << store;
    EXPECT_EQ(store.find("member: mon"), std::string::npos) << store;
    EXPECT_NE(store.find("host: mon (read-only"), std::string::npos) << store;
    EXPECT_EQ(read(".store").find("member: mon"), std::string::npos) << read(".store");
    EXPECT_EQ(hosts(read("blog/status")), want) << "the monitor must not be waited for";
    // It follows changes, and takes none.
    EXPECT_TRUE(shell("echo a > blog/hosts"));
    EXPECT_TRUE(eventually([&] { return slurp(tmp() / "mon" / "blog" / "hosts") == "a\n"; }, 5s));
    EXPECT_TRUE(check("write", sh("echo b > " + (tmp() / "mon" / "blog" / "hosts").string()), {.code = kNonZero, .err_has = "Read-only file system"}));
}

TEST_F(Cluster, QuorumLostWritesFailInTimeReadsAndVisitorsCarryOnAndNothingIsRedeployed) {
    const std::string sha = repo_->commit({{"index.html", "main\n"}});
    const std::string sha_x = repo_->commit({{"index.html", "x\n"}}, "x");
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log();
    const int deploys = deploy_log_lines("blog");
    // The leader and one more: the survivor is a follower, whose forwarded write dies with the
    // leader, so the write that times out is never made (a surviving leader would keep it in its
    // log and might commit it once quorum returns).
    const int leader = etcd_->leader();
    ASSERT_GE(leader, 0);
    const int other = (leader + 1) % 3;
    etcd_->kill_member(leader);
    etcd_->kill_member(other);

    auto start = std::chrono::steady_clock::now();
    const Run w = sh("echo x > blog/branch", 30s);
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_NE(w.code, 0) << describe(w);
    EXPECT_TRUE(w.err.find("Connection timed out") != std::string::npos || w.err.find("No route to host") != std::string::npos)
        << describe(w);
    EXPECT_LT(took, 3s + 4s);
    start = std::chrono::steady_clock::now();
    EXPECT_EQ(read("blog/domain"), "blog.test\n");
    EXPECT_EQ(read("blog/repo"), repo_->url() + "\n");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "a read waited on etcd";
    EXPECT_EQ(body("blog.test"), "main\n");
    EXPECT_TRUE(eventually([&] { return status_line("blog", "store").find("etcd unreachable") != std::string::npos; }, 10s))
        << read("blog/status");

    std::string why;
    ASSERT_TRUE(etcd_->restart_member(leader, &why)) << why;
    ASSERT_TRUE(etcd_->restart_member(other, &why)) << why;
    // The unreachable part goes; what is left says the timed-out write was read back, not made.
    EXPECT_TRUE(eventually([&] { return status_line("blog", "store").find("unreachable") == std::string::npos; }, 15s))
        << read("blog/status");
    // After "unreachable" comes "reading it back", then what the read-back found.
    if (w.err.find("timed out") != std::string::npos) {
        EXPECT_TRUE(eventually([&] { return status_line("blog", "store").find("it was not made") != std::string::npos; }, 15s))
            << read("blog/status");
    }
    EXPECT_EQ(read("blog/branch"), "\n");
    EXPECT_TRUE(eventually([&] { return sh("echo x > blog/branch").code == 0; }, 10s));
    EXPECT_EQ(read("blog/branch"), "x\n");
    // A lease keep-alive that a loaded machine delays past its deadline shows for a moment too.
    EXPECT_TRUE(eventually([&] { return status_line("blog", "store") == "<missing>"; }, 15s)) << read("blog/status");
    EXPECT_EQ(wait("blog"), "live " + sha_x + "\n") << daemon_log();
    EXPECT_EQ(body("blog.test"), "x\n");
    std::this_thread::sleep_for(2500ms);  // more than two reconcile polls
    EXPECT_EQ(deploy_log_lines("blog"), deploys + 1) << slurp(deploy_log());
}

class ClusterAuth : public Cluster {
protected:
    ClusterAuth() { etcd_options_ = {.members = 1, .auth = true}; }
};

TEST_F(ClusterAuth, ADaemonWithAWrongPasswordExitsSayingSo) {
    // SetUp started host a with the right password.
    EXPECT_NE(read(".store").find("member: a alive\n"), std::string::npos) << read(".store");
    EXPECT_TRUE(shell("mkdir blog && echo blog.test > blog/domain"));
    EXPECT_NE(etcd_->etcdctl({"get", "--print-value-only", "/sitesfs/domains/blog.test"}).find("blog"), std::string::npos);

    write_secret("etcd-wrong", "not-" + etcd_->password());
    spit(tmp() / "c.toml", config_text() + store_config("c", "etcd-wrong"));
    stdfs::create_directories(tmp() / "c");
    const Run r = sitesfs_run({"-f", "--config", (tmp() / "c.toml").string(), "--state-dir", (tmp() / "state-c").string(),
                               (tmp() / "c").string()});
    EXPECT_FALSE(r.timed_out);
    EXPECT_NE(r.code, 0) << describe(r);
    const std::string said = r.out + r.err;
    EXPECT_NE(said.find("'" + etcd_->user() + "'"), std::string::npos) << said;
    EXPECT_NE(said.find("authentication failed"), std::string::npos) << said;
    EXPECT_EQ(said.find(etcd_->password()), std::string::npos) << "the password must not be printed";
    EXPECT_FALSE(is_mounted(tmp() / "c"));
}

}  // namespace
}  // namespace sitesfs::it
