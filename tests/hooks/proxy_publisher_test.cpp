// The proxy publisher's group commit, against a stand-in proxy: a renderer that writes one line
// per site, a validator that refuses any site named "bad*", and a reloader that takes a while and
// can be told how its next reloads fail. The real Caddy path is covered by proxy.* and
// integration.Deploy*.
#include "hooks/proxy_publisher.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>
#include <utility>

namespace sitesfs::hooks {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

std::string slurp(const stdfs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

class LineConfig : public ProxyConfig {
public:
    explicit LineConfig(stdfs::path file) { options_.file = std::move(file); }
    std::string render(const std::vector<ProxySite>& sites) const override {
        std::string out;
        for (const auto& s : sites) out += s.site + " " + s.commit + "\n";
        return out;
    }
    void validate(const stdfs::path& candidate) const override {
        ++validations;
        for (std::istringstream in(slurp(candidate)); !in.eof();) {
            std::string line;
            std::getline(in, line);
            if (line.starts_with("bad")) throw ProxyError("refused " + line.substr(0, line.find(' ')));
        }
    }
    const ProxyOptions& options() const override { return options_; }
    mutable std::atomic<int> validations{0};

private:
    ProxyOptions options_;
};

class SlowReloader : public Reloader {
public:
    SlowReloader(const stdfs::path& file, std::vector<std::string>& loaded) : file_(file), loaded_(loaded) {}
    void reload() override {
        std::this_thread::sleep_for(30ms);
        if (during_next) std::exchange(during_next, nullptr)();
        if (!failures.empty()) {
            const ReloadError failure = failures.front();
            failures.pop_front();
            throw failure;
        }
        loaded_.push_back(slurp(file_));  // what the proxy runs after this reload
    }
    std::string describe() const override { return "test reload"; }
    // How the next reloads fail, in order; once it is empty they succeed. The publisher reloads
    // from one thread at a time, and the tests set these while nothing publishes.
    std::deque<ReloadError> failures;
    std::function<void()> during_next;  // runs inside the next reload

private:
    stdfs::path file_;
    std::vector<std::string>& loaded_;
};

class Publisher : public ::testing::Test {
protected:
    void SetUp() override {
        char dir[] = "/tmp/sitesfs-publisher-XXXXXX";
        ASSERT_NE(mkdtemp(dir), nullptr);
        dir_ = dir;
        auto config = std::make_unique<LineConfig>(dir_ / "sites.conf");
        auto reloader = std::make_unique<SlowReloader>(dir_ / "sites.conf", loaded_);
        config_ = config.get();
        reloader_ = reloader.get();
        publisher_ = std::make_unique<ProxyPublisher>(std::move(config), std::move(reloader));
    }
    void TearDown() override {
        publisher_.reset();
        stdfs::remove_all(dir_);
    }
    static ProxySite site(const std::string& name, const std::string& commit = "c1") {
        return ProxySite{name, {name + ".test"}, "/srv/" + name, commit};
    }
    // Publishes every change from a thread of its own, all at once; results in the same order.
    std::vector<PublishResult> together(const std::vector<ProxyChange>& changes) {
        std::vector<PublishResult> results(changes.size());
        std::vector<std::thread> threads;
        for (size_t i = 0; i < changes.size(); ++i)
            threads.emplace_back([&, i] { results[i] = publisher_->publish(changes[i]); });
        for (auto& t : threads) t.join();
        return results;
    }
    int reloads() const {
        const std::string m = publisher_->metrics();
        const std::string key = "\nsitesfs_proxy_reloads_total ";
        return std::stoi(m.substr(m.find(key) + key.size()));
    }

    stdfs::path dir_;
    std::vector<std::string> loaded_;
    LineConfig* config_ = nullptr;
    SlowReloader* reloader_ = nullptr;
    std::unique_ptr<ProxyPublisher> publisher_;
};

TEST_F(Publisher, ChangesThatArriveTogetherShareReloads) {
    std::vector<ProxyChange> changes;
    for (int i = 0; i < 40; ++i) changes.push_back({"s" + std::to_string(i), site("s" + std::to_string(i))});
    const auto results = together(changes);
    for (const auto& r : results) {
        EXPECT_TRUE(r.ok) << r.step << ": " << r.error;
        EXPECT_TRUE(r.changed);
        EXPECT_FALSE(r.previous);
    }
    // While one batch reloads (30 ms) the others queue up: far fewer reloads than changes.
    RecordProperty("reloads_for_40_changes", reloads());
    EXPECT_GE(reloads(), 1);
    EXPECT_LT(reloads(), 40);
    ASSERT_FALSE(loaded_.empty());
    EXPECT_EQ(std::count(loaded_.back().begin(), loaded_.back().end(), '\n'), 40) << "the proxy ends with every site";
    for (int i = 0; i < 40; ++i) EXPECT_TRUE(publisher_->serves("s" + std::to_string(i)));
}

TEST_F(Publisher, ABadSiteInABatchFailsAloneAndTheOthersGoLive) {
    // Keep the publisher busy so that the next changes form one batch behind it.
    std::thread first([&] { EXPECT_TRUE(publisher_->publish({"first", site("first")}).ok); });
    std::this_thread::sleep_for(10ms);
    const auto results = together({{"a", site("a")}, {"bad", site("bad")}, {"b", site("b")}});
    first.join();
    EXPECT_TRUE(results[0].ok) << results[0].error;
    EXPECT_FALSE(results[1].ok);
    EXPECT_EQ(results[1].step, "proxy");
    EXPECT_EQ(results[1].error, "refused bad");
    EXPECT_TRUE(results[2].ok) << results[2].error;
    EXPECT_FALSE(publisher_->serves("bad"));
    const std::string live = slurp(dir_ / "sites.conf");
    EXPECT_EQ(live.find("bad"), std::string::npos) << live;
    EXPECT_NE(live.find("a c1"), std::string::npos) << live;
    EXPECT_NE(live.find("b c1"), std::string::npos) << live;
}

const ReloadError kRefused("the proxy said no", RunningConfig::unchanged);
const ReloadError kUnanswered("no answer within 30s", RunningConfig::unknown);

TEST_F(Publisher, AFailedReloadFailsTheBatchAndPutsThePreviousConfigBack) {
    ASSERT_TRUE(publisher_->publish({"a", site("a", "old")}).ok);
    const std::string before = slurp(dir_ / "sites.conf");
    // Putting the old file back needs a reload too, and that one fails here as well; the first
    // was refused, so the proxy never left the old config. Enough failures for the changes
    // arriving as one batch or as two.
    reloader_->failures = {kRefused, kRefused, kRefused, kRefused};
    const auto results = together({{"a", site("a", "new")}, {"b", site("b")}});
    for (const auto& r : results) {
        EXPECT_FALSE(r.ok);
        EXPECT_EQ(r.step, "reload");
        EXPECT_EQ(r.error, "the proxy said no; the previous config file is back and still in force (a refused reload "
                           "leaves the running config as it was)");
    }
    EXPECT_EQ(slurp(dir_ / "sites.conf"), before);
    EXPECT_FALSE(publisher_->serves("b"));
    reloader_->failures.clear();
    const PublishResult again = publisher_->publish({"b", site("b")});
    EXPECT_TRUE(again.ok) << again.error;
    EXPECT_EQ(slurp(dir_ / "sites.conf"), "a old\nb c1\n") << "a's failed change did not stay behind";
}

TEST_F(Publisher, AFailedReloadWhoseRetryWorksSaysThePreviousConfigIsInForce) {
    ASSERT_TRUE(publisher_->publish({"a", site("a", "old")}).ok);
    const std::string before = slurp(dir_ / "sites.conf");
    for (const ReloadError& first : {kRefused, kUnanswered}) {
        reloader_->failures = {first};
        const PublishResult r = publisher_->publish({"a", site("a", "new")});
        EXPECT_FALSE(r.ok);
        EXPECT_EQ(r.error, std::string(first.what()) + "; the previous config was put back and is in force");
        EXPECT_EQ(loaded_.back(), before) << "the retry loaded the previous file";
    }
}

// The first reload may have gone through late, and the one that would have undone it failed.
TEST_F(Publisher, AnUnansweredReloadWhoseRetryFailsSaysTheNewConfigMayRun) {
    ASSERT_TRUE(publisher_->publish({"a", site("a", "old")}).ok);
    const std::string before = slurp(dir_ / "sites.conf");
    reloader_->failures = {kUnanswered, kRefused};
    const PublishResult r = publisher_->publish({"a", site("a", "new")});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.step, "reload");
    EXPECT_EQ(r.error, "no answer within 30s; the previous config file is back, but reloading it failed too (the proxy "
                       "said no): the proxy may run the new config until the next reload succeeds");
    EXPECT_EQ(slurp(dir_ / "sites.conf"), before);
}

TEST_F(Publisher, APreviousConfigThatCannotBePutBackSaysTheFileHoldsTheNewConfig) {
    ASSERT_TRUE(publisher_->publish({"a", site("a", "old")}).ok);
    const stdfs::path moved = dir_.string() + ".moved";
    // Without its directory the previous file cannot be written back.
    reloader_->during_next = [&] { stdfs::rename(dir_, moved); };
    reloader_->failures = {kRefused};
    const int reloads_before = reloads();
    const PublishResult r = publisher_->publish({"a", site("a", "new")});
    stdfs::rename(moved, dir_);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error, "the proxy said no; the previous config could not be put back (cannot create a temp file next to " +
                           (dir_ / "sites.conf").string() + ": No such file or directory): the file holds the new config");
    EXPECT_EQ(slurp(dir_ / "sites.conf"), "a new\n");
    EXPECT_EQ(reloads(), reloads_before + 1) << "nothing to reload when the file could not be put back";
}

TEST_F(Publisher, AnUnchangedEntryNeitherSwapsNorReloadsAndRemovalReportsThePrevious) {
    ASSERT_TRUE(publisher_->publish({"a", site("a")}).ok);
    const int reloads_before = reloads();
    const int validations_before = config_->validations;
    const PublishResult same = publisher_->publish({"a", site("a")});
    EXPECT_TRUE(same.ok);
    EXPECT_FALSE(same.changed);
    EXPECT_EQ(reloads(), reloads_before);
    EXPECT_EQ(config_->validations, validations_before);
    const PublishResult gone = publisher_->publish({"a", std::nullopt});
    EXPECT_TRUE(gone.ok);
    EXPECT_TRUE(gone.changed);
    ASSERT_TRUE(gone.previous);
    EXPECT_EQ(gone.previous->commit, "c1");
    EXPECT_FALSE(publisher_->serves("a"));
}

}  // namespace
}  // namespace sitesfs::hooks
