// The notification queue with real commands: what the command's environment holds, that a slow
// command is killed at its timeout with what it started, that the queue drops its oldest entry
// when full, that failures are counted, and that stop() neither waits for a command nor leaves one
// running. Then the reconciler's side: a command starts only once the store holds the outcome.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "hooks/git_repo.hpp"
#include "hooks/notifications.hpp"
#include "hooks/reconciler.hpp"
#include "store/file_store.hpp"

namespace sitesfs::hooks {
namespace {

using namespace std::chrono_literals;
namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;

bool eventually(const std::function<bool()>& f, std::chrono::milliseconds limit = 10s) {
    const auto end = Clock::now() + limit;
    while (Clock::now() < end) {
        if (f()) return true;
        std::this_thread::sleep_for(20ms);
    }
    return f();
}

std::string slurp(const stdfs::path& p) {
    std::ifstream in(p);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Not gone and not a zombie: what a killed group leaves is reparented, and the reaper may be slow.
bool alive(pid_t pid) {
    const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    const size_t paren = stat.rfind(')');
    return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

Notice notice(const std::string& site) { return {site, "failed", std::string(40, 'b'), std::string(40, 'a'), "fetch: x", "web1"}; }

class NotificationsTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (stdfs::temp_directory_path() / "sitesfs-notify-XXXXXX").string();
        ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { stdfs::remove_all(dir_); }

    // /bin/sh -c SCRIPT with $0 set to the test's dir.
    std::vector<std::string> sh(const std::string& script) const { return {"/bin/sh", "-c", script, dir_.string()}; }

    stdfs::path dir_;
};

TEST_F(NotificationsTest, TheEnvironmentIsTheOutcomeAndPathAndNothingOfTheDaemons) {
    ASSERT_EQ(setenv("SITESFS_TEST_SECRET", "hunter2", 1), 0);
    Notifications n({.command = sh("env | sort > \"$0/env\"")});
    Notice x = notice("blog");
    x.error = "build: exit 1:\x1b[31m red\r\n line\x7f";
    n.send(x);
    ASSERT_TRUE(eventually([&] { return has(n.metrics(), "{result=\"sent\"} 1"); })) << n.metrics();
    unsetenv("SITESFS_TEST_SECRET");
    const char* path = getenv("PATH");
    // dash exports the PWD it sets itself; nothing else may appear.
    EXPECT_EQ(slurp(dir_ / "env"), "COMMIT=" + std::string(40, 'b') +
                                       "\nERROR=build: exit 1:[31m red line\nHOST=web1\nPATH=" + path +
                                       "\nPREVIOUS=" + std::string(40, 'a') + "\nPWD=" + stdfs::current_path().string() +
                                       "\nSITE=blog\nSTATE=failed\n");
}

TEST_F(NotificationsTest, AnOverlongErrorIsCutToFitTheEnvironment) {
    Notice x = notice("blog");
    x.error = std::string(3, 'x') + std::string(10000, '\xc3');  // not UTF-8, but never cut mid-way as one
    const auto env = notice_env(x);
    const auto error = std::find_if(env.begin(), env.end(), [](const std::string& e) { return e.starts_with("ERROR="); });
    ASSERT_NE(error, env.end());
    EXPECT_LE(error->size(), 6u + 4096u);
    EXPECT_GT(error->size(), 6u + 4000u);
}

TEST_F(NotificationsTest, ACommandPastItsTimeoutIsKilledWithWhatItStarted) {
    Notifications n({.command = sh("sleep 60 & echo $! > \"$0/child\"; wait"), .timeout = 300ms});
    const auto start = Clock::now();
    n.send(notice("blog"));
    ASSERT_TRUE(eventually([&] { return has(n.metrics(), "{result=\"failed\"} 1"); })) << n.metrics();
    EXPECT_LT(Clock::now() - start, 5s);
    const pid_t child = std::stoi(slurp(dir_ / "child"));
    EXPECT_TRUE(eventually([&] { return !alive(child); })) << "sleep " << child << " outlived the timeout";
    // The next one runs as usual.
    n.send(notice("shop"));
    EXPECT_TRUE(eventually([&] { return has(n.metrics(), "{result=\"failed\"} 2"); })) << n.metrics();
}

TEST_F(NotificationsTest, AFullQueueDropsItsOldestEntry) {
    // One job, held by the first command until the test lets it go; two may wait.
    Notifications n({.command = sh("echo \"$SITE\" >> \"$0/sites\"; while [ ! -e \"$0/go\" ]; do sleep 0.02; done"),
                     .jobs = 1, .queue = 2});
    n.send(notice("a"));
    ASSERT_TRUE(eventually([&] { return slurp(dir_ / "sites") == "a\n"; }));
    for (const std::string site : {"b", "c", "d", "e"}) n.send(notice(site));
    EXPECT_TRUE(has(n.metrics(), "{result=\"dropped\"} 2")) << n.metrics();
    std::ofstream(dir_ / "go").put('\n');
    EXPECT_TRUE(eventually([&] { return has(n.metrics(), "{result=\"sent\"} 3"); })) << n.metrics();
    EXPECT_EQ(slurp(dir_ / "sites"), "a\nd\ne\n");
}

// With two jobs, a site's second outcome waits for its first to be told, and another site's is
// told meanwhile: a chat never shows "live" before the "failed" it followed.
TEST_F(NotificationsTest, OneSitesOutcomesAreToldInOrderAndOtherSitesMeanwhile) {
    Notifications n({.command = sh("echo \"$SITE $COMMIT\" >> \"$0/started\"; "
                                   "while [ ! -e \"$0/go-$SITE-$COMMIT\" ]; do sleep 0.02; done"),
                     .jobs = 2});
    const auto outcome = [](const std::string& site, const std::string& commit) {
        return Notice{site, "live", commit, "", "", "web1"};
    };
    n.send(outcome("a", "1"));
    ASSERT_TRUE(eventually([&] { return slurp(dir_ / "started") == "a 1\n"; }));
    n.send(outcome("a", "2"));
    n.send(outcome("b", "1"));
    EXPECT_TRUE(eventually([&] { return slurp(dir_ / "started") == "a 1\nb 1\n"; }))
        << "b is told beside a's first, and a's second waits: " << slurp(dir_ / "started");
    std::ofstream(dir_ / "go-a-1").put('\n');
    EXPECT_TRUE(eventually([&] { return slurp(dir_ / "started") == "a 1\nb 1\na 2\n"; })) << slurp(dir_ / "started");
    std::ofstream(dir_ / "go-a-2").put('\n');
    std::ofstream(dir_ / "go-b-1").put('\n');
    EXPECT_TRUE(eventually([&] { return has(n.metrics(), "{result=\"sent\"} 3"); })) << n.metrics();
}

TEST_F(NotificationsTest, FailuresAreCountedAndTheNextOnesStillRun) {
    Notifications n({.command = sh("[ \"$SITE\" = ok ] || { echo \"no way to $SITE\"; exit 3; }")});
    n.send(notice("bad"));
    n.send(notice("ok"));
    EXPECT_TRUE(eventually([&] {
        const std::string m = n.metrics();
        return has(m, "{result=\"failed\"} 1") && has(m, "{result=\"sent\"} 1");
    })) << n.metrics();

    Notifications missing({.command = {(dir_ / "no-such-command").string()}});
    missing.send(notice("blog"));
    EXPECT_TRUE(eventually([&] { return has(missing.metrics(), "{result=\"failed\"} 1"); })) << missing.metrics();
}

TEST_F(NotificationsTest, StopKillsWhatRunsAndDropsWhatWaits) {
    Notifications n({.command = sh("echo $$ > \"$0/pid\"; exec sleep 60"), .jobs = 1});
    for (const std::string site : {"a", "b", "c"}) n.send(notice(site));
    ASSERT_TRUE(eventually([&] { return !slurp(dir_ / "pid").empty(); }));
    const pid_t running = std::stoi(slurp(dir_ / "pid"));
    const auto start = Clock::now();
    n.stop();
    EXPECT_LT(Clock::now() - start, 2s);
    EXPECT_FALSE(alive(running)) << "the running command outlived stop()";
    const std::string m = n.metrics();
    EXPECT_TRUE(has(m, "{result=\"dropped\"} 2")) << m;
    EXPECT_TRUE(has(m, "{result=\"failed\"} 1")) << m;
    n.send(notice("d"));  // after stop(): ignored, never run
    EXPECT_EQ(n.metrics(), m);
}

TEST_F(NotificationsTest, WithoutACommandNothingRuns) {
    Notifications n({});
    n.send(notice("blog"));
    EXPECT_TRUE(has(n.metrics(), "{result=\"sent\"} 0"));
    EXPECT_TRUE(has(n.metrics(), "{result=\"dropped\"} 0"));
}

// A file store whose reports of a finished run (live or failed) take 300 ms: a command started
// before the report returned would show here.
class SlowReports : public Store {
public:
    SlowReports(std::unique_ptr<Store> inner, stdfs::path told) : inner_(std::move(inner)), told_(std::move(told)) {}
    bool read_only() const override { return inner_->read_only(); }
    const std::string& host() const override { return inner_->host(); }
    const std::vector<std::string>& labels() const override { return inner_->labels(); }
    std::string describe() const override { return inner_->describe(); }
    std::vector<std::string> site_names() const override { return inner_->site_names(); }
    SiteRef site(std::string_view name) const override { return inner_->site(name); }
    size_t site_count() const override { return inner_->site_count(); }
    Outcome create_site(std::string_view name) override { return inner_->create_site(name); }
    Outcome remove_site(std::string_view name) override { return inner_->remove_site(name); }
    std::vector<Outcome> create_sites(const std::vector<NewSite>& sites) override { return inner_->create_sites(sites); }
    Outcome write_field(std::string_view site, std::string_view field, std::string_view raw) override {
        return inner_->write_field(site, field, raw);
    }
    Outcome restore_field(std::string_view site, std::string_view field, std::string_view value,
                          std::string_view expected) override {
        return inner_->restore_field(site, field, value, expected);
    }
    Outcome set_field_time(std::string_view site, std::string_view field, Timestamp when) override {
        return inner_->set_field_time(site, field, when);
    }
    Outcome report(std::string_view site, uint64_t generation, const ActualState& actual) override {
        if (actual.state == SiteState::live || actual.state == SiteState::failed) {
            std::this_thread::sleep_for(300ms);
            if (stdfs::exists(told_)) told_before_recorded = true;
        }
        return inner_->report(site, generation, actual);
    }
    void subscribe(std::function<void(const Change&)> listener) override { inner_->subscribe(std::move(listener)); }

    std::atomic<bool> told_before_recorded = false;

private:
    std::unique_ptr<Store> inner_;
    stdfs::path told_;
};

// The reconciler tells an outcome only once the store holds it (git-sync #481: a hook that raced
// the outcome it reported). A fetch from a repository that does not exist fails without a server.
TEST_F(NotificationsTest, TheReconcilerTellsAnOutcomeOnlyOnceTheStoreHoldsIt) {
    const stdfs::path told = dir_ / "told";
    SlowReports store(open_file_store({.state_dir = dir_ / "state", .policy = {.allow_local_repos = true}, .host = "web1"}),
                      told);
    HooksConfig config;
    config.data_dir = dir_ / "data";
    config.state_dir = dir_ / "state";
    config.policy.allow_local_repos = true;
    config.poll_interval = 0ms;
    config.proxy.file = dir_ / "sites.conf";
    config.reload.mode = ReloadMode::none;
    config.known_hosts = dir_ / "known_hosts";
    init_git();  // what main does before any thread starts
    config.notify.command = sh("env | sort > \"$0/told.tmp\" && mv \"$0/told.tmp\" \"$0/told\"");
    stdfs::create_directories(config.data_dir);
    Reconciler reconciler(store, config);
    reconciler.start();
    ASSERT_TRUE(store.create_site("blog").ok());
    ASSERT_TRUE(store.write_field("blog", "repo", "file://" + (dir_ / "no-such-repo.git").string()).ok());
    ASSERT_TRUE(store.write_field("blog", "domain", "blog.test").ok());
    ASSERT_TRUE(eventually([&] { return stdfs::exists(told); })) << "no notification";
    // What the command could have read once it ran: the outcome it was told about.
    const SiteRef site = store.site("blog");
    ASSERT_TRUE(site);
    EXPECT_EQ(site->actual.state, SiteState::failed);
    // And a report held up by the store's own writes did not let it run early.
    EXPECT_TRUE(eventually([&] { return store.site("blog")->actual.state == SiteState::failed; }));
    EXPECT_FALSE(store.told_before_recorded) << "the command ran before the store held the outcome";
    const std::string env = slurp(told);
    EXPECT_TRUE(has(env, "\nSITE=blog\nSTATE=failed\n")) << env;
    EXPECT_TRUE(has(env, "\nERROR=" + site->actual.error + "\n")) << env;
    EXPECT_TRUE(has(env, "HOST=web1\n")) << env;
    EXPECT_TRUE(has(env, "COMMIT=\n")) << env;
    EXPECT_TRUE(has(env, "PREVIOUS=\n")) << env;
    reconciler.stop();
    EXPECT_TRUE(has(reconciler.metrics(), "sitesfs_notifications_total{result=\"sent\"} 1")) << reconciler.metrics();
}

}  // namespace
}  // namespace sitesfs::hooks
