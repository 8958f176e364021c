// End to end: a write through the mounted filesystem ends with the site served by a real Caddy,
// reloaded through a systemd stand-in on a private D-Bus (or a reload command), from real git
// repositories. Every failure case checks that the previous content is still what Caddy serves.
#include <libssh2.h>
#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <thread>

#include "common/text.hpp"
#include "store/file_store.hpp"
#include "tests/integration/deploy_fixture.hpp"
#include "tests/support/sshd.hpp"

namespace sitesfs::it {
namespace {

using Deploy = DeployTest;

TEST_F(Deploy, EchoesMakeALiveSiteThroughCaddy) {
    const std::string sha = repo_->commit({{"index.html", "hello from v1\n"}});
    EXPECT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log();
    EXPECT_EQ(body("blog.test"), "hello from v1\n");
    EXPECT_EQ(header("blog.test", "X-Deployed-Commit"), sha);
    EXPECT_EQ(header("blog.test", "Server"), "<no Server>");
    EXPECT_EQ(status_line("blog", "state"), "live");
    EXPECT_EQ(read("blog/commit"), sha + "\n");
    EXPECT_EQ(systemd_->calls(), std::vector<std::string>{"ReloadUnit caddy.service replace -> done"});
    EXPECT_TRUE(shell("grep -c deployed blog/log", {.out = "1\n"}));
    const std::string json = slurp(deploy_log());
    EXPECT_NE(json.find("\"site\":\"blog\",\"action\":\"deployed\",\"commit\":\"" + sha + "\""), std::string::npos) << json;
    // The release is a plain tree behind an atomically switched link.
    EXPECT_EQ(stdfs::read_symlink(data() / "blog" / "current"), stdfs::path("releases") / sha);
    EXPECT_EQ(slurp(data() / "blog" / "current" / "index.html"), "hello from v1\n");
    EXPECT_NE(slurp(caddy_->sites_file()).find("http://blog.test:" + std::to_string(caddy_->port())), std::string::npos);
}

TEST_F(Deploy, MetricsCountSitesRunsAndReloads) {
    // Written for node_exporter's textfile collector as soon as the mount answers.
    EXPECT_TRUE(eventually([&] { return slurp(tmp() / "sitesfs.prom").find("sitesfs_sites{state=\"live\"} 0") != std::string::npos; }, 10s));
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test").substr(0, 4), "live");
    ASSERT_NO_FATAL_FAILURE(start_systemd("fail"));
    repo_->commit({{"index.html", "v2\n"}});
    ASSERT_TRUE(eventually([&] { return status_line("blog", "state") == "failed"; }, 30s, 100ms)) << daemon_log();
    const std::string m = read(".metrics");
    for (const std::string want : {"sitesfs_sites{state=\"failed\"} 1", "sitesfs_sites{state=\"live\"} 0",
                                    "sitesfs_reconciles_total{outcome=\"deployed\"} 1",
                                    "sitesfs_reconciles_total{outcome=\"failed\"} 1",
                                    "sitesfs_deploy_failures_total{step=\"reload\"} 1",
                                    "sitesfs_last_reload_success 0", "# TYPE sitesfs_reconcile_duration_seconds summary"})
        EXPECT_NE(m.find(want + "\n"), std::string::npos) << want << " not in:\n" << m;
    EXPECT_TRUE(shell("ls -a | grep -c '^.metrics$'", {.code = 1, .out = "0\n"})) << "not listed, like wait";
}

TEST_F(Deploy, PollTicksAreCountedAndTimedInMetrics) {
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test").substr(0, 4), "live");
    const auto metric = [&](const std::string& name) {
        const std::string m = read(".metrics");
        const size_t at = m.find("\n" + name + " ");
        return at == std::string::npos ? -1.0 : std::stod(m.substr(at + name.size() + 2));
    };
    const double ticks = metric("sitesfs_poll_ticks_total");
    ASSERT_GE(ticks, 0) << read(".metrics");
    // poll_interval is 1 s: two more ticks, each of which asked the remote for the branch head.
    EXPECT_TRUE(eventually([&] { return metric("sitesfs_poll_ticks_total") >= ticks + 2; }, 20s, 100ms)) << read(".metrics");
    EXPECT_GT(metric("sitesfs_poll_tick_seconds"), 0.0) << read(".metrics");
    EXPECT_EQ(status_line("blog", "state"), "live");
}

TEST_F(Deploy, APushIsDeployedByThePoll) {
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test").substr(0, 4), "live");
    const std::string v2 = repo_->commit({{"index.html", "v2\n"}});
    // The files change at the switch, the header at the reload just after it.
    EXPECT_TRUE(eventually([&] { return body("blog.test") == "v2\n" && header("blog.test", "X-Deployed-Commit") == v2; },
                           30s, 100ms))
        << body("blog.test") << daemon_log();
    EXPECT_TRUE(eventually([&] { return read("blog/commit") == v2 + "\n"; }, 10s));
}

TEST_F(Deploy, KeepsTheNewestThreeReleases) {
    std::vector<std::string> shas{repo_->commit({{"index.html", "v0\n"}})};
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + shas[0] + "\n");
    for (int i = 1; i < 4; ++i) {
        shas.push_back(repo_->commit({{"index.html", "v" + std::to_string(i) + "\n"}}));
        ASSERT_TRUE(eventually([&] { return read("blog/commit") == shas.back() + "\n"; }, 30s, 50ms)) << daemon_log();
    }
    // The run reports the commit, then prunes: `commit` can show the new one a moment before.
    const std::set<std::string> want{shas[1], shas[2], shas[3]};
    std::set<std::string> kept;
    EXPECT_TRUE(eventually(
        [&] {
            kept.clear();
            for (const auto& e : stdfs::directory_iterator(data() / "blog" / "releases")) kept.insert(e.path().filename());
            return kept == want;
        },
        10s, 50ms));
    EXPECT_EQ(kept, want);
    EXPECT_EQ(body("blog.test"), "v3\n");
}

TEST_F(Deploy, EmptyingTheDomainTakesTheSiteOffline) {
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test").substr(0, 4), "live");
    ASSERT_TRUE(shell(": > blog/domain"));
    EXPECT_TRUE(eventually([&] { return body("blog.test") == "no site"; }, 30s, 50ms)) << daemon_log();
    EXPECT_TRUE(eventually([&] { return read("blog/commit") == "\n"; }, 10s));
    EXPECT_EQ(status_line("blog", "state"), "incomplete");
    EXPECT_TRUE(stdfs::exists(data() / "blog" / "current")) << "the data stays until rmdir";
}

// A site placed on other hosts is, for this one, a removed site; placed here again, it deploys.
TEST_F(Deploy, HostsPlacesTheSiteOnThisHostOrTakesItAway) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_TRUE(shell("mkdir blog && echo other-host > blog/hosts && echo " + repo_->url() +
                      " > blog/repo && echo blog.test > blog/domain"));
    // A site placed everywhere goes live after blog's writes were taken: by then blog was looked at.
    ASSERT_EQ(create_site("shop", "shop.test").substr(0, 4), "live");
    EXPECT_EQ(body("blog.test"), "no site");
    EXPECT_EQ(slurp(caddy_->sites_file()).find("blog.test"), std::string::npos);
    EXPECT_FALSE(stdfs::exists(data() / "blog"));
    EXPECT_EQ(status_line("blog", "state"), "pending");
    EXPECT_EQ(status_line("blog", "commit"), "");

    ASSERT_TRUE(shell("echo " + local_host_name() + " >> blog/hosts"));
    EXPECT_EQ(read("blog/hosts"), "other-host\n" + ascii_lower(local_host_name()) + "\n");
    EXPECT_EQ(wait("blog"), "live " + v1 + "\n");
    EXPECT_EQ(body("blog.test"), "v1\n");

    ASSERT_TRUE(shell("echo other-host > blog/hosts"));
    EXPECT_TRUE(eventually([&] { return !stdfs::exists(data() / "blog"); }, 30s, 50ms)) << daemon_log();
    EXPECT_EQ(body("blog.test"), "no site");
    EXPECT_EQ(slurp(caddy_->sites_file()).find("blog.test"), std::string::npos);
    // The data dir goes before the report that clears `commit`.
    EXPECT_TRUE(eventually([&] { return read("blog/commit") == "\n"; }, 10s)) << daemon_log();
    EXPECT_EQ(status_line("blog", "state"), "pending") << "not live: served nowhere here";
    EXPECT_EQ(body("shop.test"), "v1\n");

    // Nothing is left here, so a restart has nothing to take down or deploy.
    const int runs = deploy_log_lines("blog");
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_EQ(wait("shop").substr(0, 4), "live");
    EXPECT_EQ(deploy_log_lines("blog"), runs) << slurp(deploy_log());
    EXPECT_FALSE(stdfs::exists(data() / "blog"));
}

TEST_F(Deploy, WritingAnOlderCommitRollsBackAndEmptyFollowsTheBranchAgain) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n");
    const std::string v2 = repo_->commit({{"index.html", "v2\n"}});
    ASSERT_TRUE(eventually([&] { return body("blog.test") == "v2\n"; }, 30s, 100ms)) << daemon_log();

    ASSERT_TRUE(shell("echo " + v1.substr(0, 7) + " > blog/commit"));
    EXPECT_EQ(wait("blog"), "live " + v1 + "\n");
    EXPECT_EQ(body("blog.test"), "v1\n");
    EXPECT_EQ(status_line("blog", "desired"), "commit " + v1.substr(0, 7));
    // Pinned: a push is not followed.
    repo_->commit({{"index.html", "v3\n"}});
    ASSERT_TRUE(shell("echo > blog/commit"));
    EXPECT_EQ(wait("blog").substr(0, 4), "live");
    EXPECT_EQ(body("blog.test"), "v3\n");
    EXPECT_NE(v2, v1);
}

TEST_F(Deploy, APinTheRemoteDoesNotHaveSaysWhatWasFetchedAndAsked) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n");
    const std::string absent(40, 'e');
    ASSERT_TRUE(shell("echo main > blog/branch && echo " + absent + " > blog/commit"));
    const std::string outcome = wait("blog");
    EXPECT_EQ(outcome.substr(0, 6), "failed") << outcome;
    EXPECT_EQ(status_line("blog", "error"), "fetch: commit " + absent + " is not in " + repo_->url() +
                                                ": fetched branch 'main' (at " + v1.substr(0, 12) +
                                                ") and asked the server for the commit by id; it has no such commit");
    EXPECT_EQ(body("blog.test"), "v1\n");
}

TEST_F(Deploy, AConfigCaddyRejectsFailsTheDeployAndTheOldSiteKeepsServing) {
    // The main config already serves taken.test; Caddy refuses a second block for it.
    std::string main = slurp(caddy_->main_config());
    main += "\nhttp://taken.test:" + std::to_string(caddy_->port()) + " {\n\trespond \"static\"\n}\n";
    spit(caddy_->main_config(), main);
    ASSERT_EQ(run(caddy_->reload_command(), {.env = caddy_->env()}).code, 0);

    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n");
    const std::string before = slurp(caddy_->sites_file());
    ASSERT_TRUE(shell("echo taken.test > blog/domain"));
    const std::string outcome = wait("blog");
    EXPECT_EQ(outcome.substr(0, 6), "failed") << outcome;
    const std::string error = status_line("blog", "error");
    EXPECT_EQ(error.rfind("proxy: caddy validate: ", 0), 0u) << error;
    EXPECT_NE(error.find("taken.test"), std::string::npos) << error;
    EXPECT_EQ(slurp(caddy_->sites_file()), before);
    EXPECT_EQ(body("blog.test"), "v1\n");
    EXPECT_EQ(body("taken.test"), "static");
    EXPECT_EQ(read("blog/commit"), v1 + "\n");
}

TEST_F(Deploy, AFailedReloadPutsTheOldConfigBackAndSaysWhy) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n");
    const std::string before = slurp(caddy_->sites_file());
    ASSERT_NO_FATAL_FAILURE(start_systemd("fail"));
    const std::string v2 = repo_->commit({{"index.html", "v2\n"}});
    ASSERT_TRUE(eventually([&] { return status_line("blog", "state") == "failed"; }, 30s, 100ms)) << daemon_log();
    const std::string error = status_line("blog", "error");
    EXPECT_EQ(error.rfind("reload: systemd reload of caddy.service: job failed", 0), 0u) << error;
    // fake-systemd's "fail" mode fails every job, the one that reloads the previous file too.
    EXPECT_TRUE(error.ends_with("; the previous config file is back and still in force (a refused reload leaves the "
                                "running config as it was)")) << error;
    EXPECT_EQ(body("blog.test"), "v1\n");
    EXPECT_EQ(header("blog.test", "X-Deployed-Commit"), v1);
    EXPECT_EQ(slurp(caddy_->sites_file()), before);
    EXPECT_EQ(stdfs::read_symlink(data() / "blog" / "current"), stdfs::path("releases") / v1);
    EXPECT_FALSE(stdfs::exists(data() / "blog" / "releases" / v2)) << "a release that never served is dropped";
    EXPECT_EQ(read("blog/commit"), v1 + "\n");
}

TEST_F(Deploy, ADeniedReloadSaysAccessDenied) {
    ASSERT_NO_FATAL_FAILURE(start_systemd("deny"));
    repo_->commit({{"index.html", "v1\n"}});
    const std::string outcome = create_site("blog", "blog.test");
    EXPECT_EQ(outcome.substr(0, 6), "failed") << outcome;
    EXPECT_NE(status_line("blog", "error").find("org.freedesktop.DBus.Error.AccessDenied"), std::string::npos);
    EXPECT_EQ(body("blog.test"), "no site");
    EXPECT_EQ(slurp(caddy_->sites_file()).find("blog.test"), std::string::npos);
}

TEST_F(Deploy, AFailedHealthCheckRollsBack) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n");
    // Without index.html, GET / answers 404.
    repo_->commit({{"index.html", ""}, {"other.html", "x\n"}});
    ASSERT_TRUE(eventually([&] { return status_line("blog", "state") == "failed"; }, 30s, 100ms)) << daemon_log();
    const std::string error = status_line("blog", "error");
    EXPECT_EQ(error.rfind("health: GET http://blog.test/ via 127.0.0.1:", 0), 0u) << error;
    EXPECT_NE(error.find("answered 404"), std::string::npos) << error;
    EXPECT_EQ(body("blog.test"), "v1\n");
    EXPECT_EQ(header("blog.test", "X-Deployed-Commit"), v1);
    EXPECT_EQ(stdfs::read_symlink(data() / "blog" / "current"), stdfs::path("releases") / v1);

    // The poll (every second here) does not redeploy the commit that failed: absence over a few
    // ticks is the thing to show, so this one waits on the clock.
    const int runs = deploy_log_lines("blog");
    std::this_thread::sleep_for(3s);
    EXPECT_EQ(deploy_log_lines("blog"), runs) << slurp(deploy_log());
    // A fixed commit on the branch is picked up again.
    repo_->commit({{"index.html", "v3\n"}});
    EXPECT_TRUE(eventually([&] { return body("blog.test") == "v3\n"; }, 30s, 100ms)) << daemon_log();
    EXPECT_TRUE(eventually([&] { return status_line("blog", "state") == "live"; }, 10s));
    EXPECT_EQ(status_line("blog", "error"), "");
}

TEST_F(Deploy, RmdirTakesTheDomainOutOfCaddyThenTheData) {
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test").substr(0, 4), "live");
    ASSERT_TRUE(stdfs::exists(data() / "blog" / ".sitesfs-site"));
    ASSERT_TRUE(shell("rmdir blog"));
    EXPECT_TRUE(eventually([&] { return !stdfs::exists(data() / "blog"); }, 30s, 50ms)) << daemon_log();
    EXPECT_EQ(body("blog.test"), "no site");
    EXPECT_EQ(slurp(caddy_->sites_file()).find("blog.test"), std::string::npos);
    // Logged once the data is gone (the dir leaves its name at once, renamed to be deleted).
    EXPECT_TRUE(eventually([&] { return slurp(deploy_log()).find("\"site\":\"blog\",\"action\":\"removed\"") != std::string::npos; },
                           10s))
        << slurp(deploy_log());
}

TEST_F(Deploy, ABurstOfWritesCoalescesIntoAFewReconciles) {
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test").substr(0, 4), "live");
    const int before = deploy_log_lines("blog");
    ASSERT_TRUE(shell("for i in $(seq 50); do echo \"blog$((i % 2)).test\" > blog/domain || exit 1; done"));
    EXPECT_EQ(wait("blog").substr(0, 4), "live");
    EXPECT_EQ(read("blog/domain"), "blog0.test\n");
    EXPECT_EQ(body("blog0.test"), "v1\n");
    const int runs = deploy_log_lines("blog") - before;
    RecordProperty("reconciles_for_50_writes", runs);
    EXPECT_GE(runs, 1);
    EXPECT_LE(runs, 5) << slurp(deploy_log());
}

TEST_F(Deploy, ARestartReconvergesWithoutRedeployingAndReportsStrayDataDirs) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n");
    stdfs::create_directories(data() / "stray");
    const int runs = deploy_log_lines("blog");
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_EQ(wait("blog"), "live " + v1 + "\n");
    EXPECT_EQ(body("blog.test"), "v1\n");
    EXPECT_EQ(deploy_log_lines("blog"), runs) << "a converged site is not deployed again at startup";
    EXPECT_TRUE(eventually([&] { return daemon_log().find("stray belongs to no site") != std::string::npos; }, 5s))
        << daemon_log();
    EXPECT_TRUE(stdfs::exists(data() / "stray"));
}

TEST_F(Deploy, AMissingBranchFailsWithItsName) {
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_TRUE(shell("mkdir blog && echo nope > blog/branch && echo " + repo_->url() +
                      " > blog/repo && echo blog.test > blog/domain"));
    const std::string outcome = wait("blog");
    EXPECT_EQ(outcome.substr(0, 6), "failed") << outcome << daemon_log() << slurp(state() / "sites" / "blog.toml");
    EXPECT_NE(status_line("blog", "error").find("'nope'"), std::string::npos) << status_line("blog", "error");
}

// The JobRemoved signal may come before ReloadUnit's reply; it must not be missed.
class DeployEarlySignal : public Deploy {
protected:
    void SetUp() override {
        reload_mode_ = "early";
        Deploy::SetUp();
    }
};

TEST_F(DeployEarlySignal, ReloadsWhenJobRemovedComesFirst) {
    const std::string sha = repo_->commit({{"index.html", "early\n"}});
    EXPECT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log();
    EXPECT_EQ(body("blog.test"), "early\n");
}

class DeployByCommand : public Deploy {
protected:
    void SetUp() override {
        reload_mode_ = "command";
        Deploy::SetUp();
    }
};

TEST_F(DeployByCommand, ReloadsWithTheConfiguredArgv) {
    const std::string sha = repo_->commit({{"index.html", "by command\n"}});
    EXPECT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log();
    EXPECT_EQ(body("blog.test"), "by command\n");
}

// ---------------------------------------------------------------------------------------------
// Private repositories over a real sshd: deploy keys from the operator's secret store, held only in
// memory; host keys pinned by sitesfs.

class PrivateRepo : public Deploy {
protected:
    bool strict_ = false;
    bool pin_ = false;

    void SetUp() override {
        reload_mode_ = "command";  // the reload path is covered above; here the git side matters
        Deploy::SetUp();
    }

    void before_start() override {
        stdfs::create_directories(tmp() / "ssh");
        sshd_ = std::make_unique<SshServer>(tmp() / "ssh");
        sshd_->serve_repo(repo_->bare());
        std::string why;
        ASSERT_TRUE(sshd_->start(&why)) << why;
        key_ = sshd_->add_client_key("blog");
        // The operator's secret stores: a keys dir (like /run/secrets) and a command (like `dota get`).
        stdfs::create_directories(tmp() / "keys");
        stdfs::create_directories(tmp() / "vault");
        spit(tmp() / "keys" / "blog", key_);
        spit(tmp() / "vault" / "blog", key_);
        ::chmod((tmp() / "keys" / "blog").c_str(), 0600);
        ::chmod((tmp() / "vault" / "blog").c_str(), 0600);
        spit(store_command(), "#!/bin/sh\necho \"secret-store: reading $1\" >&2\nexec cat \"" +
                                  (tmp() / "vault").string() + "/$1\"\n");
        ::chmod(store_command().c_str(), 0755);
    }

    std::string extra_config() const override {
        std::string ssh = "[ssh]\nhost_key_policy = \"" + std::string(strict_ ? "strict" : "accept-new") + "\"\n";
        if (pin_) ssh += "[ssh.pins]\n\"127.0.0.1:" + std::to_string(sshd_->port()) + "\" = \"" + sshd_->host_key_fingerprint() + "\"\n";
        return "[keys]\ndir = \"" + (tmp() / "keys").string() + "\"\ncommand = [\"" + store_command().string() + "\"]\n" + ssh;
    }

    stdfs::path store_command() const { return tmp() / "secret-store"; }

    std::string create_private_site(const std::string& key_ref) const {
        EXPECT_TRUE(shell("mkdir blog && echo " + key_ref + " > blog/deploy_key_ref && echo " + sshd_->url() +
                          " > blog/repo && echo blog.test > blog/domain"));
        return wait("blog");
    }

    std::unique_ptr<SshServer> sshd_;
    std::string key_;
};

TEST_F(PrivateRepo, AFileKeyDeploysAndTheHostKeyIsPinnedOnFirstUse) {
    const std::string sha = repo_->commit({{"index.html", "private\n"}});
    EXPECT_EQ(create_private_site("file:blog"), "live " + sha + "\n") << daemon_log();
    EXPECT_EQ(body("blog.test"), "private\n");
    EXPECT_EQ(status_line("blog", "key"), "file:blog");
    const std::string pinned = slurp(state() / "known_hosts");
    EXPECT_NE(pinned.find("127.0.0.1:" + std::to_string(sshd_->port()) + " " + sshd_->host_key_fingerprint()),
              std::string::npos) << pinned;
}

TEST_F(PrivateRepo, ACommandKeyDeploys) {
    const std::string sha = repo_->commit({{"index.html", "from the vault\n"}});
    EXPECT_EQ(create_private_site("cmd:blog"), "live " + sha + "\n") << daemon_log();
    EXPECT_EQ(body("blog.test"), "from the vault\n");
    EXPECT_NE(daemon_log().find("secret-store: reading blog"), std::string::npos) << "its stderr is logged";
}

TEST_F(PrivateRepo, AKeyTheServerDoesNotKnowFailsClearly) {
    repo_->commit({{"index.html", "x\n"}});
    ASSERT_EQ(run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (tmp() / "keys" / "stranger").string()}).code, 0);
    const std::string outcome = create_private_site("file:stranger");
    EXPECT_EQ(outcome.substr(0, 6), "failed") << outcome;
    const std::string error = status_line("blog", "error");
    EXPECT_NE(error.find("refused deploy key file:stranger"), std::string::npos) << error;
}

// The server knows the RSA key: without the check the login would fail as "the server refused
// deploy key", because libssh2 before 1.11 signs it with ssh-rsa, which this sshd (OpenSSH 9.2) refuses.
TEST_F(PrivateRepo, AnRsaKeyFailsWithTheReasonWhereLibssh2SignsOnlyWithSha1) {
    const std::string sha = repo_->commit({{"index.html", "rsa\n"}});
    spit(tmp() / "keys" / "rsa", sshd_->add_client_key("rsa", "rsa"));
    ::chmod((tmp() / "keys" / "rsa").c_str(), 0600);
    const std::string outcome = create_private_site("file:rsa");
    if (libssh2_version(0x010b00) != nullptr) {
        EXPECT_EQ(outcome, "live " + sha + "\n") << "libssh2 " << libssh2_version(0) << " signs with rsa-sha2";
        return;
    }
    EXPECT_EQ(outcome.substr(0, 6), "failed") << outcome;
    const std::string error = status_line("blog", "error");
    EXPECT_EQ(error, std::string("fetch: deploy key file:rsa is an RSA key; this sitesfs's libssh2 (") + libssh2_version(0) +
                         ") can only sign RSA logins with SHA-1 (ssh-rsa), which OpenSSH 8.8+ and GitHub refuse: "
                         "make an ed25519 key (ssh-keygen -t ed25519) and use that");
}

TEST_F(PrivateRepo, AKeyReadableByOthersOrOutsideTheKeysDirIsRefused) {
    repo_->commit({{"index.html", "x\n"}});
    ::chmod((tmp() / "keys" / "blog").c_str(), 0644);
    const std::string outcome = create_private_site("file:blog");
    EXPECT_EQ(outcome.substr(0, 6), "failed") << outcome;
    EXPECT_NE(status_line("blog", "error").find("chmod 600"), std::string::npos) << status_line("blog", "error");
    EXPECT_TRUE(shell("echo file:../vault/blog > blog/deploy_key_ref", {.code = 1, .err_has = "Invalid argument"}));
    EXPECT_EQ(read("blog/deploy_key_ref"), "file:blog\n");
}

TEST_F(PrivateRepo, AChangedHostKeyFailsAndTheOldReleaseKeepsServing) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_private_site("file:blog"), "live " + v1 + "\n") << daemon_log();
    const std::string old_fp = sshd_->host_key_fingerprint();
    sshd_->stop();
    sshd_->rotate_host_key();
    std::string why;
    ASSERT_TRUE(sshd_->start(&why)) << why;
    repo_->commit({{"index.html", "v2\n"}});
    ASSERT_TRUE(shell("echo main > blog/branch"));
    const std::string outcome = wait("blog");
    EXPECT_EQ(outcome.substr(0, 6), "failed") << outcome;
    const std::string error = status_line("blog", "error");
    EXPECT_NE(error.find("changed"), std::string::npos) << error;
    EXPECT_NE(error.find(old_fp), std::string::npos) << error;
    EXPECT_NE(error.find(sshd_->host_key_fingerprint()), std::string::npos) << error;
    EXPECT_EQ(body("blog.test"), "v1\n");
}

TEST_F(PrivateRepo, TheKeyNeverTouchesADiskOrAnArgvOrAnEnvironment) {
    repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_private_site("file:blog").substr(0, 4), "live") << daemon_log();
    ASSERT_TRUE(shell("echo cmd:blog > blog/deploy_key_ref"));
    ASSERT_EQ(wait("blog").substr(0, 4), "live") << daemon_log();

    // Every line of the key's body that is this key's own: the armour and the format header
    // (magic, cipher "none", key type) are the same in every ed25519 key, sshd's host key included.
    ASSERT_EQ(run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (tmp() / "other").string()}).code, 0);
    const auto common = split_lines(slurp(tmp() / "other"));
    stdfs::remove(tmp() / "other");
    std::vector<std::string> secret;
    for (const auto& line : split_lines(key_))
        if (!line.empty() && std::find(common.begin(), common.end(), line) == common.end()) secret.push_back(line);
    ASSERT_FALSE(secret.empty());
    std::vector<std::string> found;
    const auto scan_file = [&](const stdfs::path& f) {
        std::error_code ec;
        if (!stdfs::is_regular_file(f, ec) || stdfs::file_size(f, ec) > (8u << 20)) return;
        const std::string text = slurp(f);
        for (const auto& line : secret)
            if (text.find(line) != std::string::npos) found.push_back(f.string());
    };
    // The secret stores themselves (and sshd's copy of the client key) hold it by definition.
    const std::vector<stdfs::path> stores{tmp() / "keys", tmp() / "vault", tmp() / "ssh" / "clients"};
    for (const stdfs::path& root : {stdfs::path("/tmp"), stdfs::path("/dev/shm"), state(), data()}) {
        std::error_code ec;
        for (auto it = stdfs::recursive_directory_iterator(root, stdfs::directory_options::skip_permission_denied, ec);
             it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
            if (ec) break;
            const bool in_store = std::any_of(stores.begin(), stores.end(),
                                              [&](const stdfs::path& s) { return it->path().string().starts_with(s.string()); });
            if (in_store || it->path() == mnt()) {
                if (it->is_directory(ec)) it.disable_recursion_pending();
                continue;
            }
            scan_file(it->path());
        }
    }
    // sitesfs and everything it started.
    std::vector<pid_t> pids{daemon_pid()};
    for (const auto& e : stdfs::directory_iterator("/proc")) {
        const std::string stat = slurp(e.path() / "stat");
        const size_t close = stat.rfind(')');
        if (close == std::string::npos) continue;
        if (std::atoi(stat.c_str() + close + 4) == daemon_pid()) pids.push_back(std::atoi(e.path().filename().c_str()));
    }
    for (pid_t pid : pids)
        for (const char* what : {"cmdline", "environ"}) scan_file(stdfs::path("/proc") / std::to_string(pid) / what);
    EXPECT_TRUE(found.empty()) << "key material in: " << ::testing::PrintToString(found);
}

// systemd services run without HOME, and libgit2 1.5 then refuses every SSH connection.
class WithoutHome : public PrivateRepo {
protected:
    void before_start() override {
        PrivateRepo::before_start();
        std::erase_if(daemon_env_, [](const std::string& e) { return e.starts_with("HOME="); });
        // sitesfs inherits this process's environment; ctest runs each test in a process of its own.
        if (const char* home = getenv("HOME")) saved_home_ = home;
        unsetenv("HOME");
    }
    void TearDown() override {
        PrivateRepo::TearDown();
        if (saved_home_) setenv("HOME", saved_home_->c_str(), 1);
    }
    std::optional<std::string> saved_home_;
};

TEST_F(WithoutHome, APrivateSiteStillDeploys) {
    const std::string sha = repo_->commit({{"index.html", "homeless\n"}});
    EXPECT_EQ(create_private_site("file:blog"), "live " + sha + "\n") << daemon_log();
}

class StrictHostKeys : public PrivateRepo {
protected:
    void SetUp() override {
        strict_ = true;
        PrivateRepo::SetUp();
    }
};

TEST_F(StrictHostKeys, AnUnpinnedHostFailsAndSaysHowToPinIt) {
    repo_->commit({{"index.html", "x\n"}});
    const std::string outcome = create_private_site("file:blog");
    EXPECT_EQ(outcome.substr(0, 6), "failed") << outcome;
    const std::string error = status_line("blog", "error");
    EXPECT_NE(error.find("strict"), std::string::npos) << error;
    EXPECT_NE(error.find(sshd_->host_key_fingerprint()), std::string::npos) << error;
    EXPECT_FALSE(stdfs::exists(state() / "known_hosts") && slurp(state() / "known_hosts").find("127.0.0.1") != std::string::npos);
}

class PinnedHostKeys : public PrivateRepo {
protected:
    void SetUp() override {
        strict_ = true;
        pin_ = true;
        PrivateRepo::SetUp();
    }
};

TEST_F(PinnedHostKeys, APinnedHostDeploysInStrictMode) {
    const std::string sha = repo_->commit({{"index.html", "pinned\n"}});
    EXPECT_EQ(create_private_site("file:blog"), "live " + sha + "\n") << daemon_log();
}

}  // namespace
}  // namespace sitesfs::it
