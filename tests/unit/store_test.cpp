#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <toml++/toml.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>

#include "store/file_store.hpp"
#include "schemas/site_schema.hpp"
#include "tests/support/cannot_run.hpp"

namespace sitesfs {
namespace {

namespace fsys = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::chrono_literals;

std::string slurp(const fsys::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

void spit(const fsys::path& p, const std::string& text) { std::ofstream(p, std::ios::binary | std::ios::trunc) << text; }

std::string replaced(std::string text, const std::string& from, const std::string& to) {
    const size_t at = text.find(from);
    if (at == std::string::npos) ADD_FAILURE() << "no '" << from << "' in\n" << text;
    else text.replace(at, from.size(), to);
    return text;
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 1000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

mode_t mode_of(const fsys::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
}

ino_t inode_of(const fsys::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_ino;
}

// The change feed as "Kind site generation" lines. Declare it before the store it listens to.
class Events {
public:
    void listen(Store& store) {
        store.subscribe([this](const Change& c) {
            std::lock_guard lock(mu_);
            seen_.push_back(text(c));
        });
    }
    std::vector<std::string> take() {
        std::lock_guard lock(mu_);
        return std::exchange(seen_, {});
    }
    bool saw(const std::string& line) {
        std::lock_guard lock(mu_);
        return std::find(seen_.begin(), seen_.end(), line) != seen_.end();
    }

private:
    static std::string text(const Change& c) {
        static const char* const kinds[] = {"Created", "Removed", "Desired", "Actual", "Times", "Refresh"};
        return std::string(kinds[static_cast<int>(c.kind)]) + " " + c.site + " " + std::to_string(c.generation);
    }
    std::mutex mu_;
    std::vector<std::string> seen_;
};

class StoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/sitesfs-store.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
        dir_ = tmpl;
        state_ = dir_ / "state";
    }
    void TearDown() override {
        if (tmpfs_) ::umount2(dir_.c_str(), MNT_DETACH);
        fsys::remove_all(dir_);
    }

    std::unique_ptr<Store> open(bool read_only = false, ValidationPolicy policy = {}) {
        return open_file_store({state_, read_only, policy});
    }
    fsys::path file(const std::string& site) const { return state_ / "sites" / (site + ".toml"); }

    // The message of the StoreError that opening throws; fails the test when it opens.
    std::string open_error(bool read_only = false) {
        try {
            open(read_only);
        } catch (const StoreError& e) {
            return e.what();
        }
        ADD_FAILURE() << "the store opened";
        return {};
    }

    // Opening with `text` as blog's file fails with a one-line error that starts with `expected`,
    // and leaves the file as it was.
    void expect_open_fails(const std::string& text, const std::string& expected) {
        spit(file("blog"), text);
        const std::string msg = open_error();
        EXPECT_THAT(msg, StartsWith(expected));
        EXPECT_EQ(msg.find_first_of("\n\r\x1b"), std::string::npos) << msg;
        EXPECT_EQ(slurp(file("blog")), text);
    }

    std::vector<std::string> temp_files() const {
        std::vector<std::string> out;
        for (const auto& e : fsys::directory_iterator(state_ / "sites"))
            if (e.path().filename().string().find(".tmp.") != std::string::npos) out.push_back(e.path().filename());
        return out;
    }

    bool mount_tmpfs() {
        if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=64k") != 0) return false;
        tmpfs_ = true;
        return true;
    }

    fsys::path dir_;
    fsys::path state_;
    bool tmpfs_ = false;
};

TEST_F(StoreTest, CreatesWritesAndReadsBack) {
    Events events;
    auto s = open();
    events.listen(*s);
    // Listeners run without a store lock: reading the store from one must not deadlock.
    s->subscribe([&](const Change& c) { EXPECT_EQ(s->site(c.site) == nullptr, c.kind == Change::Kind::Removed); });

    const auto before = Clock::now();
    ASSERT_TRUE(s->create_site("blog").ok());
    const SiteRef fresh = s->site("blog");
    ASSERT_TRUE(fresh);
    EXPECT_EQ(fresh->name, "blog");
    EXPECT_EQ(fresh->generation, 1u);
    EXPECT_GE(fresh->created, before);
    EXPECT_EQ(fresh->field("domain").value, "");

    ASSERT_TRUE(s->write_field("blog", "domain", "  Blog.Example.com \n").ok());
    ASSERT_TRUE(s->write_field("blog", "repo", "user/blog").ok());
    const SiteRef blog = s->site("blog");
    EXPECT_EQ(blog->field("domain").value, "blog.example.com");
    EXPECT_EQ(blog->field("repo").value, "user/blog");
    EXPECT_GE(blog->field("domain").changed, fresh->created);
    EXPECT_EQ(blog->generation, 3u);
    EXPECT_EQ(fresh->field("domain").value, "") << "a record is a snapshot; writes replace it";

    ASSERT_TRUE(s->create_site("zz").ok());
    ASSERT_TRUE(s->create_site("a-site").ok());
    EXPECT_EQ(s->site_names(), (std::vector<std::string>{"a-site", "blog", "zz"}));
    EXPECT_EQ(s->site_count(), 3u);
    EXPECT_EQ(s->site("nope"), nullptr);
    EXPECT_FALSE(s->read_only());
    EXPECT_EQ(events.take(), (std::vector<std::string>{"Created blog 1", "Desired blog 2", "Desired blog 3",
                                                       "Created zz 1", "Created a-site 1"}));
}

TEST_F(StoreTest, CommittedStateSurvivesReopening) {
    SiteRef before;
    {
        auto s = open();
        ASSERT_TRUE(s->create_site("blog").ok());
        ASSERT_TRUE(s->write_field("blog", "domain", "blog.example.com www.example.com").ok());
        ASSERT_TRUE(s->write_field("blog", "repo", "https://git.example.com/blog.git").ok());
        ASSERT_TRUE(s->write_field("blog", "deploy_key_ref", "file:blog").ok());
        ActualState live;
        live.state = SiteState::live;
        live.commit = std::string(40, 'c');
        ASSERT_TRUE(s->report("blog", 4, live).ok());
        before = s->site("blog");
    }
    auto s = open();
    const SiteRef after = s->site("blog");
    ASSERT_TRUE(after);
    EXPECT_EQ(after->generation, 4u);
    EXPECT_EQ(after->created, before->created);
    for (const auto& f : site_fields()) {
        if (!is_writable(f)) continue;
        const FieldName name = FieldName::known(f.name);
        EXPECT_EQ(after->field(name).value, before->field(name).value) << f.name;
        EXPECT_EQ(after->field(name).changed, before->field(name).changed) << f.name;
    }
    EXPECT_EQ(after->actual.state, SiteState::live);
    EXPECT_EQ(after->actual.commit, std::string(40, 'c'));
    EXPECT_EQ(after->actual.generation, 4u);
    EXPECT_EQ(after->actual.changed, before->actual.changed);
    EXPECT_EQ(after->actual.updated, before->actual.updated);
    // The domain index is rebuilt too.
    ASSERT_TRUE(s->create_site("shop").ok());
    EXPECT_EQ(s->write_field("shop", "domain", "www.example.com").err, EEXIST);

    EXPECT_EQ(mode_of(state_), 0700u);
    EXPECT_EQ(mode_of(state_ / "sites"), 0700u);
    EXPECT_EQ(mode_of(file("blog")), 0640u);
}

TEST_F(StoreTest, SiteFilesHoldEveryReadWriteFieldAndParse) {
    auto s = open();
    ASSERT_TRUE(s->create_site("blog").ok());
    ASSERT_TRUE(s->write_field("blog", "branch", "main").ok());
    const std::string text = slurp(file("blog"));
    EXPECT_THAT(text, StartsWith("# sitesfs site state; written by sitesfs, change it through the mounted filesystem\n"
                                 "format = 1\nname = \"blog\"\ngeneration = 2\n"));
    const toml::table t = toml::parse(text);
    for (const auto& f : site_fields()) {
        EXPECT_EQ(t["desired"][f.name].is_string(), is_writable(f)) << f.name;
        EXPECT_EQ(t["desired_changed"][f.name].is_integer(), is_writable(f)) << f.name;
    }
    EXPECT_EQ(t["desired"]["branch"].value_or(std::string()), "main");
    for (const char* key : {"state", "commit", "error", "error_from_write", "changed", "updated", "generation"})
        EXPECT_TRUE(t["actual"][key]) << key;
}

TEST_F(StoreTest, AFailedSaveChangesNoValueAndShowsWhyInTheStatus) {
    if (!mount_tmpfs()) SITESFS_CANNOT_RUN() << "cannot mount a 64k tmpfs on " << dir_ << ": " << std::strerror(errno);
    Events events;
    auto s = open();
    events.listen(*s);
    ASSERT_TRUE(s->create_site("blog").ok());
    ASSERT_TRUE(s->write_field("blog", "domain", "blog.example.com").ok());
    const std::string before = slurp(file("blog"));
    events.take();
    {
        std::ofstream filler(dir_ / "filler", std::ios::binary);
        const std::string block(4096, 'x');
        while (filler.write(block.data(), block.size())) {
        }
    }

    const Outcome out = s->write_field("blog", "domain", "www.example.com");
    EXPECT_EQ(out.err, ENOSPC) << out.reason;
    EXPECT_EQ(out.reason, "could not save site 'blog' to " + file("blog").string() + ": No space left on device");
    EXPECT_EQ(s->site("blog")->field("domain").value, "blog.example.com");
    EXPECT_EQ(s->site("blog")->generation, 2u);
    EXPECT_EQ(slurp(file("blog")), before);
    EXPECT_EQ(temp_files(), std::vector<std::string>{});
    // Shown (in memory only) like a refusal, so `status` says why to whoever looks later.
    EXPECT_EQ(s->site("blog")->actual.error, "domain: " + out.reason);
    EXPECT_TRUE(s->site("blog")->actual.error_from_write);
    EXPECT_EQ(s->create_site("shop").err, ENOSPC);
    EXPECT_EQ(s->site("shop"), nullptr);
    EXPECT_FALSE(fsys::exists(file("shop")));
    EXPECT_EQ(events.take(), std::vector<std::string>{"Actual blog 2"});
    // A refusal is still answered and shown when it cannot be saved.
    EXPECT_EQ(s->write_field("blog", "domain", "bad..com").err, EINVAL);
    EXPECT_THAT(s->site("blog")->actual.error, HasSubstr("bad..com"));
    EXPECT_EQ(slurp(file("blog")), before);
    // So is a report: it tells what is served now, saved or not.
    ActualState live;
    live.state = SiteState::live;
    live.commit = std::string(40, 'a');
    EXPECT_EQ(s->report("blog", 2, live).err, ENOSPC);
    EXPECT_EQ(s->site("blog")->actual.commit, live.commit);
    EXPECT_EQ(events.take(), (std::vector<std::string>{"Actual blog 2", "Actual blog 2"}));
    EXPECT_EQ(slurp(file("blog")), before);

    fsys::remove(dir_ / "filler");
    ASSERT_TRUE(s->create_site("shop").ok());
    EXPECT_TRUE(s->write_field("shop", "domain", "www.example.com").ok()) << "the failed write's reservation was released";

    ASSERT_EQ(::mount(nullptr, dir_.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr), 0) << std::strerror(errno);
    const std::string shop = slurp(file("shop"));
    EXPECT_EQ(s->write_field("shop", "branch", "main").err, EROFS);
    EXPECT_THAT(s->site("shop")->actual.error, HasSubstr("Read-only file system"));
    EXPECT_EQ(s->remove_site("shop").err, EROFS);
    EXPECT_TRUE(s->site("shop"));
    EXPECT_EQ(s->site("shop")->field("branch").value, "");
    EXPECT_EQ(slurp(file("shop")), shop);
}

TEST_F(StoreTest, ABatchCreatesEachSiteWholeOrNotAtAll) {
    Events events;
    auto s = open();
    events.listen(*s);
    ASSERT_TRUE(s->create_site("old").ok());
    ASSERT_TRUE(s->write_field("old", "domain", "old.example.com").ok());
    events.take();
    const std::vector<NewSite> batch = {
        {"blog", {{"domain", " Blog.Example.com "}, {"repo", "user/blog"}, {"branch", "main"}}},
        {"shop", {{"domain", "shop.example.com"}, {"repo", "user/shop"}, {"path", "../etc"}}},
        {"docs", {{"domain", "blog.example.com"}, {"repo", "user/docs"}}},
        {"copy", {{"domain", "old.example.com"}}},
        {"old", {}},
        {"blog", {}},
        {"a b", {}},
        {"wiki", {{"colour", "blue"}}},
        {"news", {{"domain", "news.example.com"}}},
    };
    const std::vector<Outcome> out = s->create_sites(batch);
    ASSERT_EQ(out.size(), batch.size());
    EXPECT_TRUE(out[0].ok()) << out[0].reason;
    EXPECT_EQ(out[1].err, EINVAL);
    EXPECT_THAT(out[1].reason, StartsWith("path '../etc'"));
    EXPECT_EQ(out[2].err, EEXIST) << "a domain an earlier site of the batch claims";
    EXPECT_EQ(out[2].reason, "domain 'blog.example.com' is already served by site 'blog'");
    EXPECT_EQ(out[3].err, EEXIST);
    EXPECT_EQ(out[3].reason, "domain 'old.example.com' is already served by site 'old'");
    EXPECT_EQ(out[4].err, EEXIST);
    EXPECT_EQ(out[4].reason, "site 'old' already exists");
    EXPECT_EQ(out[5].err, EEXIST);
    EXPECT_EQ(out[5].reason, "site 'blog' is named twice");
    EXPECT_EQ(out[6].err, EINVAL);
    EXPECT_EQ(out[7].err, EINVAL);
    EXPECT_EQ(out[7].reason, "a site has no setting 'colour'");
    EXPECT_TRUE(out[8].ok()) << out[8].reason;

    EXPECT_EQ(s->site_names(), (std::vector<std::string>{"blog", "news", "old"}));
    const SiteRef blog = s->site("blog");
    EXPECT_EQ(blog->field("domain").value, "blog.example.com");
    EXPECT_EQ(blog->field("repo").value, "user/blog");
    EXPECT_EQ(blog->generation, 1u) << "made in one step";
    EXPECT_EQ(events.take(), (std::vector<std::string>{"Created blog 1", "Created news 1"}));
    EXPECT_EQ(temp_files(), std::vector<std::string>{});
    EXPECT_EQ(s->write_field("old", "domain", "shop.example.com").err, 0) << "a refused site claims nothing";

    s.reset();
    auto again = open();
    EXPECT_EQ(again->site_names(), (std::vector<std::string>{"blog", "news", "old"}));
    EXPECT_EQ(again->site("blog")->field("domain").value, "blog.example.com");
    EXPECT_EQ(again->write_field("old", "domain", "blog.example.com").err, EEXIST) << "claims survive reopening";
}

TEST_F(StoreTest, ABatchThatCannotBeSavedCreatesNothing) {
    if (!mount_tmpfs()) SITESFS_CANNOT_RUN() << "cannot mount a 64k tmpfs on " << dir_ << ": " << std::strerror(errno);
    auto s = open();
    {
        std::ofstream filler(dir_ / "filler", std::ios::binary);
        const std::string block(4096, 'x');
        while (filler.write(block.data(), block.size())) {
        }
    }
    std::vector<NewSite> batch;
    for (int i = 0; i < 20; ++i) batch.push_back({"site" + std::to_string(i), {{"domain", "s" + std::to_string(i) + ".example.com"}}});
    const std::vector<Outcome> out = s->create_sites(batch);
    for (const auto& o : out) EXPECT_EQ(o.err, ENOSPC) << o.reason;
    EXPECT_EQ(s->site_count(), 0u);
    EXPECT_EQ(temp_files(), std::vector<std::string>{});
    fsys::remove(dir_ / "filler");
    EXPECT_TRUE(s->create_sites(batch).front().ok()) << "the failed batch's domains were released";
}

TEST_F(StoreTest, AStoreReportsForOneHost) {
    auto named = open_file_store({state_, false, {}, "web-1"});
    EXPECT_EQ(named->host(), "web-1");
    named.reset();
    EXPECT_EQ(open()->host(), local_host_name()) << "the host name by default";
    EXPECT_FALSE(local_host_name().empty());
}

TEST_F(StoreTest, AStoreHasTheLabelsItWasGiven) {
    EXPECT_EQ(open_file_store({state_, false, {}, "web-1", {"eu", "ssd"}})->labels(), (std::vector<std::string>{"eu", "ssd"}));
    EXPECT_EQ(open()->labels(), std::vector<std::string>{});
    EXPECT_EQ(open_file_store({state_, true, {}, "web-1", {"eu"}})->labels(), std::vector<std::string>{"eu"}) << "the follower too";
}

// A state dir written before `hosts` existed has no such key: its sites load placed on every host.
TEST_F(StoreTest, ASiteFileWithoutAFieldAddedLaterLoadsItUnset) {
    {
        auto s = open();
        ASSERT_TRUE(s->create_site("blog").ok());
        ASSERT_TRUE(s->write_field("blog", "domain", "blog.example.com").ok());
    }
    std::istringstream current(slurp(file("blog")));
    std::string old;
    for (std::string line; std::getline(current, line);)
        if (!line.starts_with("hosts = ")) old += line + "\n";
    ASSERT_EQ(old.find("hosts"), std::string::npos);
    spit(file("blog"), old);
    auto s = open();
    EXPECT_EQ(s->site("blog")->field("hosts").value, "");
    EXPECT_EQ(s->site("blog")->field("domain").value, "blog.example.com");
    ASSERT_TRUE(s->write_field("blog", "hosts", "Web-1 label:EU web-1").ok());
    EXPECT_EQ(s->site("blog")->field("hosts").value, "web-1 label:eu");
}

TEST(Outcome, UnknownIsTheOneFailureThatMayHaveChangedSomething) {
    const Outcome unknown = Outcome::unknown("etcd did not answer within 5s");
    EXPECT_FALSE(unknown.ok());
    EXPECT_TRUE(unknown.unknown());
    EXPECT_EQ(unknown.err, ETIMEDOUT) << "docs/filesystem.md documents ETIMEDOUT for it";
    EXPECT_FALSE(Outcome::fail(EIO, "disk").unknown());
    EXPECT_FALSE(Outcome::success().unknown());
}

TEST_F(StoreTest, ADomainIsServedByOneSite) {
    auto s = open();
    ASSERT_TRUE(s->create_site("blog").ok());
    ASSERT_TRUE(s->create_site("shop").ok());
    ASSERT_TRUE(s->write_field("blog", "domain", "blog.example.com www.example.com").ok());

    const Outcome taken = s->write_field("shop", "domain", "shop.example.com WWW.example.com");
    EXPECT_EQ(taken.err, EEXIST);
    EXPECT_EQ(taken.reason, "domain 'www.example.com' is already served by site 'blog'");
    EXPECT_EQ(s->site("shop")->field("domain").value, "");
    EXPECT_EQ(s->site("shop")->actual.error, taken.reason);
    EXPECT_TRUE(s->site("shop")->actual.error_from_write);
    EXPECT_TRUE(s->write_field("shop", "domain", "shop.example.com").ok()) << "nothing of the refused value stays reserved";

    ASSERT_TRUE(s->write_field("blog", "domain", "blog.example.com").ok());
    EXPECT_TRUE(s->write_field("shop", "domain", "shop.example.com www.example.com").ok()) << "released by its old owner";
    ASSERT_TRUE(s->remove_site("blog").ok());
    EXPECT_TRUE(s->write_field("shop", "domain", "blog.example.com").ok()) << "released by removing its site";
    EXPECT_TRUE(s->write_field("shop", "domain", "blog.example.com www.example.com").ok()) << "a site may keep its own";
}

TEST_F(StoreTest, RacingWritersOfOneDomainHaveOneWinner) {
    auto s = open();
    constexpr int kSites = 8;
    for (int i = 0; i < kSites; ++i) ASSERT_TRUE(s->create_site("s" + std::to_string(i)).ok());
    std::atomic<int> won{0}, refused{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < kSites; ++i)
        threads.emplace_back([&, i] {
            while (!go) std::this_thread::yield();
            const Outcome o = s->write_field("s" + std::to_string(i), "domain", "www.example.com");
            (o.ok() ? won : refused) += 1;
            EXPECT_TRUE(o.ok() || o.err == EEXIST) << o.reason;
        });
    go = true;
    for (auto& t : threads) t.join();
    EXPECT_EQ(won, 1);
    EXPECT_EQ(refused, kSites - 1);
    int owners = 0;
    for (const auto& name : s->site_names()) owners += s->site(name)->field("domain").value == "www.example.com";
    EXPECT_EQ(owners, 1);
}

TEST_F(StoreTest, DifferentSitesCommitInParallelAndStayConsistent) {
    auto s = open();
    constexpr int kSites = 8, kWrites = 25;
    for (int i = 0; i < kSites; ++i) ASSERT_TRUE(s->create_site("s" + std::to_string(i)).ok());
    std::atomic<bool> done{false};
    std::thread reader([&] {
        while (!done)
            for (const auto& name : s->site_names()) EXPECT_TRUE(s->site(name));
    });
    std::vector<std::thread> writers;
    for (int i = 0; i < kSites; ++i)
        for (int w = 0; w < 2; ++w)  // two writers per site: its commits are serialized
            writers.emplace_back([&, i, w] {
                for (int n = 0; n < kWrites; ++n)
                    EXPECT_TRUE(s->write_field("s" + std::to_string(i), "branch", "b" + std::to_string(w) + "-" + std::to_string(n)).ok());
            });
    for (auto& t : writers) t.join();
    done = true;
    reader.join();
    s.reset();
    auto again = open();
    for (int i = 0; i < kSites; ++i) EXPECT_EQ(again->site("s" + std::to_string(i))->generation, 1u + 2 * kWrites);
}

TEST_F(StoreTest, WritingTheSameValueIsNoNewGeneration) {
    Events events;
    auto s = open();
    ASSERT_TRUE(s->create_site("blog").ok());
    ASSERT_TRUE(s->write_field("blog", "domain", "blog.example.com").ok());
    events.listen(*s);
    const ino_t inode = inode_of(file("blog"));
    ASSERT_TRUE(s->write_field("blog", "domain", "BLOG.example.com\n").ok()) << "the same once normalized";
    EXPECT_EQ(s->site("blog")->generation, 2u);
    EXPECT_EQ(inode_of(file("blog")), inode) << "not rewritten";
    EXPECT_EQ(events.take(), std::vector<std::string>{});

    // It does clear a refusal still shown, as any good write does.
    ASSERT_EQ(s->write_field("blog", "domain", "bad..com").err, EINVAL);
    events.take();
    ASSERT_TRUE(s->write_field("blog", "domain", "blog.example.com").ok());
    EXPECT_EQ(s->site("blog")->actual.error, "");
    EXPECT_EQ(s->site("blog")->generation, 2u);
    EXPECT_EQ(events.take(), std::vector<std::string>{"Actual blog 2"});
}

// What a refused later line of a value calls for: the value from before, unless another writer
// changed it meanwhile, and the refusal stays shown.
TEST_F(StoreTest, RestoreIsACompareAndSetThatKeepsTheRefusal) {
    auto s = open();
    ASSERT_TRUE(s->create_site("blog").ok());
    ASSERT_TRUE(s->write_field("blog", "domain", "old.example.com").ok());
    ASSERT_TRUE(s->write_field("blog", "domain", "a.example.com\n").ok());  // the first line, committed
    ASSERT_EQ(s->write_field("blog", "domain", "a.example.com\n}\n").err, EINVAL);  // the second, refused
    const std::string refusal = s->site("blog")->actual.error;
    ASSERT_THAT(refusal, HasSubstr("}"));

    const Outcome back = s->restore_field("blog", "domain", "old.example.com", "A.example.com \n");
    EXPECT_TRUE(back.ok()) << back.reason;
    EXPECT_EQ(s->site("blog")->field("domain").value, "old.example.com");
    EXPECT_EQ(s->site("blog")->actual.error, refusal);
    EXPECT_TRUE(s->site("blog")->actual.error_from_write);

    ASSERT_TRUE(s->write_field("blog", "domain", "other.example.com").ok());
    const Outcome stale = s->restore_field("blog", "domain", "old.example.com", "a.example.com");
    EXPECT_EQ(stale.err, ESTALE) << stale.reason;
    EXPECT_EQ(s->site("blog")->field("domain").value, "other.example.com");
    // Durable like any write.
    s.reset();
    EXPECT_EQ(open()->site("blog")->field("domain").value, "other.example.com");
}

TEST_F(StoreTest, AFieldsTimeIsSetKeptAndAnnouncedWithoutANewGeneration) {
    const Timestamp when = Timestamp(std::chrono::seconds(1'600'000'000)) + std::chrono::milliseconds(500);
    {
        Events events;
        auto s = open();
        events.listen(*s);
        ASSERT_TRUE(s->create_site("blog").ok());
        ASSERT_TRUE(s->write_field("blog", "branch", "main").ok());
        events.take();
        ASSERT_TRUE(s->set_field_time("blog", "branch", when).ok());
        EXPECT_EQ(s->site("blog")->field("branch").changed, when);
        EXPECT_EQ(s->site("blog")->generation, 2u);
        EXPECT_EQ(events.take(), std::vector<std::string>{"Times blog 2"});
        ASSERT_TRUE(s->set_field_time("blog", "branch", when).ok());
        EXPECT_TRUE(events.take().empty()) << "the same time is no change";
        EXPECT_EQ(s->set_field_time("blog", "status", when).err, EPERM);
    }
    auto s = open();
    EXPECT_EQ(s->site("blog")->field("branch").changed, when);
    EXPECT_EQ(s->site("blog")->field("branch").value, "main");
}

TEST_F(StoreTest, ARefreshIsAnnouncedAndARedeployIsANewGenerationOfTheSameSettings) {
    Events events;
    auto s = open();
    events.listen(*s);
    ASSERT_TRUE(s->create_site("blog").ok());
    ASSERT_TRUE(s->write_field("blog", "domain", "blog.example.com").ok());
    events.take();
    const std::string file_before = slurp(file("blog"));
    ASSERT_TRUE(s->write_field("blog", "ctl", "refresh").ok());
    EXPECT_EQ(events.take(), std::vector<std::string>{"Refresh blog 2"});
    EXPECT_EQ(s->site("blog")->generation, 2u) << "a refresh stores nothing";
    EXPECT_EQ(slurp(file("blog")), file_before);
    ASSERT_TRUE(s->write_field("blog", "ctl", "\n").ok());
    EXPECT_EQ(events.take(), std::vector<std::string>{}) << "a blank write asks nothing";
    EXPECT_TRUE(s->restore_field("blog", "ctl", "redeploy", "").ok());
    EXPECT_TRUE(events.take().empty()) << "a restore has nothing to put back and asks nothing";

    ASSERT_TRUE(s->write_field("blog", "ctl", "refresh\nredeploy\n").ok());
    EXPECT_EQ(events.take(), std::vector<std::string>{"Desired blog 3"}) << "redeploy does all refresh does";
    EXPECT_EQ(s->site("blog")->field("domain").value, "blog.example.com");

    const Outcome bad = s->write_field("blog", "ctl", "deploy");
    EXPECT_EQ(bad.err, EINVAL);
    EXPECT_EQ(s->site("blog")->actual.error, bad.reason);
    EXPECT_EQ(events.take(), std::vector<std::string>{"Actual blog 3"});
    ASSERT_TRUE(s->write_field("blog", "ctl", "refresh").ok());
    EXPECT_EQ(s->site("blog")->actual.error, "") << "a good request clears the refusal, as any good write does";
    EXPECT_EQ(events.take(), (std::vector<std::string>{"Actual blog 3", "Refresh blog 3"}));
    EXPECT_EQ(s->write_field("nope", "ctl", "refresh").err, ENOENT);
    s.reset();
    EXPECT_EQ(open()->site("blog")->generation, 3u) << "a redeploy's generation is durable";
}

TEST_F(StoreTest, ARefusalIsShownUntilTheNextGoodWrite) {
    {
        Events events;
        auto s = open();
        events.listen(*s);
        ASSERT_TRUE(s->create_site("blog").ok());
        ASSERT_TRUE(s->write_field("blog", "domain", "blog.example.com").ok());
        events.take();
        const Outcome out = s->write_field("blog", "domain", "bad..com");
        EXPECT_EQ(out.err, EINVAL);
        EXPECT_THAT(out.reason, StartsWith("domain 'bad..com': "));
        const SiteRef blog = s->site("blog");
        EXPECT_EQ(blog->field("domain").value, "blog.example.com");
        EXPECT_EQ(blog->generation, 2u);
        EXPECT_EQ(blog->actual.error, out.reason);
        EXPECT_TRUE(blog->actual.error_from_write);
        EXPECT_EQ(events.take(), std::vector<std::string>{"Actual blog 2"});
    }
    auto s = open();
    EXPECT_THAT(s->site("blog")->actual.error, HasSubstr("bad..com")) << "the refusal was saved";
    ASSERT_TRUE(s->write_field("blog", "branch", "main").ok());
    EXPECT_EQ(s->site("blog")->actual.error, "");
    EXPECT_FALSE(s->site("blog")->actual.error_from_write);

    // A report built from the record it read (a certificate refresh) carries the refusal shown
    // there: it stays the writer's, cleared by the next good write.
    ASSERT_EQ(s->write_field("blog", "domain", "bad..com").err, EINVAL);
    ActualState refreshed = s->site("blog")->actual;
    refreshed.tls = {"blog.example.com none yet"};
    ASSERT_TRUE(s->report("blog", s->site("blog")->generation, refreshed).ok());
    EXPECT_TRUE(s->site("blog")->actual.error_from_write);
    ASSERT_TRUE(s->write_field("blog", "branch", "main2").ok());
    EXPECT_EQ(s->site("blog")->actual.error, "");

    // A reconciler's error is not the writer's to clear.
    ActualState failed;
    failed.state = SiteState::failed;
    failed.error = "fetch: repository not found";
    ASSERT_TRUE(s->report("blog", 4, failed).ok());
    ASSERT_TRUE(s->write_field("blog", "branch", "dev").ok());
    EXPECT_EQ(s->site("blog")->actual.error, "fetch: repository not found");
}

TEST_F(StoreTest, MutationsNameWhatIsWrong) {
    Events events;
    auto s = open();
    events.listen(*s);
    ASSERT_TRUE(s->create_site("blog").ok());
    EXPECT_EQ(s->write_field("nope", "domain", "a.com").err, ENOENT);
    EXPECT_EQ(s->write_field("nope", "domain", "a.com").reason, "no site 'nope'");
    EXPECT_EQ(s->remove_site("nope").err, ENOENT);
    EXPECT_EQ(s->report("nope", 1, {}).err, ENOENT);
    EXPECT_EQ(s->write_field("blog", "colour", "red").err, EINVAL);
    const Outcome status = s->write_field("blog", "status", "live");
    EXPECT_EQ(status.err, EACCES);
    EXPECT_EQ(status.reason, "status is read-only");
    EXPECT_EQ(s->site("blog")->actual.error, "") << "not a refused value";
    const Outcome again = s->create_site("blog");
    EXPECT_EQ(again.err, EEXIST);
    EXPECT_EQ(again.reason, "site 'blog' already exists");
    const Outcome bad = s->create_site("Bad_Name");
    EXPECT_EQ(bad.err, EINVAL);
    EXPECT_THAT(bad.reason, HasSubstr("Bad_Name"));
    EXPECT_FALSE(fsys::exists(file("Bad_Name")));

    ASSERT_TRUE(s->write_field("blog", "branch", "main").ok());
    ASSERT_TRUE(s->remove_site("blog").ok());
    EXPECT_FALSE(fsys::exists(file("blog")));
    EXPECT_EQ(s->site("blog"), nullptr);
    ASSERT_TRUE(s->create_site("blog").ok());
    EXPECT_EQ(s->site("blog")->generation, 1u) << "a new site, not the old one back";
    EXPECT_EQ(s->site("blog")->field("branch").value, "");
    EXPECT_EQ(events.take(), (std::vector<std::string>{"Created blog 1", "Desired blog 2", "Removed blog 2", "Created blog 1"}));
}

TEST_F(StoreTest, ReconcilerReportsAreFencedByGeneration) {
    Events events;
    auto s = open();
    ASSERT_TRUE(s->create_site("blog").ok());
    ASSERT_TRUE(s->write_field("blog", "repo", "user/blog").ok());
    events.listen(*s);
    ActualState live;
    live.state = SiteState::live;
    live.commit = std::string(40, 'a');
    const auto t0 = Clock::now();
    ASSERT_TRUE(s->report("blog", 2, live).ok());
    const ActualState first = s->site("blog")->actual;
    EXPECT_EQ(first.generation, 2u);
    EXPECT_GE(first.changed, t0);
    EXPECT_EQ(first.updated, first.changed);

    ActualState stale = live;
    stale.state = SiteState::failed;
    ASSERT_TRUE(s->report("blog", 1, stale).ok()) << "ignored, not an error";
    EXPECT_EQ(s->site("blog")->actual.state, SiteState::live);

    ASSERT_TRUE(s->report("blog", 2, live).ok());
    EXPECT_EQ(s->site("blog")->actual.changed, first.changed) << "the commit did not change";
    EXPECT_GT(s->site("blog")->actual.updated, first.updated);

    ASSERT_TRUE(s->write_field("blog", "branch", "dev").ok());
    ActualState next = live;
    next.commit = std::string(40, 'b');
    ASSERT_TRUE(s->report("blog", 3, next).ok());
    EXPECT_GT(s->site("blog")->actual.changed, first.changed);
    EXPECT_EQ(s->site("blog")->actual.commit, std::string(40, 'b'));
    EXPECT_EQ(events.take(), (std::vector<std::string>{"Actual blog 2", "Actual blog 2", "Desired blog 3", "Actual blog 3"}));

    const Outcome ahead = s->report("blog", 9, live);
    EXPECT_EQ(ahead.err, EINVAL) << "a report about a generation the site never had";
    EXPECT_THAT(ahead.reason, HasSubstr("generation 3"));

    // The fence survives a restart.
    s.reset();
    s = open();
    ASSERT_TRUE(s->report("blog", 2, stale).ok());
    EXPECT_EQ(s->site("blog")->actual.commit, std::string(40, 'b'));
}

TEST_F(StoreTest, ATextThatIsNotUtf8CannotBreakTheStateFile) {
    {
        auto s = open();
        ASSERT_TRUE(s->create_site("blog").ok());
        EXPECT_EQ(s->write_field("blog", "domain", "caf\xC3\xA9\xFF..com").err, EINVAL);
        ActualState failed;
        failed.state = SiteState::failed;
        failed.error = "checkout: bad file name 'r\xE9sum\xE9.html', \"quoted\" \\ and\nnewline\x01";
        ASSERT_TRUE(s->report("blog", 1, failed).ok());
    }
    auto s = open();
    EXPECT_EQ(s->site("blog")->actual.error,
              "checkout: bad file name 'r\xEF\xBF\xBDsum\xEF\xBF\xBD.html', \"quoted\" \\ and\nnewline\x01");
}

TEST_F(StoreTest, ASyntaxErrorStopsOpeningWithFileLineAndColumn) {
    { ASSERT_TRUE(open()->create_site("blog").ok()); }
    spit(file("blog"), "format = 1\nname = \"blog\n");
    spit(state_ / "sites" / ".blog.toml.tmp.abc123", "half");
    const std::string corrupt = slurp(file("blog"));

    const std::string msg = open_error();
    EXPECT_THAT(msg, ::testing::MatchesRegex(file("blog").string() + ":2:[0-9]+: .+")) << msg;
    EXPECT_EQ(slurp(file("blog")), corrupt);
    EXPECT_TRUE(fsys::exists(state_ / "sites" / ".blog.toml.tmp.abc123")) << "a failed open changes nothing";
    EXPECT_EQ(open_error(true), msg);
}

TEST_F(StoreTest, AWrongSiteFileNamesFileAndKey) {
    {
        auto s = open();
        ASSERT_TRUE(s->create_site("blog").ok());
        ASSERT_TRUE(s->write_field("blog", "domain", "blog.example.com").ok());
    }
    const std::string good = slurp(file("blog"));
    const std::string f = file("blog").string();
    const std::pair<std::string, std::string> cases[] = {
        {replaced(good, "generation = 2\n", "generation = 'x'\n"), f + ": generation: must be a non-negative integer"},
        {replaced(good, "generation = 2\n", ""), f + ": generation: missing"},
        {replaced(good, "generation = 2\n", "generation = 2\nextra = 1\n"), f + ": extra: unknown key"},
        {replaced(good, "format = 1\n", "format = 2\n"), f + ": format: format 2 is not 1; was it written by a newer sitesfs?"},
        {replaced(good, "name = \"blog\"", "name = \"shop\""), f + ": name: 'shop' does not match the file name"},
        {replaced(good, "\"blog.example.com\"", "\"a..b\""), f + ": desired.domain: domain 'a..b': "},
        {replaced(good, "\"blog.example.com\"", "\"BLOG.example.com\""), f + ": desired.domain: 'BLOG.example.com' is not in normal form"},
        {replaced(good, "[desired]\n", "[desired]\ncolour = \"red\"\n"), f + ": desired.colour: unknown key"},
        {replaced(good, "error_from_write = false", "error_from_write = 0"), f + ": actual.error_from_write: must be true or false"},
        {replaced(good, "state = \"\"\n", ""), f + ": actual.state: missing"},
        {replaced(good, "[actual]\n", "[actual]\nx = 1\n"), f + ": actual.x: unknown key"},
    };
    for (const auto& [text, expected] : cases) expect_open_fails(text, expected);

    // A domain in two files.
    spit(file("blog"), good);
    spit(file("shop"), replaced(good, "name = \"blog\"", "name = \"shop\""));
    EXPECT_THAT(open_error(), HasSubstr(": desired.domain: domain 'blog.example.com' is also served by site '"));
    fsys::remove(file("shop"));

    // A local repo loads without --allow-local-repos: a read-only monitor must read what the writer took.
    spit(file("blog"), replaced(good, "repo = \"\"", "repo = \"/srv/git/blog.git\""));
    EXPECT_EQ(open()->site("blog")->field("repo").value, "/srv/git/blog.git");
}

// Found by fuzz_state_file: [actual] values were loaded unchecked, and the reconciler puts the
// served commit, domains and path into the proxy config at start; and errors quoted the file's
// text raw, newlines included, into the one-line start-up error.
TEST_F(StoreTest, ActualValuesAreCheckedOnLoadAndErrorsAreOneLine) {
    {
        auto s = open();
        ASSERT_TRUE(s->create_site("blog").ok());
        ActualState live;
        live.state = SiteState::live;
        live.commit = std::string(40, 'b');
        live.domain = "old.example.com";
        live.path = "public";
        ASSERT_TRUE(s->report("blog", 1, live).ok());
    }
    const std::string good = slurp(file("blog"));
    const std::string f = file("blog").string();
    const std::string commit = "commit = \"" + std::string(40, 'b') + "\"";
    const std::pair<std::string, std::string> cases[] = {
        {replaced(good, commit, "commit = \"{$SECRET}\""), f + ": actual.commit: '{$SECRET}' is not a 40-digit"},
        {replaced(good, commit, "commit = \"0123456\""), f + ": actual.commit: '0123456' is not a 40-digit"},
        {replaced(good, commit, "commit = \"" + std::string(40, 'B') + "\""), f + ": actual.commit: 'BBBB"},
        {replaced(good, "\"old.example.com\"", "\"old.example.com\\nwww.example.com\""),
         f + ": actual.domain: 'old.example.com\\nwww.example.com' is not in normal form"},
        {replaced(good, "\"old.example.com\"", "\"old.example.com {\""), f + ": actual.domain: domain '{': "},
        {replaced(good, "\"old.example.com\"", "\"Old.example.com\""), f + ": actual.domain: 'Old.example.com' is not in normal form"},
        {replaced(good, "path = \"public\"", "path = \"../../etc\""), f + ": actual.path: path '../../etc': "},
        {replaced(good, "state = \"live\"", "state = \"live\\u001b[31m\""), f + ": actual.state: 'live\\x1b[31m' is not one of"},
        {replaced(good, "state = \"live\"", "state = \"gone\""), f + ": actual.state: 'gone' is not one of"},
        {replaced(good, "name = \"blog\"", "name = \"blog\\nx\""), f + ": name: 'blog\\nx' does not match the file name"},
        {replaced(good, "error_from_write = false", "error_from_write = fa\n"), f + ":"},
    };
    for (const auto& [text, expected] : cases) expect_open_fails(text, expected);
    spit(file("blog"), good);
    EXPECT_EQ(open()->site("blog")->actual.domain, "old.example.com");
}

TEST_F(StoreTest, OneReadWriteStorePerStateDir) {
    auto first = open();
    EXPECT_EQ(open_error(), "state dir " + state_.string() + " is in use by another read-write sitesfs");
    EXPECT_TRUE(open(true)) << "read-only stores take no lock";
    first.reset();
    EXPECT_TRUE(open());
}

TEST_F(StoreTest, LeftoverTempFilesGoWhenAReadWriteStoreOpens) {
    { ASSERT_TRUE(open()->create_site("blog").ok()); }
    const auto temp = state_ / "sites" / ".blog.toml.tmp.abc123";
    spit(temp, "half a fil");
    { open(true); }
    EXPECT_TRUE(fsys::exists(temp)) << "a read-only store writes nothing";
    auto s = open();
    EXPECT_FALSE(fsys::exists(temp));
    EXPECT_TRUE(s->site("blog"));
    EXPECT_EQ(s->site_count(), 1u);
}

TEST_F(StoreTest, AReadOnlyStoreNeedsAnExistingStateDirAndCreatesNothing) {
    EXPECT_EQ(open_error(true),
              (state_ / "sites").string() + " does not exist: start a read-write sitesfs on this state dir first");
    EXPECT_FALSE(fsys::exists(state_));
}

TEST_F(StoreTest, AReadOnlyStoreFollowsTheWriterAndRefusesMutations) {
    auto rw = open();
    ASSERT_TRUE(rw->create_site("blog").ok());
    Events events;
    auto ro = open(true);
    events.listen(*ro);
    EXPECT_TRUE(ro->read_only());
    ASSERT_TRUE(ro->site("blog"));

    for (const Outcome& o : {ro->write_field("blog", "domain", "a.com"), ro->create_site("x"), ro->remove_site("blog"),
                             ro->report("blog", 1, {})}) {
        EXPECT_EQ(o.err, EROFS);
        EXPECT_EQ(o.reason, "this mount is read-only");
    }

    ASSERT_TRUE(rw->write_field("blog", "domain", "blog.example.com").ok());
    ASSERT_TRUE(rw->create_site("shop").ok());
    ActualState live;
    live.state = SiteState::live;
    ASSERT_TRUE(rw->report("blog", 2, live).ok());
    EXPECT_TRUE(eventually([&] {
        return ro->site("shop") && ro->site("blog")->field("domain").value == "blog.example.com" &&
               ro->site("blog")->actual.state == SiteState::live;
    }));
    EXPECT_TRUE(events.saw("Created shop 1"));
    EXPECT_TRUE(events.saw("Desired blog 2"));
    EXPECT_TRUE(events.saw("Actual blog 2"));

    ASSERT_TRUE(rw->remove_site("shop").ok());
    EXPECT_TRUE(eventually([&] { return !ro->site("shop"); }));
    EXPECT_TRUE(events.saw("Removed shop 1"));
    EXPECT_EQ(ro->site_names(), std::vector<std::string>{"blog"});

    // A file it cannot read is logged; the last good state stays.
    const auto temp = state_ / "sites" / ".blog.toml.edit";
    spit(temp, "format = [\n");
    fsys::rename(temp, file("blog"));
    std::this_thread::sleep_for(100ms);
    ASSERT_TRUE(ro->site("blog"));
    EXPECT_EQ(ro->site("blog")->field("domain").value, "blog.example.com");
    ASSERT_TRUE(rw->write_field("blog", "branch", "main").ok());
    EXPECT_TRUE(eventually([&] { return ro->site("blog")->field("branch").value == "main"; }));
}

}  // namespace
}  // namespace sitesfs
