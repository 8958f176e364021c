// The mount as a tree that ls, stat, find, grep and tar understand.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <regex>
#include <string>

#include "mount_fixture.hpp"

namespace sitesfs::it {
namespace {

class Tree : public MountTest {
protected:
    void SetUp() override {
        MountTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        ASSERT_NO_FATAL_FAILURE(make_site("blog", "blog.example.com"));
        ASSERT_TRUE(shell("echo main > blog/branch && echo docs > blog/path"));
    }

    timespec mtime(const std::string& rel) const {
        struct stat st{};
        EXPECT_EQ(::stat((mnt() / rel).c_str(), &st), 0) << rel << ": " << std::strerror(errno);
        return st.st_mtim;
    }
};

bool same(const timespec& a, const timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }
bool later(const timespec& a, const timespec& b) {
    return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

TEST_F(Tree, LsShowsModes) {
    const Run r = sh("ls -l blog | tail -n +2 | awk '{print $1, $NF}'");
    std::string listing;
    for (const auto& f : kSiteFiles) listing += "-rw-r--r-- " + f + "\n";
    EXPECT_TRUE(check("ls -l blog", r, {.out = listing}));
    // The reports are not listed, and read-only when opened by name.
    EXPECT_TRUE(shell("ls -l blog/log blog/status | awk '{print $1, $NF}'", {.out = "-r--r--r-- blog/log\n-r--r--r-- blog/status\n"}));
    EXPECT_TRUE(shell("ls -ld blog . | awk '{print $1, $NF}'", {.out = "drwxr-xr-x .\ndrwxr-xr-x blog\n"}));
    EXPECT_TRUE(shell("ls -l .sites.toml | awk '{print $1}'", {.out = "-r--r--r--\n"}));
    EXPECT_TRUE(shell("stat -c '%U:%G' blog blog/domain blog/status", {.out = "root:root\nroot:root\nroot:root\n"}));
}

TEST_F(Tree, StatSizeEqualsContentLengthForEveryFile) {
    const Run files = sh("find . -type f");
    ASSERT_EQ(files.code, 0);
    const auto paths = split_lines(files.out);
    ASSERT_EQ(paths.size(), 1 + kSiteFiles.size()) << files.out;
    for (const auto& p : paths) {
        SCOPED_TRACE(p);
        struct stat st{};
        ASSERT_EQ(::stat((mnt() / p).c_str(), &st), 0);
        EXPECT_EQ(static_cast<size_t>(st.st_size), read(p).size());
        EXPECT_TRUE(shell("test \"$(stat -c %s " + p + ")\" = \"$(wc -c < " + p + ")\""));
    }
}

TEST_F(Tree, FindListsEveryFile) {
    // A new site is an empty directory until its settings are created.
    ASSERT_TRUE(shell("mkdir shop && echo user/shop > shop/repo"));
    std::string want = mnt().string() + "/.sites.toml\n";
    for (const auto& f : kSiteFiles) want += mnt().string() + "/blog/" + f + "\n";
    want += mnt().string() + "/shop/repo\n";
    EXPECT_TRUE(shell("find \"$MNT\" -type f | sort", {.out = want, .err = ""}));
    EXPECT_TRUE(shell("find . -type d | sort", {.out = ".\n./blog\n./shop\n"}));
}

TEST_F(Tree, GrepRecursiveFindsTheDomain) {
    EXPECT_TRUE(shell("grep -r blog.example.com \"$MNT\" | sort",
                      {.out_has = mnt().string() + "/blog/domain:blog.example.com\n"}));
    EXPECT_TRUE(shell("grep -rl example.com . | sort", {.out = "./.sites.toml\n./blog/domain\n"}));
    EXPECT_TRUE(shell("grep -rlx main .", {.out = "./blog/branch\n"}));
}

TEST_F(Tree, TarListsAndReproducesTheTree) {
    ASSERT_TRUE(shell("mkdir shop && echo user/shop > shop/repo"));
    std::string want = "./\n./.sites.toml\n./blog/\n";
    for (const auto& f : kSiteFiles) want += "./blog/" + f + "\n";
    want += "./shop/\n./shop/repo\n";
    EXPECT_TRUE(shell("tar -cf - -C \"$MNT\" . | tar -tf - | sort", {.out = want}));

    const auto copy = tmp() / "copy";
    stdfs::create_directory(copy);
    ASSERT_TRUE(shell("tar -cf - -C \"$MNT\" . | tar -xf - -C \"$SITESFS_TMP/copy\"", {.err = ""}));
    const auto original = snapshot_tree(mnt());
    const auto copied = snapshot_tree(copy);
    EXPECT_EQ(copied, original);
    EXPECT_EQ(original.size(), 2u + kSiteFiles.size() + 1u + 1u);
    EXPECT_EQ(slurp(copy / "blog" / "domain"), "blog.example.com\n");
    EXPECT_EQ(slurp(copy / "shop" / "repo"), "user/shop\n");
    EXPECT_FALSE(stdfs::exists(copy / "blog" / "status"));  // a report, not a setting
    EXPECT_TRUE(shell("diff -r \"$MNT\" \"$SITESFS_TMP/copy\"", {.out = "", .err = ""}));
}

TEST_F(Tree, HiddenExportIsTheSeedFormat) {
    EXPECT_TRUE(shell("ls -a", {.out = ".\n..\n.sites.toml\nblog\n"}));
    EXPECT_TRUE(shell("ls", {.out = "blog\n"}));
    const std::string toml = read(".sites.toml");
    const auto at = toml.find("[sites.blog]\n");
    ASSERT_NE(at, std::string::npos) << toml;
    const std::string table = toml.substr(at);
    EXPECT_TRUE(std::regex_search(table, std::regex(R"(\ndomain = ['"]blog\.example\.com['"]\n)"))) << toml;
    EXPECT_TRUE(std::regex_search(table, std::regex(R"(\nrepo = ['"]https://github\.com/user/blog['"]\n)"))) << toml;
    EXPECT_TRUE(std::regex_search(table, std::regex(R"(\nbranch = ['"]main['"]\n)"))) << toml;
    EXPECT_TRUE(std::regex_search(toml, std::regex(R"((^|\n)\[global\]\n)"))) << toml;
    // It follows changes.
    ASSERT_TRUE(shell("echo www.example.com > blog/domain"));
    EXPECT_NE(read(".sites.toml").find("www.example.com"), std::string::npos);
    ASSERT_TRUE(shell("rmdir blog"));
    EXPECT_EQ(read(".sites.toml").find("[sites.blog]"), std::string::npos);
}

TEST_F(Tree, NothingElseCanBeCreatedInTheRoot) {
    EXPECT_TRUE(shell("touch x", {.code = 1, .err_has = "Operation not permitted"}));
    EXPECT_TRUE(shell("echo hi > x", {.code = 1, .err_has = "Operation not permitted"}));
    errno = 0;
    EXPECT_EQ(::open((mnt() / "x").c_str(), O_WRONLY | O_CREAT, 0644), -1);
    EXPECT_EQ(errno, EPERM);
    EXPECT_TRUE(shell("ls -a", {.out = ".\n..\n.sites.toml\nblog\n"}));
    EXPECT_TRUE(shell("echo x > .sites.toml", {.code = 1, .err_has = "Permission denied"}));
}

TEST_F(Tree, NoSubdirectoriesInASite) {
    EXPECT_TRUE(shell("mkdir blog/sub", {.code = 1, .err_has = "Operation not permitted"}));
    errno = 0;
    EXPECT_EQ(::mkdir((mnt() / "blog" / "sub").c_str(), 0755), -1);
    EXPECT_EQ(errno, EPERM);
    EXPECT_TRUE(only_fields("blog"));
}

TEST_F(Tree, NoLinks) {
    EXPECT_TRUE(shell("ln -s x blog/l", {.code = 1, .err_has = "Operation not permitted"}));
    EXPECT_TRUE(shell("ln -s /etc/passwd x", {.code = 1, .err_has = "Operation not permitted"}));
    EXPECT_TRUE(shell("ln blog/domain blog/hard", {.code = 1, .err_has = "Operation not permitted"}));
    errno = 0;
    EXPECT_EQ(::symlink("x", (mnt() / "blog" / "l").c_str()), -1);
    EXPECT_EQ(errno, EPERM);
    EXPECT_TRUE(only_fields("blog"));
}

TEST_F(Tree, SitesCannotBeRenamed) {
    EXPECT_TRUE(shell("mv blog shop", {.code = 1, .err_has = "Operation not permitted"}));
    EXPECT_TRUE(shell("ls", {.out = "blog\n"}));
}

TEST_F(Tree, MtimeFollowsTheValueAndWhatIsSetOnIt) {
    const timespec t0 = mtime("blog/domain");
    ASSERT_TRUE(shell("echo www.example.com > blog/domain"));
    const timespec t1 = mtime("blog/domain");
    EXPECT_TRUE(later(t1, t0)) << t0.tv_sec << "." << t0.tv_nsec << " -> " << t1.tv_sec << "." << t1.tv_nsec;
    // Other fields changing and rewriting the same value leave it alone.
    ASSERT_TRUE(shell("echo dev > blog/branch"));
    EXPECT_TRUE(same(mtime("blog/domain"), t1));
    ASSERT_TRUE(shell("echo www.example.com > blog/domain"));
    EXPECT_TRUE(same(mtime("blog/domain"), t1));
    ASSERT_TRUE(shell("echo blog.example.com > blog/domain"));
    EXPECT_TRUE(later(mtime("blog/domain"), t1));
    // The branch's own mtime moved when it changed.
    EXPECT_TRUE(later(mtime("blog/branch"), t0));
    // Set explicitly, as on a regular file, and kept across a restart.
    ASSERT_TRUE(shell("touch -m -d '2020-01-02 03:04:05.5 UTC' blog/domain", {.err = ""}));
    EXPECT_TRUE(shell("TZ=UTC stat -c %y blog/domain", {.out = "2020-01-02 03:04:05.500000000 +0000\n"}));
    ASSERT_TRUE(shell("touch blog/branch", {.err = ""}));
    EXPECT_TRUE(later(mtime("blog/branch"), t1));
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_TRUE(shell("TZ=UTC stat -c %y blog/domain", {.out = "2020-01-02 03:04:05.500000000 +0000\n"}));
    // Reports show when sitesfs changed them.
    EXPECT_TRUE(shell("touch blog/status", {.code = 1, .err_has = "Permission denied"}));
    struct timespec times[2] = {{0, UTIME_OMIT}, {1'600'000'000, 0}};
    EXPECT_EQ(::utimensat(AT_FDCWD, (mnt() / "blog/status").c_str(), times, 0), -1);
    EXPECT_EQ(errno, EPERM);
}

TEST_F(Tree, TwoHundredSites) {
    EXPECT_TRUE(shell("for i in $(seq 200); do mkdir site$i || exit 1; done", {.err = ""}));
    // blog + 200.
    EXPECT_TRUE(shell("ls | wc -l", {.out = "201\n"}));
    EXPECT_TRUE(shell("ls -d site* | wc -l", {.out = "200\n"}));
    EXPECT_TRUE(shell("ls site137", {.out = ""}));
    EXPECT_TRUE(shell("grep -xh 'state: incomplete' site*/status | wc -l", {.out = "200\n"}));
    EXPECT_TRUE(shell("stat -c %h .", {.out = "203\n"}));
    // One state file per site.
    size_t files = 0;
    for (const auto& e : stdfs::directory_iterator(state() / "sites")) files += e.path().extension() == ".toml";
    EXPECT_EQ(files, 201u);
}

TEST_F(Tree, AFreshlyChangedValueIsVisibleToTheVeryNextRead) {
    for (int i = 0; i < 100; ++i) {
        const std::string domain = "v" + std::to_string(i) + ".example.com";
        const int err = write_errno("blog/domain", domain + "\n");
        ASSERT_EQ(err, 0) << domain;
        const std::string got = read("blog/domain");
        ASSERT_EQ(got, domain + "\n") << "iteration " << i;
        struct stat st{};
        ASSERT_EQ(::stat((mnt() / "blog/domain").c_str(), &st), 0);
        ASSERT_EQ(static_cast<size_t>(st.st_size), domain.size() + 1) << "iteration " << i;
    }
    // And through the shell: write then cat, each a new process.
    EXPECT_TRUE(shell("for i in $(seq 100); do echo w$i.example.com > blog/domain; "
                      "v=$(cat blog/domain); [ \"$v\" = w$i.example.com ] || { echo \"$i: $v\"; exit 1; }; done",
                      {.out = "", .err = ""}));
}

// A reader that holds a field open across a change (a monitor, a slow script) keeps reading the
// snapshot it opened, whole; and it must not make later readers see its old bytes.
TEST_F(Tree, AReaderHoldingAFieldOpenAcrossAChange) {
    const int fd = ::open((mnt() / "blog/domain").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(shell("echo www.example.com > blog/domain"));
    char buf[64] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "www.example.com\n")
        << "the whole new value, as a regular file gives after it was rewritten; never torn";
    EXPECT_EQ(read("blog/domain"), "www.example.com\n") << "a new reader must see the new value";
    EXPECT_TRUE(shell("cat blog/domain", {.out = "www.example.com\n"}));
    struct stat st{};
    ASSERT_EQ(::stat((mnt() / "blog/domain").c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 16);
}

TEST_F(Tree, HeldAndFreshReadersAlwaysSeeWholeCurrentValuesAcrossChanges) {
    const int fd = ::open((mnt() / "blog/domain").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    for (int i = 0; i < 20; ++i) {
        const std::string value = i % 2 ? "a.io" : "a-much-longer-name-" + std::to_string(i) + ".example.com";
        ASSERT_TRUE(shell("echo " + value + " > blog/domain"));
        char buf[128] = {};
        const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
        EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), value + "\n") << "held fd, round " << i;
        EXPECT_EQ(read("blog/domain"), value + "\n") << "fresh open, round " << i;
    }
    ::close(fd);
}

TEST_F(Tree, RenameRulesAndUnsupportedFlags) {
    ASSERT_TRUE(shell("mkdir shop && echo www.example.com > blog/.domain.tmp && echo x > shop/t"));
    auto rename2 = [&](const std::string& from, const std::string& to, unsigned flags) {
        const int rc = ::renameat2(AT_FDCWD, (mnt() / from).c_str(), AT_FDCWD, (mnt() / to).c_str(), flags);
        return rc == 0 ? 0 : errno;
    };
    EXPECT_EQ(rename2("blog/.domain.tmp", "blog/domain", RENAME_EXCHANGE), EINVAL);
    EXPECT_EQ(rename2("blog/.domain.tmp", "blog/domain", RENAME_NOREPLACE), EEXIST);
    EXPECT_EQ(rename2("blog/branch", "blog/domain", 0), EINVAL) << "a field onto a field";
    EXPECT_EQ(rename2("blog/.domain.tmp", "blog/status", 0), EACCES);
    EXPECT_EQ(rename2("shop/t", "blog/t", 0), EXDEV);
    EXPECT_EQ(rename2("blog", "blog2", 0), EPERM) << "sites are not renamed";
    EXPECT_EQ(read("blog/domain"), "blog.example.com\n") << "nothing above changed the value";
    EXPECT_EQ(rename2("blog/.domain.tmp", "blog/domain", 0), 0);
    EXPECT_EQ(read("blog/domain"), "www.example.com\n");
    EXPECT_TRUE(only_fields("blog"));
}

TEST_F(Tree, OwnerAndModesComeFromTheConfig) {
    const stdfs::path cfg = tmp() / "sitesfs.toml";
    spit(cfg, "[filesystem]\nowner = 4321\ngroup = 4322\nfile_mode = \"0640\"\ndir_mode = \"0750\"\n");
    ASSERT_TRUE(stop().has_value());
    ASSERT_NO_FATAL_FAILURE(start({"--config", cfg.string()}));
    EXPECT_TRUE(shell("stat -c '%a %u %g %n' . blog blog/domain blog/status",
                      {.out = "750 4321 4322 .\n750 4321 4322 blog\n640 4321 4322 blog/domain\n440 4321 4322 blog/status\n"}));
}

}  // namespace
}  // namespace sitesfs::it
