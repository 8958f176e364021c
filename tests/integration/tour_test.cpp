// The tour and the editors, through a real mount.
#include <sys/stat.h>

#include <fstream>
#include <thread>

#include "tests/integration/live_mount.hpp"

namespace {

const char* kFields = "branch\ncommit\ndeploy_key_ref\ndomain\npath\nrepo\nstatus\n";

class Shell : public MountTest {
protected:
    void make_blog() {
        const Result r = in_mnt("mkdir blog && echo https://github.com/user/blog > blog/repo && "
                             "echo blog.example.com > blog/domain");
        ASSERT_EQ(r.code, 0) << r.err;
    }
    void expect_clean_site_dir() {
        EXPECT_EQ(in_mnt("ls -A blog").out, kFields) << "an editor left a temporary file behind";
    }
};

TEST_F(Shell, TheTour) {
    EXPECT_EQ(in_mnt("mkdir blog && ls blog").out, kFields);
    EXPECT_EQ(in_mnt("grep -H state */status").out, "blog/status:state: incomplete\n");
    ASSERT_EQ(in_mnt("echo https://github.com/user/blog > blog/repo && echo blog.example.com > blog/domain").code, 0);
    EXPECT_EQ(read("blog/domain"), "blog.example.com\n");
    const Result bad = in_mnt("echo 'bad..com' > blog/domain");
    EXPECT_NE(bad.code, 0);
    EXPECT_NE(bad.err.find("write error: Invalid argument"), std::string::npos) << bad.err;
    EXPECT_EQ(read("blog/domain"), "blog.example.com\n");
    EXPECT_NE(in_mnt("grep '^error:' blog/status").out.find("bad..com"), std::string::npos);
    EXPECT_EQ(in_mnt("grep -H state */status").out, "blog/status:state: pending\n");
    ASSERT_EQ(in_mnt("sed -i s/blog/www/ blog/domain").code, 0);
    EXPECT_EQ(read("blog/domain"), "www.example.com\n");
    expect_clean_site_dir();
}

TEST_F(Shell, ValuesAreTrimmedNormalizedAndSizedExactly) {
    make_blog();
    ASSERT_EQ(in_mnt("printf '  X.Example.COM  \\n\\n' > blog/domain").code, 0);
    EXPECT_EQ(read("blog/domain"), "x.example.com\n");
    EXPECT_EQ(in_mnt("stat -c %s blog/domain").out, "14\n");
    ASSERT_EQ(in_mnt("echo bücher.de > blog/domain").code, 0);
    EXPECT_EQ(read("blog/domain"), "xn--bcher-kva.de\n");
    ASSERT_EQ(in_mnt("echo www.example.com >> blog/domain").code, 0);
    EXPECT_EQ(read("blog/domain"), "xn--bcher-kva.de www.example.com\n");
    for (const char* f : {"repo", "domain", "status", "branch"})
        EXPECT_EQ(in_mnt(std::string("stat -c %s blog/") + f).out, std::to_string(read(std::string("blog/") + f).size()) + "\n") << f;
}

TEST_F(Shell, ClearingPinningAndReadOnlyStatus) {
    make_blog();
    ASSERT_EQ(in_mnt("echo main > blog/branch && : > blog/branch").code, 0);
    EXPECT_EQ(read("blog/branch"), "\n");
    ASSERT_EQ(in_mnt("echo dev > blog/branch && truncate -s0 blog/branch").code, 0);
    EXPECT_EQ(read("blog/branch"), "\n");
    ASSERT_EQ(in_mnt("echo ABC1234 > blog/commit").code, 0);
    EXPECT_NE(read("blog/status").find("desired: commit abc1234\n"), std::string::npos);
    EXPECT_NE(in_mnt("echo xyz > blog/commit").code, 0);
    ASSERT_EQ(in_mnt("echo > blog/commit").code, 0);
    EXPECT_NE(read("blog/status").find("desired: default-branch\n"), std::string::npos);
    const Result ro = in_mnt("echo x > blog/status");
    EXPECT_NE(ro.err.find("Permission denied"), std::string::npos) << ro.err;
}

TEST_F(Shell, NamesDomainsAndInjectionsAreRefused) {
    make_blog();
    for (const char* name : {"Bad", "a_b", "-x", ".hidden", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
        const Result r = in_mnt(std::string("mkdir -- '") + name + "'");
        EXPECT_NE(r.code, 0) << name;
        EXPECT_NE(r.err.find("Invalid argument"), std::string::npos) << name << ": " << r.err;
    }
    EXPECT_NE(in_mnt("mkdir blog").err.find("File exists"), std::string::npos);
    ASSERT_EQ(in_mnt("mkdir shop && echo user/shop > shop/repo").code, 0);
    EXPECT_NE(in_mnt("echo blog.example.com > shop/domain").err.find("File exists"), std::string::npos);
    for (const char* v : {"a.com}", "a.com{", "#a.com", "a.com:8080", "http://a.com", "{$HOME}"}) {
        EXPECT_NE(in_mnt(std::string("echo '") + v + "' > blog/domain").code, 0) << v;
    }
    // bash's printf writes line by line: the line that is a valid name commits, the brace never does.
    EXPECT_NE(in_mnt("printf 'a.com\\n}\\n' > blog/domain").code, 0);
    EXPECT_EQ(read("blog/domain").find('}'), std::string::npos);
    ASSERT_EQ(in_mnt("echo blog.example.com > blog/domain").code, 0);
    EXPECT_NE(in_mnt("echo 'ext::sh -c x' > blog/repo").code, 0);
    EXPECT_NE(in_mnt("echo '-uhttps://x/y' > blog/repo").code, 0);
    EXPECT_EQ(read("blog/domain"), "blog.example.com\n");
    EXPECT_EQ(read("blog/repo"), "https://github.com/user/blog\n");
}

TEST_F(Shell, EditorsCommitThroughEveryPath) {
    make_blog();
    struct Case {
        const char* script;
        const char* expect;
    } cases[] = {
        {"echo tee.example.com | tee blog/domain >/dev/null", "tee.example.com"},
        {"echo cp.example.com > /tmp/sitesfs-cp-src.$$ && cp /tmp/sitesfs-cp-src.$$ blog/domain; rc=$?; rm -f /tmp/sitesfs-cp-src.$$; exit $rc", "cp.example.com"},
        {"sed -i s/cp/sed/ blog/domain", "sed.example.com"},
        {"vim -es -u NONE -i NONE -N -c 'set backupcopy=yes' -c '%s/sed/vimyes/' -c wq blog/domain", "vimyes.example.com"},
        {"vim -es -u NONE -i NONE -N -c 'set backupcopy=no' -c '%s/vimyes/vimno/' -c wq blog/domain", "vimno.example.com"},
        {"vim -es -u NONE -i NONE -N -c 'set backupcopy=auto' -c '%s/vimno/vimauto/' -c wq blog/domain", "vimauto.example.com"},
        {"printf ',s/vimauto/ed/\\nw\\nq\\n' | ed -s blog/domain", "ed.example.com"},
        {"python3 -c \"open('blog/domain','w').write('py.example.com\\n')\"", "py.example.com"},
    };
    for (const auto& c : cases) {
        const Result r = in_mnt(c.script);
        EXPECT_EQ(r.code, 0) << c.script << "\n" << r.err;
        EXPECT_EQ(read("blog/domain"), std::string(c.expect) + "\n") << c.script;
        expect_clean_site_dir();
    }
}

TEST_F(Shell, EditorsWritingABadValueFailAndChangeNothing) {
    make_blog();
    EXPECT_NE(in_mnt("sed -i s/blog.example.com/bad..com/ blog/domain").code, 0);
    EXPECT_NE(in_mnt("vim -es -u NONE -i NONE -N -c '%s/blog/bad../' -c wq blog/domain").code, 0);
    EXPECT_EQ(read("blog/domain"), "blog.example.com\n");
}

TEST_F(Shell, NanoThroughTmux) {
    make_blog();
    const std::string sock = (dir_ / "tmux.sock").string();
    const std::string t = "tmux -S '" + sock + "' ";
    ASSERT_EQ(in_mnt(t + "new-session -d -x 100 -y 30 'nano blog/domain'").code, 0);
    // Wait for nano's screen, edit, save, quit; then wait for the session to end.
    const Result r = in_mnt("for i in $(seq 100); do " + t + "capture-pane -p | grep -q 'GNU nano' && break; sleep 0.05; done; " + t +
                         "send-keys C-k nano.example.com C-o Enter; for i in $(seq 100); do " + t +
                         "capture-pane -p | grep -q 'Wrote' && break; sleep 0.05; done; " + t +
                         "send-keys C-x; for i in $(seq 100); do " + t + "has-session 2>/dev/null || exit 0; sleep 0.05; done; exit 1");
    in_mnt(t + "kill-server 2>/dev/null");
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(read("blog/domain"), "nano.example.com\n");
    expect_clean_site_dir();
}

TEST_F(Shell, TreeToolsSeeAConsistentTree) {
    make_blog();
    EXPECT_EQ(in_mnt("ls -l blog | awk 'NR>1{print $1, $9}'").out,
              "-rw-r--r-- branch\n-rw-r--r-- commit\n-rw-r--r-- deploy_key_ref\n-rw-r--r-- domain\n-rw-r--r-- path\n"
              "-rw-r--r-- repo\n-r--r--r-- status\n");
    EXPECT_EQ(in_mnt("find . -type f | sort | head -3").out, "./.sites.toml\n./blog/branch\n./blog/commit\n");
    EXPECT_EQ(in_mnt("grep -rl blog.example.com . | sort").out, "./.sites.toml\n./blog/domain\n");
    const Result tar = in_mnt("mkdir -p '" + (dir_ / "x").string() + "' && tar -cf - . | tar -xf - -C '" + (dir_ / "x").string() +
                           "' && diff -r . '" + (dir_ / "x").string() + "'");
    EXPECT_EQ(tar.code, 0) << tar.out << tar.err;
    EXPECT_NE(in_mnt("touch newfile").err.find("Operation not permitted"), std::string::npos);
    EXPECT_NE(in_mnt("mkdir blog/sub").code, 0);
    EXPECT_NE(in_mnt("ln -s x blog/l").code, 0);
    for (int i = 0; i < 50; ++i) {
        const std::string v = "v" + std::to_string(i) + ".example.com";
        ASSERT_EQ(in_mnt("echo " + v + " > blog/domain && cat blog/domain").out, v + "\n");
    }
}

TEST_F(Shell, RmdirAndRmRemoveSites) {
    make_blog();
    ASSERT_EQ(in_mnt("mkdir shop && rm -r shop && rmdir blog").code, 0);
    EXPECT_EQ(in_mnt("ls").out, "");
}

TEST_F(Shell, ReadOnlyInstanceFollowsAndRefuses) {
    make_blog();
    const auto ro = dir_ / "ro";
    extra_pids_.push_back(start(ro, {"-o", "ro"}));
    EXPECT_EQ(sh("cat blog/domain", ro).out, "blog.example.com\n");
    for (const char* cmd : {"echo x.com > blog/domain", "mkdir x", "rmdir blog", "touch blog/t"})
        EXPECT_NE(sh(cmd, ro).err.find("Read-only file system"), std::string::npos) << cmd;
    ASSERT_EQ(in_mnt("echo www.example.com > blog/domain && mkdir shop").code, 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    std::string seen;
    while (std::chrono::steady_clock::now() < deadline) {
        seen = sh("cat blog/domain; ls", ro).out;
        if (seen == "www.example.com\nblog\nshop\n") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(seen, "www.example.com\nblog\nshop\n");
}

}  // namespace
