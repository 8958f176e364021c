// The contract a person at a shell relies on: mkdir, echo, cat, grep, >>, :>, truncate, rmdir,
// rm -r; values are checked on the spot, normalized, durable, and hostile input changes nothing.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mount_fixture.hpp"

namespace sitesfs::it {
namespace {

class AtTheShell : public MountTest {
protected:
    // blog with repo and domain set, the README's tour so far.
    void make_blog() { ASSERT_NO_FATAL_FAILURE(make_site("blog", "blog.example.com")); }
};

std::string fields_listing() {
    std::string s;
    for (const auto& f : kSiteFiles) s += f + "\n";
    return s;
}

TEST_F(AtTheShell, MkdirCreatesAnEmptySiteWhoseSettingsAppearAsTheyAreWritten) {
    EXPECT_TRUE(shell("mkdir blog && ls -A blog", {.out = "", .err = ""}));
    EXPECT_TRUE(shell("ls", {.out = "blog\n"}));
    struct stat st;
    ASSERT_EQ(::stat((mnt() / "blog").c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_TRUE(shell("cat blog/repo", {.code = 1, .err_has = "No such file or directory"}));
    // status is there by name and says why the site is not served yet.
    EXPECT_EQ(status_line("blog", "state"), "incomplete");
    EXPECT_TRUE(shell("echo user/blog > blog/repo && : > blog/branch && ls blog", {.out = "branch\nrepo\n", .err = ""}));
    // An unset value reads as a lone newline.
    EXPECT_EQ(read("blog/branch"), "\n");
    // After a restart the mount shows every setting of the sites it finds.
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_TRUE(shell("ls blog", {.out = fields_listing(), .err = ""}));
}

TEST_F(AtTheShell, MkdirRefusesInvalidNamesWithEinval) {
    for (const std::string& name : std::vector<std::string>{"Bad", "a_b", "-x", ".hidden", std::string(64, 'a'), "a b", "b\xc3\xbc" "cher"}) {
        SCOPED_TRACE(name);
        EXPECT_TRUE(shell("mkdir -- '" + name + "'", {.code = 1, .err_has = "Invalid argument"}));
        errno = 0;
        EXPECT_EQ(::mkdir((mnt() / name).c_str(), 0755), -1);
        EXPECT_EQ(errno, EINVAL);
    }
    // 63 characters is the longest name; digits may come first.
    EXPECT_TRUE(shell("mkdir " + std::string(63, 'a') + " 0shop a.b-c", {.err = ""}));
    EXPECT_TRUE(shell("ls", {.out = "0shop\na.b-c\n" + std::string(63, 'a') + "\n"}));
}

TEST_F(AtTheShell, MkdirOfAnExistingSiteIsEexist) {
    ASSERT_TRUE(shell("mkdir blog"));
    EXPECT_TRUE(shell("mkdir blog", {.code = 1, .err = "mkdir: cannot create directory 'blog': File exists\n"}));
    errno = 0;
    EXPECT_EQ(::mkdir((mnt() / "blog").c_str(), 0755), -1);
    EXPECT_EQ(errno, EEXIST);
}

TEST_F(AtTheShell, EchoSetsAValueAndCatReadsItBackWithOneNewline) {
    ASSERT_TRUE(shell("mkdir blog"));
    EXPECT_TRUE(shell("echo https://github.com/user/blog > blog/repo", {.err = ""}));
    EXPECT_TRUE(shell("cat blog/repo", {.out = "https://github.com/user/blog\n"}));
    EXPECT_TRUE(shell("echo blog.example.com > blog/domain", {.err = ""}));
    EXPECT_TRUE(shell("cat blog/domain", {.out = "blog.example.com\n"}));
    EXPECT_EQ(read("blog/domain"), "blog.example.com\n");
}

TEST_F(AtTheShell, TheTour) {
    ASSERT_TRUE(shell("mkdir blog"));
    EXPECT_TRUE(shell("grep -H state */status", {.out = "blog/status:state: incomplete\n"}));
    ASSERT_TRUE(shell("echo https://github.com/user/blog > blog/repo"));
    EXPECT_TRUE(shell("grep -H state */status", {.out = "blog/status:state: incomplete\n"}));
    ASSERT_TRUE(shell("echo blog.example.com > blog/domain"));
    EXPECT_TRUE(shell("grep -H state */status", {.out = "blog/status:state: pending\n"}));
    EXPECT_TRUE(shell("grep -H state " + mnt().string() + "/*/status",
                      {.out = mnt().string() + "/blog/status:state: pending\n"}));

    EXPECT_TRUE(shell("echo 'bad..com' > blog/domain", {.code = 1, .err_has = "write error: Invalid argument"}));
    EXPECT_TRUE(shell("cat blog/domain", {.out = "blog.example.com\n"}));
    EXPECT_TRUE(shell("grep '^error:' blog/status", {.out_has = "bad..com"}));
    EXPECT_TRUE(shell("grep -c '^error: .*bad\\.\\.com' blog/status", {.out = "1\n"}));
    EXPECT_TRUE(shell("grep -H -e state blog/status", {.out = "blog/status:state: pending\n"}));

    // An alias is appended with >>.
    EXPECT_TRUE(shell("echo www.example.com >> blog/domain", {.err = ""}));
    EXPECT_TRUE(shell("cat blog/domain", {.out = "blog.example.com\nwww.example.com\n"}));
    // A good write clears the refusal from status.
    EXPECT_EQ(status_line("blog", "error"), "");

    EXPECT_TRUE(shell("rmdir blog", {.err = ""}));
    EXPECT_TRUE(shell("ls", {.out = ""}));
}

TEST_F(AtTheShell, ARefusedWriteFailsWithEinvalAndChangesNothing) {
    make_blog();
    const std::string export_before = read(".sites.toml");
    EXPECT_EQ(write_errno("blog/domain", "bad..com\n"), EINVAL);
    EXPECT_EQ(read("blog/domain"), "blog.example.com\n");
    EXPECT_EQ(read(".sites.toml"), export_before);
    EXPECT_NE(status_line("blog", "error").find("bad..com"), std::string::npos) << status_of("blog");
}

TEST_F(AtTheShell, ADomainServedByAnotherSiteIsEexist) {
    make_blog();
    ASSERT_TRUE(shell("mkdir shop && echo https://github.com/user/shop > shop/repo"));
    EXPECT_TRUE(shell("echo blog.example.com > shop/domain", {.code = 1, .err_has = "write error: File exists"}));
    EXPECT_TRUE(shell("echo shop.example.com www.blog.example.com BLOG.example.com > shop/domain",
                      {.code = 1, .err_has = "File exists"}));
    EXPECT_EQ(write_errno("shop/domain", "blog.example.com\n"), EEXIST);
    EXPECT_EQ(read("shop/domain"), "\n");
    // Once blog lets go of it, shop may take it.
    ASSERT_TRUE(shell("echo other.example.com > blog/domain"));
    EXPECT_TRUE(shell("echo blog.example.com > shop/domain && cat shop/domain", {.out = "blog.example.com\n"}));
}

TEST_F(AtTheShell, SurroundingWhitespaceIsTrimmed) {
    make_blog();
    EXPECT_TRUE(shell("printf '  x.example.com  \\n\\n' > blog/domain", {.err = ""}));
    EXPECT_TRUE(shell("cat blog/domain", {.out = "x.example.com\n"}));
    EXPECT_TRUE(shell("stat -c %s blog/domain", {.out = "14\n"}));
    EXPECT_TRUE(shell("printf '\\t main \\r\\n' > blog/branch && cat blog/branch", {.out = "main\n"}));
}

TEST_F(AtTheShell, DomainsAreLowercasedAndInternationalNamesBecomePunycode) {
    make_blog();
    EXPECT_TRUE(shell("echo BLOG.Example.COM > blog/domain && cat blog/domain", {.out = "blog.example.com\n"}));
    EXPECT_TRUE(shell("echo b\xc3\xbc" "cher.de > blog/domain && cat blog/domain", {.out = "xn--bcher-kva.de\n"}));
}

TEST_F(AtTheShell, StatSizeIsTheByteCountOfCat) {
    make_blog();
    ASSERT_TRUE(shell("echo main > blog/branch && echo abc1234 > blog/commit"));
    for (const auto& f : kSiteFiles) {
        SCOPED_TRACE(f);
        const Run size = sh("stat -c %s blog/" + f);
        const Run bytes = sh("cat blog/" + f + " | wc -c");
        EXPECT_EQ(size.code, 0);
        EXPECT_EQ(size.out, bytes.out);
        EXPECT_EQ(size.out, std::to_string(read("blog/" + f).size()) + "\n");
    }
    EXPECT_TRUE(shell("stat -c %s .sites.toml", {.out = std::to_string(read(".sites.toml").size()) + "\n"}));
}

TEST_F(AtTheShell, ColonRedirectAndTruncateClearAValue) {
    make_blog();
    ASSERT_TRUE(shell("echo main > blog/branch && cat blog/branch", {.out = "main\n"}));
    EXPECT_TRUE(shell(": > blog/branch", {.err = ""}));
    EXPECT_TRUE(shell("cat blog/branch", {.out = "\n"}));
    ASSERT_TRUE(shell("echo dev > blog/branch && cat blog/branch", {.out = "dev\n"}));
    EXPECT_TRUE(shell("truncate -s0 blog/branch", {.err = ""}));
    EXPECT_TRUE(shell("cat blog/branch", {.out = "\n"}));
    EXPECT_TRUE(shell("stat -c %s blog/branch", {.out = "1\n"}));
}

TEST_F(AtTheShell, CommitPinsUnpinsAndRefusesNonHex) {
    make_blog();
    EXPECT_EQ(status_line("blog", "desired"), "default-branch");
    EXPECT_TRUE(shell("echo abc1234 > blog/commit", {.err = ""}));
    EXPECT_EQ(status_line("blog", "desired"), "commit abc1234");
    // commit reads what is served: nothing yet.
    EXPECT_EQ(read("blog/commit"), "\n");
    EXPECT_TRUE(shell("echo xyz > blog/commit", {.code = 1, .err_has = "write error: Invalid argument"}));
    EXPECT_EQ(write_errno("blog/commit", "xyz\n"), EINVAL);
    EXPECT_EQ(write_errno("blog/commit", "abc12\n"), EINVAL) << "fewer than 7 hex digits";
    EXPECT_EQ(status_line("blog", "desired"), "commit abc1234");
    EXPECT_TRUE(shell("echo > blog/commit", {.err = ""}));
    EXPECT_EQ(status_line("blog", "desired"), "default-branch");
    ASSERT_TRUE(shell("echo main > blog/branch"));
    EXPECT_EQ(status_line("blog", "desired"), "branch main");
}

TEST_F(AtTheShell, StatusIsReadOnlyEvenForRoot) {
    make_blog();
    const std::string before = status_of("blog");
    EXPECT_TRUE(shell("echo x > blog/status", {.code = 1, .err_has = "Permission denied"}));
    EXPECT_EQ(write_errno("blog/status", "x\n"), EACCES);
    EXPECT_EQ(write_errno("blog/status", "x\n", O_APPEND), EACCES);
    EXPECT_TRUE(shell("truncate -s0 blog/status", {.code = 1, .err_has = "Permission denied"}));
    EXPECT_EQ(status_of("blog"), before);
}

TEST_F(AtTheShell, RmdirRemovesASite) {
    make_blog();
    EXPECT_TRUE(shell("rmdir blog", {.err = ""}));
    EXPECT_TRUE(shell("ls -a", {.out = ".\n..\n.sites.toml\n"}));
    struct stat st;
    EXPECT_EQ(::stat((mnt() / "blog").c_str(), &st), -1);
    EXPECT_EQ(errno, ENOENT);
    // Its domain is free again, and its name too (a fresh site).
    EXPECT_TRUE(shell("mkdir blog && ls blog && grep -x 'state: incomplete' blog/status", {.out = "state: incomplete\n"}));
    EXPECT_TRUE(shell("rmdir nosuch", {.code = 1, .err_has = "No such file or directory"}));
}

TEST_F(AtTheShell, RmRecursiveRemovesASite) {
    make_blog();
    ASSERT_TRUE(shell("mkdir shop"));
    EXPECT_TRUE(shell("rm -r blog", {.err = ""}));
    EXPECT_TRUE(shell("ls", {.out = "shop\n"}));
    EXPECT_TRUE(shell("rm -rf shop && ls", {.out = ""}));
}

TEST_F(AtTheShell, UnlinkingAFieldTakesItsNameAndKeepsItsValue) {
    make_blog();
    const std::string export_before = read(".sites.toml");
    EXPECT_TRUE(shell("rm blog/domain", {.err = ""}));
    EXPECT_TRUE(shell("cat blog/domain", {.code = 1, .err_has = "No such file or directory"}));
    std::string without_domain;
    for (const auto& f : kSiteFiles)
        if (f != "domain") without_domain += f + "\n";
    EXPECT_TRUE(shell("ls blog", {.out = without_domain}));
    EXPECT_EQ(read(".sites.toml"), export_before);  // the value stays
    EXPECT_TRUE(shell("rm blog/domain", {.code = 1, .err_has = "No such file or directory"}));
    EXPECT_TRUE(shell("rm blog/status", {.code = 1, .err_has = "Operation not permitted"}));
    // Created again, the name comes back with what is written.
    EXPECT_TRUE(shell("echo www.example.com > blog/domain && cat blog/domain", {.out = "www.example.com\n"}));
    EXPECT_TRUE(only_fields("blog"));
}

struct Injection {
    const char* field;
    const char* script;  // writes into FIELD
};

TEST_F(AtTheShell, InjectionAttemptsFailAndChangeNothing) {
    make_blog();
    ASSERT_TRUE(shell("echo main > blog/branch"));
    const Injection attempts[] = {
        {"domain", "echo 'a.com}' > blog/domain"},
        {"domain", "echo 'a.com{' > blog/domain"},
        {"domain", "echo '#a.com' > blog/domain"},
        {"domain", "echo 'a.com:8080' > blog/domain"},
        {"domain", "echo 'http://a.com' > blog/domain"},
        {"domain", "echo '{$HOME}' > blog/domain"},
        // Multi-line values in one write() (bash's own printf writes line by line, see below).
        {"domain", "/usr/bin/printf 'a.com\\n}\\n' > blog/domain"},
        {"domain", "/usr/bin/printf 'a.com\\nimport /etc/passwd\\n' > blog/domain"},
        {"domain", "/usr/bin/printf 'a.com\\n\\timport {\\n' > blog/domain"},
        {"domain", "echo 'a.com; reverse_proxy evil' > blog/domain"},
        {"domain", "printf 'a.com\\0b.com\\n' > blog/domain"},
        {"repo", "echo 'ext::sh -c x' > blog/repo"},
        {"repo", "echo '-uhttps://x' > blog/repo"},
        {"repo", "echo '--upload-pack=touch /tmp/x' > blog/repo"},
        {"repo", "/usr/bin/printf 'https://github.com/user/blog\\nhttps://evil\\n' > blog/repo"},
        {"branch", "echo '--orphan' > blog/branch"},
        {"branch", "echo 'main;rm -rf /' > blog/branch"},
        {"branch", "echo '../../etc' > blog/branch"},
        {"path", "echo '../../etc' > blog/path"},
        {"path", "echo '/etc' > blog/path"},
        {"deploy_key_ref", "echo 'cmd:$(id)' > blog/deploy_key_ref"},
        {"commit", "echo 'abc1234 --force' > blog/commit"},
    };
    const std::string export_before = read(".sites.toml");
    for (const auto& a : attempts) {
        SCOPED_TRACE(a.script);
        const std::string field = std::string("blog/") + a.field;
        const std::string before = read(field);
        const std::string desired_before = status_line("blog", "desired");
        EXPECT_TRUE(shell(a.script, {.code = 1, .err_has = "write error: Invalid argument"}));
        EXPECT_EQ(read(field), before);
        EXPECT_EQ(status_line("blog", "desired"), desired_before);
        EXPECT_NE(status_line("blog", "error"), "") << "the refusal and its reason land in status";
    }
    EXPECT_EQ(read(".sites.toml"), export_before);
    EXPECT_EQ(read("blog/domain"), "blog.example.com\n");
    EXPECT_EQ(read("blog/repo"), "https://github.com/user/blog\n");
    EXPECT_EQ(read("blog/branch"), "main\n");
}

// bash's builtin echo and printf write a multi-line value one line per write(): the first line
// alone is a valid value, the whole is not. The refusal must leave the value as it was.
TEST_F(AtTheShell, AMultiLineInjectionWrittenLineByLineChangesNothing) {
    make_blog();
    const std::string export_before = read(".sites.toml");
    for (const std::string script : {"printf 'a.com\\n}\\n' > blog/domain", "printf 'a.com\\nimport /etc/passwd\\n' > blog/domain",
                                     "echo $'a.com\\n{$HOME}' > blog/domain"}) {
        SCOPED_TRACE(script);
        ASSERT_EQ(write_errno("blog/domain", "blog.example.com\n"), 0);
        EXPECT_TRUE(shell(script, {.code = 1, .err_has = "write error: Invalid argument"}));
        EXPECT_EQ(read("blog/domain"), "blog.example.com\n");
        EXPECT_EQ(read(".sites.toml"), export_before);
    }
}

TEST_F(AtTheShell, AMultiLineValueWrittenLineByLineIsTakenWhole) {
    make_blog();
    EXPECT_TRUE(shell("printf 'blog.example.com\\nwww.example.com\\n' > blog/domain", {.err = ""}));
    EXPECT_EQ(read("blog/domain"), "blog.example.com\nwww.example.com\n");
}

TEST_F(AtTheShell, LocalRepoIsAcceptedWithAllowLocalRepos) {
    make_blog();
    EXPECT_TRUE(shell("echo file:///tmp/x > blog/repo && cat blog/repo", {.out = "file:///tmp/x\n", .err = ""}));
}

TEST_F(AtTheShell, AWriteIsDurableBeforeItReturnsAndTheRestartClearsTheStaleMount) {
    make_blog();
    ASSERT_TRUE(shell("echo www.example.com > blog/domain && echo main > blog/branch"));
    const std::string state_before_kill = status_line("blog", "generation");
    ASSERT_NO_FATAL_FAILURE(kill9());
    // A crashed daemon leaves its mount behind: "Transport endpoint is not connected".
    EXPECT_TRUE(is_mounted(mnt()));
    EXPECT_TRUE(check("ls " + mnt().string(), bash("ls " + mnt().string()),
                      {.code = 2, .err_has = "Transport endpoint is not connected"}));
    // The next start on the same mountpoint clears it by itself.
    ASSERT_NO_FATAL_FAILURE(start());
    EXPECT_NE(daemon_log().find("stale mount"), std::string::npos) << daemon_log();
    EXPECT_EQ(read("blog/domain"), "www.example.com\n");
    EXPECT_EQ(read("blog/branch"), "main\n");
    EXPECT_EQ(read("blog/repo"), "https://github.com/user/blog\n");
    EXPECT_EQ(status_line("blog", "generation"), state_before_kill);
    // Exactly one sitesfs mount on the mountpoint.
    int count = 0;
    for (const auto& p : mount_points()) count += p == mnt().string();
    EXPECT_EQ(count, 1);
}

// A daemon killed while a thread of it waited in the kernel (an entry invalidation behind a lookup
// that waits for the daemon) leaves a mount on which everything waits forever; a stopped daemon
// makes the same mount on purpose. The next start aborts its connection and mounts. (The stopped
// daemon keeps its state dir's lock, which a killed one gives up once its mount is aborted, so the
// next start uses another state dir.)
TEST_F(AtTheShell, TheNextStartAbortsAWedgedMount) {
    make_blog();
    ASSERT_NO_FATAL_FAILURE(freeze());
    // Something already waiting on the wedged mount is released by the abort, not left hanging.
    std::optional<Run> waiting;
    std::thread reader([&] { waiting = sh_in(tmp(), "cat mnt/blog/domain", 60s); });
    std::this_thread::sleep_for(1s);  // the reader is waiting on the frozen daemon by now
    const bool started = [&] {
        start({"--state-dir", (tmp() / "other-state").string()});
        return !HasFatalFailure();
    }();
    reader.join();
    ASSERT_TRUE(started);
    ASSERT_TRUE(waiting.has_value());
    EXPECT_NE(waiting->code, 0) << waiting->out;
    EXPECT_NE(waiting->err.find("Software caused connection abort"), std::string::npos) << waiting->err;
    EXPECT_NE(daemon_log().find("does not answer"), std::string::npos) << daemon_log();
    EXPECT_TRUE(shell("mkdir shop && ls", {.out = "shop\n"}));
    int count = 0;
    for (const auto& p : mount_points()) count += p == mnt().string();
    EXPECT_EQ(count, 1);
}

TEST_F(AtTheShell, ValuesSurviveACleanRestart) {
    make_blog();
    ASSERT_TRUE(shell("mkdir shop && echo user/shop > shop/repo && echo abc1234 > blog/commit && "
                      "echo 'shop.example.com www.shop.example.com' > shop/domain"));
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_TRUE(shell("ls", {.out = "blog\nshop\n"}));
    EXPECT_EQ(read("blog/domain"), "blog.example.com\n");
    EXPECT_EQ(read("blog/repo"), "https://github.com/user/blog\n");
    EXPECT_EQ(status_line("blog", "desired"), "commit abc1234");
    EXPECT_EQ(read("shop/repo"), "user/shop\n");
    EXPECT_EQ(read("shop/domain"), "shop.example.com\nwww.shop.example.com\n");
    // The uniqueness of domains survives too.
    EXPECT_EQ(write_errno("shop/domain", "blog.example.com\n"), EEXIST);
}

}  // namespace
}  // namespace sitesfs::it
