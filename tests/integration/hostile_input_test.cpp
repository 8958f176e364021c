// The hostile input corpus (tests/hostile/) written through a real mount, the way a person or a
// script would: every case fails its write() with EINVAL and changes nothing a reader can see.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "tests/integration/mount_fixture.hpp"
#include "tests/support/hostile_corpus.hpp"

namespace sitesfs::it {
namespace {

// The values the site holds before the corpus is thrown at it; all valid, all different from
// any case.
const std::map<std::string, std::string> kGood{
    {"repo", "https://github.com/user/blog"}, {"domain", "blog.example.com www.blog.example.com"},
    {"branch", "main"},                       {"path", "public"},
    {"deploy_key_ref", "file:blog"},          {"commit", "abc1234"},
    {"check", "/en/ Welcome"},                {"hosts", "web-1 label:eu"},
    {"routing", "spa"},                       {"aliases", "redirect"},
    {"auth_ref", "file:staff"},               {"submodules", "recursive"},
    // This mount's config defines no builders, so no name would do.
    {"build", ""},
};

std::string shown(const std::string& v) {
    std::string out;
    for (unsigned char c : v) {
        if (c >= 0x20 && c < 0x7f) out += static_cast<char>(c);
        else out += "\\x" + std::string(1, "0123456789abcdef"[c >> 4]) + "0123456789abcdef"[c & 15];
    }
    return out.size() > 100 ? out.substr(0, 100) + "..." : out;
}

class HostileInput : public MountTest {
protected:
    void SetUp() override {
        autostart_ = false;
        ASSERT_NO_FATAL_FAILURE(MountTest::SetUp());
        // Without --allow-local-repos, as a mount runs by default: file:// and paths are refused.
        ASSERT_NO_FATAL_FAILURE(start({}, false));
        ASSERT_EQ(::mkdir((mnt() / "blog").c_str(), 0755), 0) << std::strerror(errno);
        for (const auto& [field, value] : kGood) ASSERT_EQ(write_errno("blog/" + field, value + "\n"), 0) << field;
    }

    // A refusal leaves its reason in `status` as one `error:` line; a reason with a newline in it
    // could forge other lines.
    ::testing::AssertionResult status_is_well_formed() const {
        static const std::set<std::string> keys{"state", "commit", "desired", "key", "generation", "updated", "retry", "tls", "error"};
        const std::string status = read("blog/status");
        for (const auto& line : split_lines(status))
            if (!keys.contains(line.substr(0, line.find(':'))))
                return ::testing::AssertionFailure() << "status has a forged line '" << shown(line) << "':\n" << status;
        return ::testing::AssertionSuccess();
    }
};

// A value as its file reads: a list one item a line (domain, hosts), then a newline.
std::string as_read(const std::string& field, std::string value) {
    if (field == "domain" || field == "hosts") std::replace(value.begin(), value.end(), ' ', '\n');
    return value + "\n";
}

// One write() of the case and a newline, so the value is checked at that write (docs/filesystem.md).
TEST_F(HostileInput, EveryFieldCaseFailsItsWriteAndChangesNothing) {
    const std::string export_before = read(".sites.toml");
    int written = 0;
    for (const auto& [field, file] : corpus::kFieldFiles) {
        const std::string rel = std::string("blog/") + field;
        // `commit` reads what is served (nothing here: no reconciler); its pin shows in `desired:`.
        const std::string before = read(rel);
        const std::string desired = status_line("blog", "desired");
        ASSERT_EQ(before, field == std::string("commit") ? "\n" : as_read(field, kGood.at(field)));
        for (const auto& k : corpus::load(file)) {
            ++written;
            const int err = write_errno(rel, k.value + "\n");
            EXPECT_EQ(err, EINVAL) << k.source << " '" << shown(k.value) << "': " << std::strerror(err);
            // Read-write fields are read with direct I/O (docs/filesystem.md), so O_TRUNC's size 0
            // in the kernel never shows: the value reads back whole right after a refusal.
            EXPECT_EQ(read(rel), before) << k.source << ": the value changed";
            EXPECT_EQ(status_line("blog", "desired"), desired) << k.source;
            EXPECT_TRUE(status_is_well_formed()) << k.source;
        }
    }
    // The kernel's cached copies are dropped from a thread of sitesfs' own: once status shows the
    // last refusal, every read is fresh and must still give the values set up.
    const std::string last = std::end(corpus::kFieldFiles)[-1].field;
    EXPECT_TRUE(eventually([&] { return status_line("blog", "error").starts_with(last + " '"); }, 5s)) << read("blog/status");
    for (const auto& [field, value] : kGood) {
        if (field != "commit") {
            EXPECT_EQ(read("blog/" + field), as_read(field, value));
        }
    }
    EXPECT_EQ(status_line("blog", "desired"), "commit abc1234");
    EXPECT_EQ(read(".sites.toml"), export_before);
    RecordProperty("cases_written", written);
    EXPECT_GT(written, 500);
}

// "." and ".." always exist for the kernel; everything else reaches the daemon, which says EINVAL.
int expected_mkdir_errno(const std::string& name) { return name == "." || name == ".." ? EEXIST : EINVAL; }

TEST_F(HostileInput, EverySiteNameFailsItsMkdir) {
    const std::string export_before = read(".sites.toml");
    const auto listing = [&] {
        std::set<std::string> names;
        for (const auto& e : stdfs::directory_iterator(mnt())) names.insert(e.path().filename());
        return names;
    };
    const auto sites_before = listing();
    int made = 0, unreachable = 0;
    for (const auto& k : corpus::load("site_name.txt")) {
        // A '/' splits the path and a NUL ends it before the kernel asks sitesfs; mkdir(2) would
        // test path resolution (or create "../x" next to the mount), not sitesfs.
        if (k.value.find_first_of(std::string("/\0", 2)) != std::string::npos) {
            ++unreachable;
            continue;
        }
        ++made;
        const int rc = ::mkdir((mnt() / k.value).c_str(), 0755);
        const int err = rc == 0 ? 0 : errno;
        EXPECT_EQ(err, expected_mkdir_errno(k.value)) << k.source << " '" << shown(k.value) << "': " << std::strerror(err);
    }
    EXPECT_EQ(listing(), sites_before);
    EXPECT_EQ(read(".sites.toml"), export_before);
    RecordProperty("names_made", made);
    RecordProperty("names_unreachable", unreachable);
    EXPECT_GT(made, 40);
}

}  // namespace
}  // namespace sitesfs::it
