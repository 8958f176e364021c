#include <gtest/gtest.h>
#include <sys/mount.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "schemas/file_store.hpp"
#include "schemas/seed_format.hpp"

namespace sitesfs {
namespace {

namespace fsys = std::filesystem;

std::string slurp(const fsys::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

class StoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/sitesfs-store.XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        if (tmpfs_) umount2(dir_.c_str(), MNT_DETACH);
        fsys::remove_all(dir_);
    }
    std::unique_ptr<Store> open(bool read_only = false) { return open_file_store({dir_, read_only, {}}); }
    fsys::path file(const std::string& site) const { return dir_ / "sites" / (site + ".toml"); }

    fsys::path dir_;
    bool tmpfs_ = false;
};

TEST_F(StoreTest, CommittedWritesSurviveReopening) {
    {
        auto s = open();
        ASSERT_TRUE(s->create_site("blog").ok());
        ASSERT_TRUE(s->write_field("blog", "domain", "  Blog.Example.com \n").ok());
        ASSERT_TRUE(s->write_field("blog", "repo", "user/blog").ok());
    }
    auto s = open();
    auto blog = s->site("blog");
    ASSERT_TRUE(blog);
    EXPECT_EQ(blog->field("domain").value, "blog.example.com");
    EXPECT_EQ(blog->field("repo").value, "user/blog");
    EXPECT_EQ(blog->generation, 3u);
    EXPECT_EQ(s->site_names(), std::vector<std::string>{"blog"});
}

TEST_F(StoreTest, RefusalsChangeNothingAndLandInStatus) {
    auto s = open();
    ASSERT_TRUE(s->create_site("blog").ok());
    ASSERT_TRUE(s->write_field("blog", "domain", "blog.example.com").ok());
    const std::string before = slurp(file("blog"));
    const auto gen = s->site("blog")->generation;
    const Outcome out = s->write_field("blog", "domain", "bad..com");
    EXPECT_EQ(out.err, EINVAL);
    EXPECT_EQ(s->site("blog")->field("domain").value, "blog.example.com");
    EXPECT_EQ(s->site("blog")->generation, gen);
    EXPECT_NE(s->site("blog")->actual.error.find("bad..com"), std::string::npos);
    ASSERT_TRUE(s->write_field("blog", "branch", "main").ok());
    EXPECT_EQ(s->site("blog")->actual.error, "") << "a good write clears a refusal";
    EXPECT_NE(before, slurp(file("blog")));
    EXPECT_EQ(s->write_field("blog", "status", "x").err, EACCES);
    EXPECT_EQ(s->write_field("nope", "domain", "a.com").err, ENOENT);
    EXPECT_EQ(s->create_site("blog").err, EEXIST);
    EXPECT_EQ(s->create_site("Bad").err, EINVAL);
}

TEST_F(StoreTest, IdempotentWriteKeepsTheGeneration) {
    auto s = open();
    ASSERT_TRUE(s->create_site("blog").ok());
    ASSERT_TRUE(s->write_field("blog", "branch", "main").ok());
    const auto gen = s->site("blog")->generation;
    ASSERT_TRUE(s->write_field("blog", "branch", "main\n").ok());
    EXPECT_EQ(s->site("blog")->generation, gen);
}

TEST_F(StoreTest, ADomainBelongsToOneSiteEvenUnderRacingWriters) {
    auto s = open();
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(s->create_site("s" + std::to_string(i)).ok());
    std::atomic<int> won{0}, exists{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i)
        threads.emplace_back([&, i] {
            const Outcome o = s->write_field("s" + std::to_string(i), "domain", "www.example.com");
            (o.ok() ? won : exists) += 1;
            if (!o.ok()) EXPECT_EQ(o.err, EEXIST);
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(won, 1);
    EXPECT_EQ(exists, 7);
    // Freed when its owner lets go.
    for (int i = 0; i < 8; ++i) s->write_field("s" + std::to_string(i), "domain", "");
    EXPECT_TRUE(s->write_field("s3", "domain", "www.example.com").ok());
}

TEST_F(StoreTest, AFailedSaveLeavesMemoryAndDiskUnchanged) {
    fsys::create_directories(dir_);
    if (mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=64k") != 0) GTEST_SKIP() << "cannot mount a tmpfs: " << strerror(errno);
    tmpfs_ = true;
    auto s = open();
    ASSERT_TRUE(s->create_site("blog").ok());
    ASSERT_TRUE(s->write_field("blog", "domain", "blog.example.com").ok());
    const std::string before = slurp(file("blog"));
    {
        std::ofstream filler(dir_ / "filler", std::ios::binary);
        const std::string block(4096, 'x');
        while (filler.write(block.data(), block.size())) {
        }
    }
    const Outcome out = s->write_field("blog", "domain", "www.example.com");
    EXPECT_EQ(out.err, ENOSPC) << out.reason;
    EXPECT_NE(out.reason.find("blog"), std::string::npos);
    EXPECT_EQ(s->site("blog")->field("domain").value, "blog.example.com");
    EXPECT_EQ(slurp(file("blog")), before);
    for (const auto& e : fsys::directory_iterator(dir_ / "sites"))
        EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

TEST_F(StoreTest, CorruptFilesStopOpeningAndStayUntouched) {
    { open()->create_site("blog"); }
    std::ofstream(file("blog")) << "format = 1\nname = \"blog\n";
    const std::string before = slurp(file("blog"));
    try {
        open();
        FAIL() << "opened a corrupt store";
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find(file("blog").string() + ":2:"), std::string::npos) << e.what();
    }
    EXPECT_EQ(slurp(file("blog")), before);
    std::ofstream(file("blog"), std::ios::trunc) << "format = 1\nname = 'blog'\ngeneration = 'x'\n";
    EXPECT_THROW(
        {
            try {
                open();
            } catch (const StoreError& e) {
                EXPECT_NE(std::string(e.what()).find("generation"), std::string::npos) << e.what();
                throw;
            }
        },
        StoreError);
}

TEST_F(StoreTest, HandEditedInvalidValuesAreRefusedAtOpen) {
    {
        auto s = open();
        s->create_site("blog");
        s->write_field("blog", "domain", "blog.example.com");
    }
    std::string text = slurp(file("blog"));
    text.replace(text.find("blog.example.com"), 16, "a.com}\\nimport");
    std::ofstream(file("blog"), std::ios::trunc) << text;
    try {
        open();
        FAIL();
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("desired.domain"), std::string::npos) << e.what();
    }
}

TEST_F(StoreTest, OneReadWriteStorePerStateDir) {
    auto first = open();
    try {
        open();
        FAIL();
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos);
    }
}

TEST_F(StoreTest, LeftoverTempFilesAreRemovedAtOpen) {
    { open()->create_site("blog"); }
    std::ofstream(dir_ / "sites" / ".blog.toml.tmp.abc123") << "half";
    auto s = open();
    EXPECT_FALSE(fsys::exists(dir_ / "sites" / ".blog.toml.tmp.abc123"));
    EXPECT_TRUE(s->site("blog"));
}

TEST_F(StoreTest, ReadOnlyStoreFollowsTheWriterAndRefusesMutations) {
    auto rw = open();
    ASSERT_TRUE(rw->create_site("blog").ok());
    auto ro = open(true);
    std::atomic<int> changes{0};
    ro->subscribe([&](const Change&) { ++changes; });
    EXPECT_EQ(ro->write_field("blog", "domain", "a.com").err, EROFS);
    EXPECT_EQ(ro->create_site("x").err, EROFS);
    ASSERT_TRUE(rw->write_field("blog", "domain", "blog.example.com").ok());
    ASSERT_TRUE(rw->create_site("shop").ok());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (std::chrono::steady_clock::now() < deadline &&
           !(ro->site("shop") && ro->site("blog")->field("domain").value == "blog.example.com"))
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(ro->site("blog")->field("domain").value, "blog.example.com");
    EXPECT_TRUE(ro->site("shop"));
    ASSERT_TRUE(rw->remove_site("shop").ok());
    const auto gone = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (std::chrono::steady_clock::now() < gone && ro->site("shop")) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_FALSE(ro->site("shop"));
    EXPECT_GE(changes, 3);
}

TEST_F(StoreTest, OlderReconcileReportsAreFenced) {
    auto s = open();
    s->create_site("blog");
    ActualState live;
    live.state = "live";
    live.commit = std::string(40, 'a');
    ASSERT_TRUE(s->report("blog", 5, live).ok());
    ActualState old = live;
    old.state = "failed";
    ASSERT_TRUE(s->report("blog", 4, old).ok());
    EXPECT_EQ(s->site("blog")->actual.state, "live");
}

TEST_F(StoreTest, SeedImportTakesWholeSitesAndReportsRefusals) {
    auto s = open();
    const fsys::path seed = dir_ / "sites.toml";
    std::ofstream(seed) << R"([global]
root = "/srv/www"
caddyfile = "/etc/caddy/sites.caddy"
log = "/var/log/deploy.log"

[sites.blog]
domain = "blog.example.com"
repo = "user/blog"
branch = "main"
deploy_key = "blog-key"

[sites.shop]
domain = "bad..com"
repo = "user/shop"
branch = "main"

[sites.Bad_Name]
domain = "x.example.com"
repo = "user/x"
branch = "main"
)";
    const ImportReport r = import_seed_toml(*s, seed);
    ASSERT_EQ(r.taken.size(), 1u);
    EXPECT_EQ(r.taken[0].rfind("blog:", 0), 0u);
    ASSERT_EQ(r.refused.size(), 2u);
    EXPECT_NE(r.refused[0].find("Bad_Name"), std::string::npos);
    EXPECT_NE(r.refused[1].find("bad..com"), std::string::npos);
    EXPECT_EQ(r.notes.size(), 3u);
    EXPECT_FALSE(s->site("shop")) << "a site is taken whole or not at all";
    EXPECT_EQ(s->site("blog")->field("deploy_key_ref").value, "cmd:blog-key");

    const std::string exported = export_seed_toml(*s, {"/var/lib/sites", "/etc/caddy/sites.conf", "/st/deploy.log"});
    EXPECT_EQ(exported,
              "# exported by sitesfs; the seed tool's sites.toml format\n[global]\nroot = '/var/lib/sites'\n"
              "caddyfile = '/etc/caddy/sites.conf'\nlog = '/st/deploy.log'\n\n[sites.blog]\n"
              "domain = 'blog.example.com'\nrepo = 'user/blog'\nbranch = 'main'\ndeploy_key = 'blog-key'\n");

    // Round trip into a fresh store.
    const fsys::path other = dir_ / "other";
    std::ofstream(dir_ / "exported.toml") << exported;
    auto fresh = open_file_store({other, false, {}});
    EXPECT_TRUE(import_seed_toml(*fresh, dir_ / "exported.toml").refused.empty());
    for (const char* f : {"domain", "repo", "branch", "deploy_key_ref"})
        EXPECT_EQ(fresh->site("blog")->field(f).value, s->site("blog")->field(f).value) << f;
}

TEST_F(StoreTest, SeedSyntaxErrorsNameFileLineAndColumn) {
    auto s = open();
    std::ofstream(dir_ / "bad.toml") << "[sites.blog]\ndomain = \n";
    try {
        import_seed_toml(*s, dir_ / "bad.toml");
        FAIL();
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("bad.toml:2:"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace sitesfs
