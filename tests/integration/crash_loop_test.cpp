// The crash loop: write storms through the mount and deploys from pushed commits, SIGKILL of
// sitesfs at a random moment, restart, and after every kill the promises a crash must not break:
// every acknowledged write is on disk, the state files parse, the proxy config Caddy would load
// validates, every `current` points at a whole release, no temp file outlives the restart, and
// the stale mount is replaced by a live one.
//
// SITESFS_CRASH_ITERATIONS (default 20) sets the number of kills; SITESFS_CRASH_SEED replays the
// random choices (kill moments, values, pushes) of a run, whose seed is printed. Thread timing
// still varies between runs, so a replay exercises the same schedule, not the same interleaving.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "store/file_store.hpp"
#include "tests/integration/deploy_fixture.hpp"

namespace sitesfs::it {
namespace {

constexpr int kSites = 24;       // written by the field writers for the whole run
constexpr int kChurnSites = 6;   // created and removed during the storm
constexpr int kRepos = 3;
constexpr int kWriters = 4;
// The fields whose desired value the writers change; each (site, field) has exactly one writer,
// so the order of its acknowledged writes is the order of its values.
const std::vector<std::string> kFields{"domain", "path", "branch", "commit"};

std::string site_name(int i) { return (i < 10 ? "s0" : "s") + std::to_string(i); }
std::string churn_name(int i) { return "c" + std::to_string(i); }

unsigned env_number(const char* name, unsigned fallback) {
    const char* v = std::getenv(name);
    return v && *v ? static_cast<unsigned>(std::stoul(v)) : fallback;
}

bool is_hex40(const std::string& s) {
    return s.size() == 40 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Every regular file below `dir` (relative path -> content); a link or anything else is reported
// as "<not a regular file>" so that it fails the comparison with a tree.
std::map<std::string, std::string> files_below(const stdfs::path& dir) {
    std::map<std::string, std::string> out;
    std::error_code ec;
    for (auto it = stdfs::recursive_directory_iterator(dir, ec); !ec && it != stdfs::recursive_directory_iterator();
         it.increment(ec)) {
        const auto rel = it->path().lexically_relative(dir).string();
        if (it->is_symlink(ec)) out[rel] = "<not a regular file>";
        else if (it->is_regular_file(ec)) out[rel] = slurp(it->path());
        else if (!it->is_directory(ec)) out[rel] = "<not a regular file>";
    }
    return out;
}

// Names a crash can leave behind, by the code that makes them: the store's `.NAME.toml.tmp.X`,
// TempFile's `.FILE.XXXXXX` (the proxy file, the validate copy of the main config, the marker),
// the switch step's `.current.tmp`, the stage step's `releases/.stage-SHA` and the pruning's
// `releases/.discard-SHA`, a removal's tombstone `DATA/.NAME.removing`, and libgit2's `*.lock`
// and `*_git2_*` files in a site's repo.git.
std::vector<stdfs::path> temp_files(const stdfs::path& state, const stdfs::path& data, const stdfs::path& caddy_dir) {
    std::vector<stdfs::path> out;
    std::error_code ec;
    for (const auto& e : stdfs::directory_iterator(state / "sites", ec))
        if (e.path().filename().string().find(".toml.tmp.") != std::string::npos) out.push_back(e.path());
    for (const auto& e : stdfs::directory_iterator(caddy_dir, ec)) {
        const std::string n = e.path().filename().string();
        if (n.starts_with(".sites.conf.") || n.starts_with(".Caddyfile.")) out.push_back(e.path());
    }
    for (const auto& site : stdfs::directory_iterator(data, ec)) {
        if (site.path().filename().string().starts_with(".")) {
            out.push_back(site.path());
            continue;
        }
        for (const auto& e : stdfs::directory_iterator(site.path(), ec)) {
            const std::string n = e.path().filename().string();
            if (n == ".current.tmp" || n.starts_with("..sitesfs-site.")) out.push_back(e.path());
        }
        for (const auto& r : stdfs::directory_iterator(site.path() / "releases", ec))
            if (r.path().filename().string().starts_with(".")) out.push_back(r.path());
        for (auto it = stdfs::recursive_directory_iterator(site.path() / "repo.git", ec);
             !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
            const std::string n = it->path().filename().string();
            if (n.ends_with(".lock") || n.find("_git2_") != std::string::npos) out.push_back(it->path());
        }
    }
    return out;
}

struct Counts {
    std::atomic<long> attempted{0}, acknowledged{0}, refused{0}, in_flight_at_kill{0}, after_kill{0};
    std::atomic<long> acknowledged_by_bash{0};  // of acknowledged: an `echo` whose exit status was 0
    long in_flight_committed = 0;  // of in_flight_at_kill: found stored after the kill
    long iterations = 0, quiet_iterations = 0, kills_during_deploy = 0, kills_idle = 0, checks = 0, pushes = 0;
    long wedged = 0;  // kills that left the mount wedged, which the restart cleared
    long mkdirs = 0, rmdirs = 0;
};

// What a writer knows about one (site, field): the last acknowledged value, and values whose
// write was under way when the daemon was killed (each may or may not have committed).
struct Field {
    std::string acked;
    std::set<std::string> maybe;
};

class CrashLoop : public DeployTest {
protected:
    void SetUp() override {
        const char* seed = std::getenv("SITESFS_CRASH_SEED");
        seed_ = seed && *seed ? std::stoull(seed) : std::random_device{}();
        std::cout << "crash loop seed " << seed_ << " (replay with SITESFS_CRASH_SEED=" << seed_ << ")\n";
        RecordProperty("seed", std::to_string(seed_));
        rng_.seed(seed_);
        ASSERT_NO_FATAL_FAILURE(DeployTest::SetUp());
    }

    void TearDown() override {
        stop_threads();
        DeployTest::TearDown();
    }

    // ---- repositories ----

    // A commit of repo r: index.html and sub/index.html (so that `path = sub` serves), a file
    // named after the version (the previous one removed) and a bigger one, so that a release has
    // a few files and a write that takes a moment.
    std::string push(int r) {
        const int v = ++versions_[r];
        std::map<std::string, std::string> change{
            {"index.html", "repo " + std::to_string(r) + " v" + std::to_string(v) + "\n"},
            {"sub/index.html", "sub of repo " + std::to_string(r) + " v" + std::to_string(v) + "\n"},
            {"data/v" + std::to_string(v) + ".txt", std::string(1000 + v, 'a' + v % 26)},
            {"data/big.txt", std::string(64 * 1024, 'A' + v % 26)},
        };
        if (v > 1) change["data/v" + std::to_string(v - 1) + ".txt"] = "";
        const std::string sha = repos_[r]->commit(change);
        std::lock_guard lock(mu_);
        auto tree = trees_[heads_[r]];
        for (const auto& [path, content] : change) {
            if (content.empty()) tree.erase(path);
            else tree[path] = content;
        }
        heads_[r] = sha;
        trees_[sha] = tree;
        shas_[r].push_back(sha);
        ++counts_.pushes;
        return sha;
    }

    // ---- writers ----

    int repo_of(int site) const { return site % kRepos; }

    std::string next_value(int site, const std::string& field, std::mt19937_64& rng) {
        const auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
        if (field == "domain") return site_name(site) + "-v" + std::to_string(pick(4)) + ".crash.test";
        if (field == "path") return pick(2) ? "sub" : "";
        if (field == "branch") return pick(2) ? "main" : "";
        std::lock_guard lock(mu_);
        const auto& shas = shas_[repo_of(site)];
        // Mostly following the branch, so that pushes deploy; sometimes a pin to an older commit.
        return pick(3) ? "" : shas[static_cast<size_t>(pick(static_cast<int>(shas.size())))];
    }

    // Waits while the loop checks a crash; false when the test is over.
    bool wait_turn() {
        std::unique_lock lock(pause_mu_);
        if (paused_) {
            ++idle_;
            pause_cv_.notify_all();
            pause_cv_.wait(lock, [&] { return !paused_ || done_; });
            --idle_;
        }
        return !done_;
    }

    // Sorts the outcome of one write; `started_dead`: the daemon was already reaped when it began.
    void settle_write(Field& f, const std::string& value, int err, bool started_dead, const std::string& what,
                      bool by_bash = false) {
        std::lock_guard lock(mu_);
        if (err == 0) {
            f.acked = value;
            f.maybe.clear();
            ++counts_.acknowledged;
            if (by_bash) ++counts_.acknowledged_by_bash;
        } else if (started_dead) {
            ++counts_.after_kill;  // nobody was there to commit it
        } else if (killing_) {
            f.maybe.insert(value);  // under way at the kill: it may or may not have committed
            ++counts_.in_flight_at_kill;
        } else if (err == EINVAL || err == EEXIST) {
            ++counts_.refused;
        } else {
            unexpected_.push_back(what + ": " + std::strerror(err) + " while sitesfs was running");
        }
    }

    // bash's `echo VALUE > FILE`, acknowledged by its exit status alone, as a shell user hears it
    // (bash never reports a failed close); the errno is read from bash's message.
    int echo_errno(const std::string& rel, const std::string& value) {
        const Run r = run({"bash", "-c", "echo \"$1\" > \"$2\"", "bash", value, (mnt() / rel).string()});
        if (r.code == 0) return 0;
        for (int e : {EINVAL, EEXIST, ENOENT, ENOTCONN, ENOSPC})
            if (r.err.find(std::strerror(e)) != std::string::npos) return e;
        return EIO;
    }

    // Half the writers are bash `echo`s, half write(2) and check close(2).
    void writer(int w) {
        const bool by_bash = w % 2 == 1;
        std::mt19937_64 rng(seed_ + 1 + static_cast<unsigned>(w));
        std::vector<std::pair<int, std::string>> mine;
        for (int s = 0; s < kSites; ++s)
            for (size_t f = 0; f < kFields.size(); ++f)
                if ((s + static_cast<int>(f)) % kWriters == w) mine.emplace_back(s, kFields[f]);
        while (wait_turn()) {
            const auto& [site, field] = mine[rng() % mine.size()];
            const std::string value = next_value(site, field, rng);
            const bool started_dead = dead_;
            ++counts_.attempted;
            const std::string rel = site_name(site) + "/" + field;
            const int err = by_bash ? echo_errno(rel, value) : write_errno(rel, value + "\n");
            settle_write(fields_[{site, field}], value, err, started_dead, (by_bash ? "echo > " : "write ") + rel, by_bash);
            std::this_thread::sleep_for(Ms(2 + rng() % 20));
        }
    }

    // mkdir (with repo and domain) and rmdir of the churn sites.
    void churner() {
        std::mt19937_64 rng(seed_ + 100);
        while (wait_turn()) {
            const int c = static_cast<int>(rng() % kChurnSites);
            const std::string name = churn_name(c);
            const bool started_dead = dead_;
            bool present;
            {
                std::lock_guard lock(mu_);
                present = churn_[c].acked == "yes";
            }
            const stdfs::path dir = mnt() / name;
            ++counts_.attempted;
            int err = 0;
            if (present) {
                err = ::rmdir(dir.c_str()) == 0 ? 0 : errno;
            } else {
                err = ::mkdir(dir.c_str(), 0755) == 0 ? 0 : errno;
            }
            settle_write(churn_[c], present ? "no" : "yes", err, started_dead, (present ? "rmdir " : "mkdir ") + name);
            if (err == 0) {
                std::lock_guard lock(mu_);
                ++(present ? counts_.rmdirs : counts_.mkdirs);
            }
            if (err == 0 && !present) {
                // The written values are not tracked: what matters here is that the site deploys.
                // A kill between the mkdir and these writes leaves it incomplete, as it would
                // leave a user's; the settle step below finishes it.
                const bool filled = fill_churn_site(c) == 0;
                std::lock_guard lock(mu_);
                churn_filled_[c] = filled;
            }
            std::this_thread::sleep_for(Ms(50 + rng() % 200));
        }
    }

    int fill_churn_site(int c) {
        const std::string name = churn_name(c);
        const int err = write_errno(name + "/repo", repos_[c % kRepos]->url() + "\n");
        return err ? err : write_errno(name + "/domain", name + ".crash.test\n");
    }

    void start_threads() {
        for (int w = 0; w < kWriters; ++w) threads_.emplace_back([this, w] { writer(w); });
        threads_.emplace_back([this] { churner(); });
    }

    void stop_threads() {
        {
            std::lock_guard lock(pause_mu_);
            done_ = true;
        }
        pause_cv_.notify_all();
        for (auto& t : threads_) t.join();
        threads_.clear();
    }

    void pause_threads() {
        std::unique_lock lock(pause_mu_);
        paused_ = true;
        pause_cv_.wait(lock, [&] { return idle_ == static_cast<int>(threads_.size()); });
    }

    void resume_threads() {
        {
            std::lock_guard lock(pause_mu_);
            paused_ = false;
        }
        pause_cv_.notify_all();
    }

    // ---- the checks ----

    // Sites whose state file says a deploy is under way (read from disk: asking the mount would
    // change the timing the kill is meant to hit at random).
    int deploying_now() const {
        int n = 0;
        std::error_code ec;
        for (const auto& e : stdfs::directory_iterator(state() / "sites", ec))
            if (slurp(e.path()).find("state = \"deploying\"") != std::string::npos) ++n;
        return n;
    }

    static bool allowed(const Field& f, const std::string& value) { return value == f.acked || f.maybe.contains(value); }

    static std::string describe_field(const Field& f) {
        std::string out = "acknowledged '" + f.acked + "'";
        for (const auto& m : f.maybe) out += ", or in flight '" + m + "'";
        return out;
    }

    // The state dir as the kill left it: it opens (every file parses and validates) and holds
    // every acknowledged value. Returns the store for the checks after the restart.
    std::unique_ptr<Store> check_state_files() {
        std::unique_ptr<Store> store;
        try {
            store = open_file_store({.state_dir = state(), .read_only = true});
        } catch (const std::exception& e) {
            ADD_FAILURE() << "the state dir does not open after a kill: " << e.what();
            return nullptr;
        }
        std::lock_guard lock(mu_);
        for (auto& [key, f] : fields_) {
            const auto& [site, field] = key;
            const SiteRef s = store->site(site_name(site));
            if (!s) {
                ADD_FAILURE() << site_name(site) << " is gone after a kill";
                continue;
            }
            const std::string value = s->field(FieldName::known(field)).value;
            if (value != f.acked && f.maybe.contains(value)) ++counts_.in_flight_committed;
            EXPECT_TRUE(allowed(f, value)) << site_name(site) << "/" << field << " is '" << value << "' after a kill; "
                                           << describe_field(f);
        }
        for (int c = 0; c < kChurnSites; ++c) {
            const std::string there = store->site(churn_name(c)) ? "yes" : "no";
            EXPECT_TRUE(allowed(churn_[c], there))
                << churn_name(c) << " exists: " << there << " after a kill; " << describe_field(churn_[c]);
        }
        return store;
    }

    // Every release is whole (exactly the tree of its commit) and `current` points at one.
    void check_releases() {
        std::error_code ec;
        std::lock_guard lock(mu_);
        for (const auto& site : stdfs::directory_iterator(data(), ec)) {
            if (site.path().filename().string().starts_with(".")) continue;  // a tombstone
            const stdfs::path current = site.path() / "current";
            if (stdfs::is_symlink(current, ec)) {
                const auto target = stdfs::read_symlink(current, ec);
                const std::string sha = target.filename().string();
                EXPECT_TRUE(target.parent_path() == "releases" && is_hex40(sha)) << current << " -> " << target;
                EXPECT_TRUE(stdfs::is_directory(site.path() / target, ec)) << current << " -> " << target << ", missing";
            }
            for (const auto& r : stdfs::directory_iterator(site.path() / "releases", ec)) {
                const std::string sha = r.path().filename().string();
                if (!is_hex40(sha)) continue;  // .stage-*, .discard-*: checked after the restart
                const auto it = trees_.find(sha);
                if (it == trees_.end()) {
                    ADD_FAILURE() << r.path() << " is no commit this test pushed";
                    continue;
                }
                EXPECT_EQ(files_below(r.path()), it->second) << r.path() << " is not the whole tree of its commit";
            }
        }
    }

    // What Caddy would load if it started now: the main config with the generated file imported.
    void check_proxy_config() {
        const Run r = run({"caddy", "validate", "--config", caddy_->main_config().string(), "--adapter", "caddyfile"},
                          {.env = caddy_->env()});
        EXPECT_EQ(r.code, 0) << "caddy validate after a kill:\n" << describe(r) << "\nthe generated file:\n"
                             << slurp(caddy_->sites_file());
    }

    // The restarted daemon answers on one mount (the stale one is gone, not stacked under it) and
    // serves what the state files hold.
    void check_after_restart(const Store& before) {
        const std::string mp = mnt().lexically_normal().string();
        const auto points = mount_points();
        EXPECT_EQ(std::count(points.begin(), points.end(), mp), 1) << "mounts on " << mp << " after the restart";
        EXPECT_TRUE(mount_answers(mnt()));
        for (int s = 0; s < kSites; ++s)
            for (const std::string field : {"domain", "path", "branch"})
                EXPECT_EQ(read(site_name(s) + "/" + field), before.site(site_name(s))->field(FieldName::known(field)).value + "\n")
                    << site_name(s) << "/" << field << " after the restart";
        for (int c = 0; c < kChurnSites; ++c)
            EXPECT_EQ(stdfs::exists(mnt() / churn_name(c)), before.site(churn_name(c)) != nullptr) << churn_name(c);
    }

    // Temp files the kill left are removed by the restarted daemon (a new deploy may make one of
    // the same name for a moment, hence the wait).
    void check_leftovers_cleared(const std::vector<stdfs::path>& left) {
        for (const auto& p : left) {
            std::error_code ec;
            EXPECT_TRUE(eventually([&] { return !stdfs::exists(stdfs::symlink_status(p, ec)); }, 15s, 50ms))
                << p << " (left by the kill) is still there after the restart";
        }
    }

    // The writers continue from what is stored: an in-flight value that committed is now the
    // acknowledged one.
    void adopt(const Store& store) {
        std::lock_guard lock(mu_);
        for (auto& [key, f] : fields_) {
            f.acked = store.site(site_name(key.first))->field(FieldName::known(key.second)).value;
            f.maybe.clear();
        }
        for (int c = 0; c < kChurnSites; ++c) {
            const auto site = store.site(churn_name(c));
            churn_[c].acked = site ? "yes" : "no";
            churn_[c].maybe.clear();
            churn_filled_[c] = site && !site->field(FieldName::known("repo")).value.empty() &&
                                !site->field(FieldName::known("domain")).value.empty();
        }
    }

    uint64_t seed_ = 0;
    std::mt19937_64 rng_;
    std::vector<std::unique_ptr<TestRepo>> repos_;
    std::map<int, int> versions_;

    std::mutex mu_;  // guards what follows and counts_' plain members
    std::map<int, std::string> heads_;
    std::map<std::string, std::map<std::string, std::string>> trees_;  // commit -> its whole tree
    std::map<int, std::vector<std::string>> shas_;
    std::map<std::pair<int, std::string>, Field> fields_;
    std::map<int, Field> churn_;  // acked "yes" / "no": whether the site exists
    std::map<int, bool> churn_filled_;  // its repo and domain were acknowledged
    std::vector<std::string> unexpected_;
    Counts counts_;

    std::atomic<bool> killing_{false}, dead_{false};
    std::mutex pause_mu_;
    std::condition_variable pause_cv_;
    bool paused_ = false, done_ = false;
    int idle_ = 0;
    std::vector<std::thread> threads_;
};

using CrashLeftovers = DeployTest;

// What a kill mid-deploy leaves (found by the loop below) is gone once sitesfs starts again, also
// for a site that is converged and so never redeployed, and nothing else is touched.
TEST_F(CrashLeftovers, TempFilesOfAKilledRunAreRemovedAtStart) {
    const std::string sha = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log();
    ASSERT_NO_FATAL_FAILURE(kill9());
    const stdfs::path site = data() / "blog";
    const std::vector<stdfs::path> planted{caddy_->sites_file().parent_path() / ".sites.conf.Zz9Yy8",
                                           caddy_->main_config().parent_path() / ".Caddyfile.Aa1Bb2",
                                           site / ".current.tmp", site / "releases" / (".stage-" + sha)};
    spit(planted[0], "half a config");
    spit(planted[1], "a copy of the main config");
    stdfs::create_directory_symlink("releases/" + sha, planted[2]);
    stdfs::create_directories(planted[3] / "half");
    const auto found = temp_files(state(), data(), tmp() / "caddy");
    ASSERT_EQ(std::set<stdfs::path>(found.begin(), found.end()), std::set<stdfs::path>(planted.begin(), planted.end()));
    ASSERT_NO_FATAL_FAILURE(start({"--config", config_file().string()}));
    EXPECT_TRUE(eventually([&] { return temp_files(state(), data(), tmp() / "caddy").empty(); }, 10s))
        << daemon_log();
    EXPECT_EQ(stdfs::read_symlink(site / "current"), stdfs::path("releases") / sha);
    EXPECT_EQ(slurp(site / "current" / "index.html"), "v1\n");
    EXPECT_EQ(body("blog.test"), "v1\n");
}

// A removal that a kill cut short (the site is gone from the state dir, its data dir and proxy
// entry are not) is finished when sitesfs starts again; data dirs that are not this state dir's
// are only reported, as before.
TEST_F(CrashLeftovers, ARemovalCutShortIsFinishedAtStart) {
    const std::string sha = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log();
    ASSERT_EQ(create_site("shop", "shop.test"), "live " + sha + "\n") << daemon_log();
    ASSERT_NO_FATAL_FAILURE(kill9());
    // What the rmdir had made durable before the kill: the state file is gone.
    ASSERT_TRUE(stdfs::remove(state() / "sites" / "blog.toml"));
    stdfs::create_directories(data() / "other");
    spit(data() / "other" / ".sitesfs-site", "/some/other/state\n");
    stdfs::create_directories(data() / "old");
    spit(data() / "old" / ".sitesfs-site", "");
    stdfs::create_directories(data() / ".gone.removing" / "releases");
    ASSERT_NO_FATAL_FAILURE(start({"--config", config_file().string()}));
    EXPECT_TRUE(eventually([&] { return !stdfs::exists(data() / "blog"); }, 30s, 50ms)) << daemon_log();
    EXPECT_TRUE(eventually([&] { return body("blog.test") == "no site"; }, 30s, 50ms)) << daemon_log();
    EXPECT_EQ(slurp(caddy_->sites_file()).find("blog.test"), std::string::npos);
    EXPECT_FALSE(stdfs::exists(data() / ".gone.removing"));
    EXPECT_TRUE(stdfs::exists(data() / "other" / ".sitesfs-site"));
    EXPECT_TRUE(stdfs::exists(data() / "old" / ".sitesfs-site"));
    EXPECT_EQ(body("shop.test"), "v1\n");
    EXPECT_NE(daemon_log().find("other belongs to no site"), std::string::npos) << daemon_log();
}

// A kill between the mkdir of a site dir and the rename of its marker leaves a dir with nothing
// but the marker's temp file: start-up removes that and the next deploy of the site takes the empty
// dir over instead of failing for good. A dir with anything else in it is still refused.
TEST_F(CrashLeftovers, AnEmptySiteDirIsTakenOver) {
    const std::string sha = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_NO_FATAL_FAILURE(stop());
    // Killed before the marker's temp file was renamed (found by the crash loop).
    stdfs::create_directories(data() / "blog");
    spit(data() / "blog" / "..sitesfs-site.AbC123", state().string() + "\n");
    ASSERT_NO_FATAL_FAILURE(start({"--config", config_file().string()}));
    stdfs::create_directories(data() / "shop");
    spit(data() / "shop" / "notes.txt", "someone's\n");
    EXPECT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log();
    EXPECT_EQ(slurp(data() / "blog" / ".sitesfs-site"), state().string() + "\n");
    EXPECT_EQ(create_site("shop", "shop.test").substr(0, 6), "failed");
    EXPECT_NE(status_line("shop", "error").find("exists but was not made by sitesfs"), std::string::npos);
    EXPECT_EQ(slurp(data() / "shop" / "notes.txt"), "someone's\n");
}

TEST_F(CrashLoop, AcknowledgedWritesReleasesAndProxyConfigSurviveSigkill) {
    const unsigned iterations = env_number("SITESFS_CRASH_ITERATIONS", 20);
    for (int r = 0; r < kRepos; ++r) {
        repos_.push_back(std::make_unique<TestRepo>(tmp() / ("repo" + std::to_string(r))));
        push(r);
    }
    for (int s = 0; s < kSites; ++s) {
        const std::string name = site_name(s);
        ASSERT_EQ(::mkdir((mnt() / name).c_str(), 0755), 0) << std::strerror(errno);
        write(name + "/repo", repos_[repo_of(s)]->url() + "\n");
        write(name + "/domain", name + "-v0.crash.test\n");
        fields_[{s, "domain"}].acked = name + "-v0.crash.test";
        for (const std::string f : {"path", "branch", "commit"}) fields_[{s, f}];
    }
    for (int c = 0; c < kChurnSites; ++c) churn_[c].acked = "no";
    for (int s = 0; s < kSites; ++s) ASSERT_EQ(wait(site_name(s)).substr(0, 4), "live") << site_name(s) << daemon_log();

    const std::vector<std::string> restart_args{"--config", config_file().string()};
    start_threads();
    for (unsigned i = 0; i < iterations && !HasFailure(); ++i) {
        // A push to one repository in two iterations: its sites fetch, stage and switch while
        // the writers' changes redeploy others.
        if (rng_() % 2) push(static_cast<int>(rng_() % kRepos));
        // One iteration in four is quiet: no writes, so the kill finds the reconciler finishing
        // the storm's deploys, polling, or idle.
        const bool quiet = rng_() % 4 == 0;
        if (quiet) {
            pause_threads();
            ++counts_.quiet_iterations;
        }
        std::this_thread::sleep_for(Ms(50 + rng_() % (quiet ? 3000 : 1500)));

        const bool deploying = deploying_now() > 0;
        killing_ = true;
        ASSERT_NO_FATAL_FAILURE(kill9());
        dead_ = true;
        if (last_kill_wedged()) {
            // The writers wait on the wedged mount and would never pause. The restart clears a
            // wedged mount by itself (MountRecovery.WedgedMountIsAbortedAtStart); here the abort
            // comes first, so the disk can be checked as the kill left it.
            ++counts_.wedged;
            if (const auto connection = fuse_connection_of(mnt())) abort_fuse_connection(*connection);
        }
        pause_threads();
        ++(deploying ? counts_.kills_during_deploy : counts_.kills_idle);

        // The disk as the kill left it.
        const auto left = temp_files(state(), data(), tmp() / "caddy");
        const auto store = check_state_files();
        check_releases();
        check_proxy_config();
        ASSERT_NE(store, nullptr);

        ASSERT_NO_FATAL_FAILURE(start(restart_args)) << "restart " << i;
        killing_ = dead_ = false;
        check_after_restart(*store);
        check_leftovers_cleared(left);
        {
            std::lock_guard lock(mu_);
            EXPECT_TRUE(unexpected_.empty()) << unexpected_.front();
        }
        adopt(*store);
        ++counts_.iterations;
        if (!HasFailure()) ++counts_.checks;
        resume_threads();
    }
    stop_threads();

    // Settled: every site converges on what it holds (a crash must not leave one unable to
    // deploy), then, with sitesfs stopped and the disk still, nothing temporary is left anywhere.
    for (int s = 0; s < kSites; ++s)
        EXPECT_TRUE(eventually([&] { return status_line(site_name(s), "state") == "live"; }, 120s, 200ms))
            << site_name(s) << ":\n" << read(site_name(s) + "/status");
    for (int c = 0; c < kChurnSites; ++c) {
        if (!stdfs::exists(mnt() / churn_name(c))) continue;
        if (!churn_filled_[c]) {
            EXPECT_EQ(fill_churn_site(c), 0) << churn_name(c);
        }
        EXPECT_TRUE(eventually([&] { return status_line(churn_name(c), "state") == "live"; }, 120s, 200ms))
            << churn_name(c) << ":\n" << read(churn_name(c) + "/status");
    }
    ASSERT_NO_FATAL_FAILURE(stop());
    check_releases();
    check_proxy_config();
    EXPECT_EQ(temp_files(state(), data(), tmp() / "caddy"), std::vector<stdfs::path>{});
    // A removed site's data goes with it, also when a kill cut its removal short.
    const auto store = check_state_files();
    std::error_code ec;
    for (const auto& e : stdfs::directory_iterator(data(), ec))
        EXPECT_TRUE(store && store->site(e.path().filename().string())) << e.path() << " belongs to no site";

    int deployed = 0;
    for (const auto& line : split_lines(slurp(deploy_log())))
        if (line.find("\"action\":\"deployed\"") != std::string::npos) ++deployed;
    const std::map<std::string, long> figures{
        {"iterations", counts_.iterations},
        {"kills_during_deploy", counts_.kills_during_deploy},
        {"kills_idle", counts_.kills_idle},
        {"kills_that_wedged_the_mount", counts_.wedged},
        {"iterations_all_checks_passed", counts_.checks},
        {"writes_attempted", counts_.attempted},
        {"writes_acknowledged", counts_.acknowledged},
        {"writes_acknowledged_by_bash_echo", counts_.acknowledged_by_bash},
        {"writes_refused", counts_.refused},
        {"writes_in_flight_at_kill", counts_.in_flight_at_kill},
        {"writes_in_flight_found_committed", counts_.in_flight_committed},
        {"quiet_iterations", counts_.quiet_iterations},
        {"writes_after_kill", counts_.after_kill},
        {"sites_created", counts_.mkdirs},
        {"sites_removed", counts_.rmdirs},
        {"commits_pushed", counts_.pushes},
        {"deploys_completed", deployed},
    };
    std::cout << "crash loop (seed " << seed_ << "):";
    for (const auto& [name, value] : figures) {
        RecordProperty(name, std::to_string(value));
        std::cout << " " << name << "=" << value;
    }
    std::cout << std::endl;
    EXPECT_EQ(counts_.iterations, static_cast<long>(iterations));
    EXPECT_GT(counts_.acknowledged_by_bash, 0) << "no bash echo was acknowledged: the check says nothing of them";
}

}  // namespace
}  // namespace sitesfs::it
