// Every way people and tools rewrite a file must commit the final value, leave no temporary file
// behind, and report a refused value as a failure while leaving the stored value alone.
#include <string>

#include "mount_fixture.hpp"

namespace sitesfs::it {
namespace {

class Editors : public MountTest {
protected:
    void SetUp() override {
        MountTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        ASSERT_NO_FATAL_FAILURE(make_site("blog", "blog.example.com"));
    }

    // Runs an editor's script, then expects blog/domain to hold www.example.com and the site
    // directory to hold nothing but its files.
    void expect_edit(const std::string& script) {
        EXPECT_TRUE(check(script, sh(script, 30s), {}));
        EXPECT_EQ(read("blog/domain"), "www.example.com\n");
        EXPECT_EQ(status_line("blog", "error"), "");
        EXPECT_TRUE(only_fields("blog"));
    }

    // An editor writing a refused value: it must fail, and nothing may change. The refusal shows
    // in status unless the editor's own recovery rewrote the old value (a good write clears it).
    void expect_refused_edit(const std::string& script, bool error_stays_in_status = true) {
        const std::string export_before = read(".sites.toml");
        EXPECT_TRUE(check(script, sh(script, 30s), {.code = kNonZero}));
        EXPECT_EQ(read("blog/domain"), "blog.example.com\n");
        EXPECT_EQ(read(".sites.toml"), export_before);
        if (error_stays_in_status)
            EXPECT_NE(status_line("blog", "error").find("bad..com"), std::string::npos) << status_of("blog");
        else
            EXPECT_NE(daemon_log().find("bad..com"), std::string::npos) << "the refusal is logged";
    }

    // tmux on a socket of this test (killed in TearDown), without any user configuration.
    static std::string tmux() { return "tmux -f /dev/null -S \"$TMUX_SOCK\" "; }

    std::string screen() const { return sh(tmux() + "capture-pane -p -t T").out; }

    // Starts `command` in a detached 120x40 tmux session T in the mount, and waits (10 s) until
    // the screen shows `ready`.
    void start_session(const std::string& command, const std::string& ready) {
        ASSERT_TRUE(shell(tmux() + "new-session -d -s T -x 120 -y 40 -c \"$PWD\" '" + command + "'"));
        ASSERT_TRUE(eventually([&] { return screen().find(ready) != std::string::npos; }, 10s, 50ms))
            << "the screen never showed '" << ready << "':\n"
            << screen();
    }

    void keys(const std::string& args) { ASSERT_TRUE(shell(tmux() + "send-keys -t T " + args)); }

    void wait_for_screen(const std::string& text) {
        ASSERT_TRUE(eventually([&] { return screen().find(text) != std::string::npos; }, 10s, 50ms))
            << "the screen never showed '" << text << "':\n"
            << screen();
    }

    void wait_session_end() {
        const bool ended = eventually([&] { return sh(tmux() + "has-session -t T 2>/dev/null").code != 0; }, 15s, 50ms);
        ASSERT_TRUE(ended) << "the editor did not exit; screen:\n" << screen();
    }
};

TEST_F(Editors, Tee) { expect_edit("echo www.example.com | tee blog/domain >/dev/null"); }

TEST_F(Editors, TeeAppend) {
    EXPECT_TRUE(shell("echo www.example.com | tee -a blog/domain", {.out = "www.example.com\n"}));
    EXPECT_EQ(read("blog/domain"), "blog.example.com\nwww.example.com\n");
    EXPECT_TRUE(only_fields("blog"));
}

TEST_F(Editors, Cp) {
    spit(tmp() / "new-domain", "www.example.com\n");
    expect_edit("cp \"$SITESFS_TMP/new-domain\" blog/domain");
}

TEST_F(Editors, CpOfAFileWithoutTrailingNewline) {
    spit(tmp() / "new-domain", "www.example.com");
    expect_edit("cp \"$SITESFS_TMP/new-domain\" blog/domain");
}

TEST_F(Editors, SedInPlace) { expect_edit("sed -i s/blog/www/ blog/domain"); }

const std::string kVimEs = "vim -es -u NONE -i NONE -N ";
// vim skips its backup for files under /tmp ('backupskip'), where the tests mount; on /sites it
// makes one. Clearing 'backupskip' exercises what vim really does there: rename the field away
// (backupcopy=no, auto) or copy it (yes), then write and delete the backup.
const std::string kNoSkip = "-c 'set backupskip=' ";

class VimModes : public Editors, public ::testing::WithParamInterface<const char*> {};

TEST_P(VimModes, AsInTheBrief) {
    expect_edit(kVimEs + "-c 'set backupcopy=" + GetParam() + "' -c '%s/blog/www/' -c 'wq' blog/domain");
}

TEST_P(VimModes, WithItsBackup) {
    expect_edit(kVimEs + kNoSkip + "-c 'set backupcopy=" + GetParam() + "' -c '%s/blog/www/' -c 'wq' blog/domain");
}

TEST_P(VimModes, KeepingItsBackup) {
    // With 'backup' on, vim leaves domain~ behind on purpose: an in-memory temporary file.
    const std::string script =
        kVimEs + kNoSkip + "-c 'set backup backupcopy=" + GetParam() + "' -c '%s/blog/www/' -c 'wq' blog/domain";
    EXPECT_TRUE(check(script, sh(script, 30s), {}));
    EXPECT_EQ(read("blog/domain"), "www.example.com\n");
    EXPECT_EQ(read("blog/domain~"), "blog.example.com\n");
    EXPECT_TRUE(shell("rm blog/domain~ && cat blog/domain", {.out = "www.example.com\n"}));
    EXPECT_TRUE(only_fields("blog"));
}

TEST_P(VimModes, WritingAnInvalidValueFailsAndChangesNothing) {
    // After the refused :wq vim must still quit (:qa!), with a non-zero exit status. With a
    // backup, vim puts the original back after the failed write (which clears status' error).
    for (const std::string& skip : {std::string(), kNoSkip}) {
        SCOPED_TRACE(skip);
        expect_refused_edit(kVimEs + skip + "-c 'set backupcopy=" + GetParam() +
                                "' -c '%s/blog.example.com/bad..com/' -c 'wq' -c 'qa!' blog/domain",
                            skip.empty());
    }
}

INSTANTIATE_TEST_SUITE_P(Backupcopy, VimModes, ::testing::Values("yes", "no", "auto"));

TEST_F(Editors, Ed) { expect_edit("printf ',s/blog/www/\\nw\\nq\\n' | ed -s blog/domain"); }

TEST_F(Editors, PythonOpenWrite) {
    expect_edit("python3 -c 'open(\"blog/domain\", \"w\").write(\"www.example.com\\n\")'");
}

TEST_F(Editors, PythonWritesInPieces) {
    // Several write() calls, the last one ending the line: the value is their concatenation.
    expect_edit(
        "python3 -c 'import os\n"
        "fd = os.open(\"blog/domain\", os.O_WRONLY | os.O_TRUNC)\n"
        "os.write(fd, b\"www.\")\nos.write(fd, b\"example\")\nos.write(fd, b\".com\\n\")\nos.close(fd)'");
}

TEST_F(Editors, NanoThroughTmux) {
    ASSERT_NO_FATAL_FAILURE(start_session("nano blog/domain", "blog.example.com"));
    ASSERT_NO_FATAL_FAILURE(keys("C-k"));
    ASSERT_NO_FATAL_FAILURE(keys("-l www.example.com"));
    ASSERT_NO_FATAL_FAILURE(keys("C-o"));
    ASSERT_NO_FATAL_FAILURE(wait_for_screen("File Name to Write"));
    ASSERT_NO_FATAL_FAILURE(keys("Enter"));
    ASSERT_NO_FATAL_FAILURE(wait_for_screen("Wrote 1 line"));
    ASSERT_NO_FATAL_FAILURE(keys("C-x"));
    ASSERT_NO_FATAL_FAILURE(wait_session_end());
    EXPECT_EQ(read("blog/domain"), "www.example.com\n");
    EXPECT_TRUE(only_fields("blog"));
}

TEST_F(Editors, InteractiveVimThroughTmux) {
    // The user's vim as installed (defaults.vim, swap file, backupcopy=auto), no ~/.vimrc.
    ASSERT_NO_FATAL_FAILURE(start_session("vim -i NONE --cmd \"set backupskip=\" blog/domain", "blog.example.com"));
    ASSERT_NO_FATAL_FAILURE(keys("':%s/blog/www/' Enter"));
    ASSERT_NO_FATAL_FAILURE(wait_for_screen("www.example.com"));
    ASSERT_NO_FATAL_FAILURE(keys("':wq' Enter"));
    ASSERT_NO_FATAL_FAILURE(wait_session_end());
    EXPECT_EQ(read("blog/domain"), "www.example.com\n");
    EXPECT_TRUE(only_fields("blog"));
}

TEST_F(Editors, SedWritingAnInvalidValueFailsAndChangesNothing) {
    expect_refused_edit("sed -i s/blog.example.com/bad..com/ blog/domain");
}

TEST_F(Editors, TeeWritingAnInvalidValueFails) {
    expect_refused_edit("echo bad..com | tee blog/domain");
}

TEST_F(Editors, CpOfAnInvalidValueFails) {
    spit(tmp() / "bad-domain", "bad..com\n");
    expect_refused_edit("cp \"$SITESFS_TMP/bad-domain\" blog/domain");
}

TEST_F(Editors, PythonWritingAnInvalidValueFails) {
    // (A bare open().write() would not do: CPython's finalizer ignores errors of the implicit close.)
    expect_refused_edit("python3 -c 'with open(\"blog/domain\", \"w\") as f: f.write(\"bad..com\")'");
}

}  // namespace
}  // namespace sitesfs::it
