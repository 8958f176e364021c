// Directory listings are cached by the kernel (docs/filesystem.md, Caching): a warm `ls` never
// reaches the daemon, so every change to a listing, whichever way it came, must drop the cached
// copy, and a listing read over several READDIRs must stay whole while sites come and go.
#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <string>

#include "mount_fixture.hpp"

namespace sitesfs::it {
namespace {

class ListingCache : public TwoSitesTest {
protected:
    // `ls -a DIR` twice, so the second answer, at the latest, comes from the kernel's cache.
    void warm(const stdfs::path& cwd, const std::string& dir) const {
        for (int i = 0; i < 2; ++i) ASSERT_EQ(sh_in(cwd, "ls -a " + dir).code, 0) << dir;
    }
    std::string ls(const stdfs::path& cwd, const std::string& args = "") const { return sh_in(cwd, "ls " + args).out; }
};

// getdents64 on an open directory, `buf_size` bytes at a time: names in the order read; -1 and
// errno on failure.
int read_entries(int fd, size_t buf_size, size_t max_entries, std::vector<std::string>& names) {
    std::vector<char> buf(buf_size);
    while (names.size() < max_entries) {
        const long n = ::syscall(SYS_getdents64, fd, buf.data(), buf.size());
        if (n < 0) return -1;
        if (n == 0) break;
        for (long at = 0; at < n;) {
            const auto* d = reinterpret_cast<const dirent64*>(buf.data() + at);
            names.emplace_back(d->d_name);
            at += d->d_reclen;
        }
    }
    return 0;
}

TEST_F(ListingCache, TemporaryFilesShowAndGoAtOnceInAWarmListing) {
    ASSERT_NO_FATAL_FAILURE(warm(mnt(), "blog"));
    ASSERT_TRUE(shell("echo www.example.com > blog/.domain.new"));
    EXPECT_TRUE(shell("ls -a blog | grep -x .domain.new", {.out = ".domain.new\n"}));
    ASSERT_NO_FATAL_FAILURE(warm(mnt(), "blog"));
    ASSERT_TRUE(shell("mv blog/.domain.new blog/.domain.tmp"));
    EXPECT_TRUE(shell("ls -a blog | grep '^\\.domain'", {.out = ".domain.tmp\n"}));
    ASSERT_NO_FATAL_FAILURE(warm(mnt(), "blog"));
    // Renamed over the field: it commits, and the temporary name is gone from the listing.
    ASSERT_TRUE(shell("mv blog/.domain.tmp blog/domain"));
    EXPECT_TRUE(only_fields("blog"));
    EXPECT_EQ(read("blog/domain"), "www.example.com\n");
    ASSERT_TRUE(shell("touch blog/4913"));
    ASSERT_NO_FATAL_FAILURE(warm(mnt(), "blog"));
    ASSERT_TRUE(shell("rm blog/4913"));
    EXPECT_TRUE(only_fields("blog"));
    // A field renamed away leaves as after an unlink (its value kept); the new name holds a copy
    // (vim's backupcopy=no), and creating the field brings it back.
    ASSERT_NO_FATAL_FAILURE(warm(mnt(), "blog"));
    ASSERT_TRUE(shell("mv blog/branch blog/branch~"));
    EXPECT_TRUE(shell("ls blog | grep '^branch'", {.out = "branch~\n"}));
    ASSERT_NO_FATAL_FAILURE(warm(mnt(), "blog"));
    ASSERT_TRUE(shell("cp blog/branch~ blog/branch"));
    EXPECT_TRUE(shell("ls blog | grep '^branch'", {.out = "branch\nbranch~\n"}));
}

TEST_F(ListingCache, SitesMadeAndRemovedHereShowAtOnce) {
    ASSERT_NO_FATAL_FAILURE(warm(mnt(), "."));
    ASSERT_TRUE(shell("mkdir news"));
    EXPECT_EQ(ls(mnt()), "blog\nnews\nshop\n");
    ASSERT_NO_FATAL_FAILURE(warm(mnt(), "."));
    ASSERT_TRUE(shell("rmdir shop && rm -r news"));
    EXPECT_EQ(ls(mnt()), "blog\n");
    EXPECT_TRUE(shell("ls -a", {.out = ".\n..\n.sites.toml\nblog\n"}));
}

// The read-only instance hears of sites from the read-write one's state files, not from its
// kernel: only the invalidation makes its cached listings change.
TEST_F(ListingCache, ASecondMountSeesSitesComeAndGoInItsWarmListing) {
    Daemon* ro = start_instance("ro", {"-o", "ro"});
    ASSERT_NE(ro, nullptr);
    const stdfs::path other = tmp() / "ro";
    ASSERT_NO_FATAL_FAILURE(warm(other, "."));
    ASSERT_NO_FATAL_FAILURE(warm(other, "shop"));
    ASSERT_EQ(ls(other), "blog\nshop\n");

    ASSERT_TRUE(shell("mkdir news"));
    EXPECT_TRUE(eventually([&] { return ls(other) == "blog\nnews\nshop\n"; }, 1s)) << ls(other);
    // This mount made it, so it lists what was created in it (nothing yet); the other lists
    // every setting.
    std::string every_setting;
    for (const auto& f : kSiteFiles) every_setting += f + "\n";
    EXPECT_EQ(ls(other, "news"), every_setting);
    EXPECT_EQ(ls(mnt(), "news"), "");

    ASSERT_NO_FATAL_FAILURE(warm(other, "."));
    ASSERT_TRUE(shell("rmdir shop"));
    EXPECT_TRUE(eventually([&] { return ls(other) == "blog\nnews\n"; }, 1s)) << ls(other);
    EXPECT_TRUE(eventually([&] { return !stdfs::exists(other / "shop"); }, 1s));
    // Made again: a new site under the old name, listed with its own files.
    ASSERT_NO_FATAL_FAILURE(warm(other, "."));
    ASSERT_TRUE(shell("mkdir shop"));
    EXPECT_TRUE(eventually([&] { return ls(other) == "blog\nnews\nshop\n"; }, 1s)) << ls(other);
    EXPECT_EQ(ls(other, "-a shop"), ".\n..\n" + every_setting);
}

// A directory held open (a shell's cwd, a long `find`) across the removal of its site does not
// keep listing the files it had.
TEST_F(ListingCache, ARemovedSiteNoLongerListsFromAHeldDirectory) {
    Daemon* ro = start_instance("ro", {"-o", "ro"});
    ASSERT_NE(ro, nullptr);
    const int fd = ::open((tmp() / "ro" / "shop").c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    std::vector<std::string> names;
    for (int i = 0; i < 2; ++i) {
        names.clear();
        ASSERT_EQ(::lseek(fd, 0, SEEK_SET), 0);
        ASSERT_EQ(read_entries(fd, 4096, 1000, names), 0) << std::strerror(errno);
        ASSERT_EQ(names.size(), 2 + kSiteFiles.size());
    }
    ASSERT_TRUE(shell("rmdir shop"));
    int err = 0;
    EXPECT_TRUE(eventually(
        [&] {
            names.clear();
            ::lseek(fd, 0, SEEK_SET);
            err = read_entries(fd, 4096, 1000, names) == 0 ? 0 : errno;
            return err == ENOENT;
        },
        1s))
        << "still lists " << names.size() << " entries (error " << err << ")";
    ::close(fd);
}

// There is no snapshot per open directory: each READDIR lists anew and continues after the
// cookie of the last entry read. Entries that stay must come exactly once however the others
// change in between.
TEST_F(ListingCache, AListingReadInPiecesWhileSitesComeAndGoNeitherRepeatsNorSkips) {
    ASSERT_TRUE(shell("for i in $(seq -w 100); do mkdir s$i || exit 1; done", {.err = ""}));
    ASSERT_NO_FATAL_FAILURE(restart());  // nothing cached: every piece below is a READDIR
    const int fd = ::open(mnt().c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    std::vector<std::string> names;
    ASSERT_EQ(read_entries(fd, 256, 40, names), 0) << std::strerror(errno);
    ASSERT_GE(names.size(), 40u);
    ASSERT_LT(names.size(), 60u);
    const std::set<std::string> first(names.begin(), names.end());
    std::string read_one, unread_one;
    for (int i = 1; i <= 100; ++i) {
        char name[8];
        std::snprintf(name, sizeof name, "s%03d", i);
        (first.count(name) ? read_one : unread_one) = name;
    }
    ASSERT_FALSE(read_one.empty());
    ASSERT_FALSE(unread_one.empty());
    ASSERT_TRUE(shell("mkdir a-new zz-new && rmdir " + read_one + " " + unread_one));
    ASSERT_EQ(read_entries(fd, 256, 10000, names), 0) << std::strerror(errno);
    ::close(fd);

    std::map<std::string, int> seen;
    for (const auto& n : names) ++seen[n];
    for (const auto& [n, count] : seen) EXPECT_EQ(count, 1) << n << " listed " << count << " times";
    std::set<std::string> stayed = {".", "..", ".sites.toml", "blog", "shop"};
    for (int i = 1; i <= 100; ++i) {
        char name[8];
        std::snprintf(name, sizeof name, "s%03d", i);
        if (name != read_one && name != unread_one) stayed.insert(name);
    }
    for (const auto& n : stayed) EXPECT_EQ(seen.count(n), 1u) << n << " was skipped";
    EXPECT_EQ(seen.count(read_one), 1u) << "read before it went";
    // And a new listing is exact.
    EXPECT_TRUE(shell("ls | wc -l; ls -d a-new zz-new", {.out = "102\na-new\nzz-new\n"}));
}

}  // namespace
}  // namespace sitesfs::it
