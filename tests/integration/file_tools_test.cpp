// The file tools people point at a site, run for real: cp -r and cp -a, GNU tar (to a new name and
// onto the site, with and without --overwrite), install, mv and cp --remove-destination from
// another file system, rsync -a twice, ansible's lineinfile and copy, "ensure present" shell
// idioms, and two shells racing for one domain. Each must exit 0 (or fail for the one reason
// that is true), end promptly, and leave exactly the values it wrote.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "mount_fixture.hpp"

namespace sitesfs::it {
namespace {

class FileTools : public MountTest {
protected:
    void SetUp() override {
        MountTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        // Every tool here is one the suite installs (scripts/install-deps): missing is a failure.
        for (const char* tool : {"cp", "tar", "install", "mv", "rsync", "ansible"})
            ASSERT_TRUE(shell(std::string("command -v ") + tool + " >/dev/null")) << tool << " is not installed";
    }

    // blog with every setting but its domain, so that a copy under another name can take them all.
    void make_template() {
        ASSERT_NO_FATAL_FAILURE(make_site("blog", ""));
        ASSERT_TRUE(shell("echo dev > blog/branch && echo public > blog/path && echo file:blog > blog/deploy_key_ref",
                          {.err = ""}));
    }

    // The settings of `site` as `name=value` lines, read by name. (`commit` reads what is served,
    // nothing here without a reconciler: a copy carries the commit a site serves, not a pin that
    // is not served yet.)
    std::string settings(const std::string& site) const {
        std::string out;
        for (const auto& f : kSiteFiles) out += f + "=" + read(site + "/" + f);
        return out;
    }
};

TEST_F(FileTools, CpRecursiveCopiesEverySettingToANewSite) {
    ASSERT_NO_FATAL_FAILURE(make_template());
    EXPECT_TRUE(shell("cp -r blog copy", {.out = "", .err = ""}));
    EXPECT_EQ(settings("copy"), settings("blog"));
    EXPECT_TRUE(only_fields("copy"));
    // cp -a also carries modes, owners and times, which sitesfs keeps for its settings.
    EXPECT_TRUE(shell("cp -a blog again", {.out = "", .err = ""}));
    EXPECT_EQ(settings("again"), settings("blog"));
    EXPECT_TRUE(shell("for f in repo branch path deploy_key_ref; do"
                      " [ \"$(stat -c %Y.%y blog/$f)\" = \"$(stat -c %Y.%y again/$f)\" ] || echo \"$f differs\"; done",
                      {.out = "", .err = ""}));
}

TEST_F(FileTools, CpOfASiteWithADomainSaysTheOneTrueReasonItCannotCopyIt) {
    ASSERT_NO_FATAL_FAILURE(make_site("blog", "blog.example.com"));
    // A domain belongs to one site: the copy gets everything else, and cp says why not that.
    const Run r = sh("cp -r blog copy");
    EXPECT_EQ(r.code, 1) << describe(r);
    EXPECT_NE(r.err.find("copy/domain"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("File exists"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(read("copy/repo"), read("blog/repo"));
    EXPECT_EQ(read("blog/domain"), "blog.example.com\n");
}

TEST_F(FileTools, TarRestoresASiteToANewNameAndOntoItself) {
    ASSERT_NO_FATAL_FAILURE(make_template());
    const std::string want = settings("blog");
    ASSERT_TRUE(shell("tar -cf \"$SITESFS_TMP/blog.tar\" blog", {.err = ""}));
    // A new name, as a restore beside the original.
    EXPECT_TRUE(shell("timeout 30 tar -xf \"$SITESFS_TMP/blog.tar\" --transform 's/^blog/restored/'", {.out = "", .err = ""}));
    EXPECT_EQ(settings("restored"), want);
    // Onto the site after it changed, without and with --overwrite: tar unlinks each file and
    // creates it exclusively, or opens it with O_TRUNC. Neither may loop (timeout).
    for (const std::string overwrite : {"", " --overwrite"}) {
        SCOPED_TRACE("tar -x" + overwrite);
        ASSERT_TRUE(shell("echo main > blog/branch && : > blog/path && rm blog/deploy_key_ref", {.err = ""}));
        EXPECT_TRUE(shell("timeout 30 tar -xf \"$SITESFS_TMP/blog.tar\"" + overwrite, {.out = "", .err = ""}));
        EXPECT_EQ(settings("blog"), want);
        EXPECT_TRUE(only_fields("blog"));
    }
    // Removed, then restored whole, its domain included.
    ASSERT_TRUE(shell("echo blog.example.com > blog/domain && tar -cf \"$SITESFS_TMP/full.tar\" blog && rm -r blog",
                      {.err = ""}));
    EXPECT_TRUE(shell("ls", {.out = "restored\n"}));
    EXPECT_TRUE(shell("timeout 30 tar -xf \"$SITESFS_TMP/full.tar\" && cat blog/domain", {.out = "blog.example.com\n", .err = ""}));
}

TEST_F(FileTools, InstallMvAndCpRemoveDestinationReplaceASetting) {
    ASSERT_NO_FATAL_FAILURE(make_site("blog", "blog.example.com"));
    const std::string before = read(".sites.toml");
    // Each unlinks the setting, then creates it exclusively; the unlink alone changes no value.
    EXPECT_TRUE(shell("echo v1 > \"$SITESFS_TMP/v\" && timeout 30 install -m 644 \"$SITESFS_TMP/v\" blog/branch &&"
                      " cat blog/branch",
                      {.out = "v1\n", .err = ""}));
    EXPECT_TRUE(shell("echo v2 > \"$SITESFS_TMP/v\" && timeout 30 mv \"$SITESFS_TMP/v\" blog/branch && cat blog/branch",
                      {.out = "v2\n", .err = ""}));
    EXPECT_TRUE(shell("echo v3 > \"$SITESFS_TMP/v\" && timeout 30 cp --remove-destination \"$SITESFS_TMP/v\" blog/branch &&"
                      " cat blog/branch",
                      {.out = "v3\n", .err = ""}));
    // A refused value fails the tool, and the site keeps the value it had.
    const Run r = sh("echo 'bad..branch' > \"$SITESFS_TMP/v\" && install \"$SITESFS_TMP/v\" blog/branch");
    EXPECT_NE(r.code, 0) << describe(r);
    EXPECT_NE(r.err.find("Invalid argument"), std::string::npos) << r.err;
    EXPECT_NE(read(".sites.toml").find("branch = \"v3\""), std::string::npos);
    EXPECT_NE(before, read(".sites.toml"));
}

TEST_F(FileTools, EnsurePresentIdiomsAreIdempotentOnDomainLines) {
    ASSERT_NO_FATAL_FAILURE(make_site("blog", "blog.example.com"));
    const std::string script = "grep -qx www.example.com blog/domain || echo www.example.com >> blog/domain";
    EXPECT_TRUE(shell(script, {.err = ""}));
    const std::string generation = status_line("blog", "generation");
    EXPECT_TRUE(shell(script, {.err = ""}));
    // Appending a name already listed succeeds and changes nothing either.
    EXPECT_TRUE(shell("echo blog.example.com >> blog/domain", {.err = ""}));
    EXPECT_EQ(read("blog/domain"), "blog.example.com\nwww.example.com\n");
    EXPECT_EQ(status_line("blog", "generation"), generation);
}

TEST_F(FileTools, AnsibleLineinfileAndCopyChangeNothingTheSecondTime) {
    ASSERT_NO_FATAL_FAILURE(make_site("blog", "blog.example.com"));
    // ansible keeps its temp files and facts under the test's own dir, never the user's home.
    // Arguments as JSON, so that the copied content holds its newline.
    const auto ansible = [&](const std::string& module, const std::string& json_args) {
        return sh("LC_ALL=C.UTF-8 HOME=\"$SITESFS_TMP\" ANSIBLE_LOCAL_TEMP=\"$SITESFS_TMP/ansible\" ANSIBLE_REMOTE_TEMP=\"$SITESFS_TMP/ansible\""
                  " ANSIBLE_NOCOLOR=1 ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3"
                  " ansible localhost -c local -o -m " + module + " -a '" + json_args + "'",
                  120s);
    };
    for (int run = 0; run < 2; ++run) {
        SCOPED_TRACE("run " + std::to_string(run + 1));
        const Run line = ansible("lineinfile", "{\"path\": \"" + (mnt() / "blog/domain").string() + "\", \"line\": \"www.example.com\"}");
        EXPECT_EQ(line.code, 0) << describe(line);
        EXPECT_NE(line.out.find(run == 0 ? "\"changed\": true" : "\"changed\": false"), std::string::npos) << line.out;
        const Run copy = ansible("copy", "{\"content\": \"dev\\n\", \"dest\": \"" + (mnt() / "blog/branch").string() + "\"}");
        EXPECT_EQ(copy.code, 0) << describe(copy);
        EXPECT_NE(copy.out.find(run == 0 ? "\"changed\": true" : "\"changed\": false"), std::string::npos) << copy.out;
    }
    EXPECT_EQ(read("blog/domain"), "blog.example.com\nwww.example.com\n");
    EXPECT_EQ(read("blog/branch"), "dev\n");
    EXPECT_TRUE(only_fields("blog"));
}

TEST_F(FileTools, RsyncOfATreeOfSettingsSettles) {
    ASSERT_NO_FATAL_FAILURE(make_site("blog", "blog.example.com"));
    ASSERT_TRUE(shell("src=\"$SITESFS_TMP/src\" && mkdir -p \"$src/blog\" \"$src/news\" &&"
                      " echo https://github.com/user/blog > \"$src/blog/repo\" &&"
                      " printf 'blog.example.com\\nwww.example.com\\n' > \"$src/blog/domain\" &&"
                      " echo dev > \"$src/blog/branch\" && echo user/news > \"$src/news/repo\" &&"
                      " echo news.example.com > \"$src/news/domain\" && touch -d '2021-05-06 07:08:09' \"$src\"/*/*",
                      {.err = ""}));
    const auto rsync = [&] { return sh("rsync -a --stats \"$SITESFS_TMP/src/\" \"$MNT/\" | grep -E '^Number of regular files transferred'"); };
    const Run first = rsync();
    EXPECT_EQ(first.code, 0) << describe(first);
    EXPECT_EQ(first.out, "Number of regular files transferred: 5\n");
    EXPECT_EQ(read("blog/domain"), "blog.example.com\nwww.example.com\n");
    EXPECT_EQ(read("news/repo"), "user/news\n");
    for (int run = 0; run < 2; ++run) {
        const Run again = rsync();
        EXPECT_EQ(again.code, 0) << describe(again);
        EXPECT_EQ(again.out, "Number of regular files transferred: 0\n") << "run " << run + 2;
    }
    // Across a restart too: the times are stored with the values.
    ASSERT_NO_FATAL_FAILURE(restart());
    EXPECT_EQ(rsync().out, "Number of regular files transferred: 0\n");
}

TEST_F(FileTools, TwoShellsRacingForADomainHaveExactlyOneWinnerWhoseEchoSaysSo) {
    ASSERT_NO_FATAL_FAILURE(make_site("a", "a.test"));
    ASSERT_NO_FATAL_FAILURE(make_site("b", "b.test"));
    for (int i = 0; i < 8; ++i) {
        SCOPED_TRACE("race " + std::to_string(i));
        const std::string d = "d" + std::to_string(i) + ".test";
        const Run r = sh("echo " + d + " > a/domain 2>/dev/null & p=$!; echo " + d +
                         " > b/domain 2>/dev/null; rb=$?; wait $p; ra=$?; echo $ra $rb");
        ASSERT_EQ(r.code, 0) << describe(r);
        const bool a_won = r.out == "0 1\n";
        ASSERT_TRUE(a_won || r.out == "1 0\n") << "exit statuses (a b): " << r.out;
        // The shell that heard yes holds the domain; the other kept its own.
        EXPECT_EQ(read(a_won ? "a/domain" : "b/domain"), d + "\n");
        EXPECT_EQ(read(a_won ? "b/domain" : "a/domain"), (a_won ? "b.test\n" : "a.test\n"));
        ASSERT_TRUE(shell("echo a.test > a/domain && echo b.test > b/domain", {.err = ""}));
    }
}

TEST_F(FileTools, AnAcknowledgedEchoSurvivesAKillRightAfter) {
    ASSERT_NO_FATAL_FAILURE(make_site("blog", "blog.example.com"));
    for (int i = 0; i < 10; ++i) {
        SCOPED_TRACE("kill " + std::to_string(i));
        const std::string value = "v" + std::to_string(i);
        ASSERT_TRUE(shell("echo " + value + " > blog/branch", {.err = ""}));
        ASSERT_NO_FATAL_FAILURE(kill9());
        ASSERT_NO_FATAL_FAILURE(start());
        EXPECT_EQ(read("blog/branch"), value + "\n");
    }
}

}  // namespace
}  // namespace sitesfs::it
