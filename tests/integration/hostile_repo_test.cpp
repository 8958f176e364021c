// Hostile repositories deployed end to end (real git, real Caddy): whatever a repository holds,
// the web root holds only directories and regular files whose bytes come from the commit — no
// link, no .git, nothing from outside — and a tree over a cap fails cleanly, leaving the
// previous release serving.
#include <sys/stat.h>

#include <cstdlib>
#include <map>
#include <set>

#include "tests/integration/deploy_fixture.hpp"

namespace sitesfs::it {
namespace {

bool is_dot_git(const std::string& segment) {
    std::string lower = segment;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lower == ".git";
}

class HostileRepo : public DeployTest {
protected:
    stdfs::path releases() const { return data() / "blog" / "releases"; }

    // Commits the tree that `script` prints (a hash, made with plumbing) on top of main and pushes
    // it; returns the commit, "" (and a failure) when git fails.
    std::string push_tree(const std::string& script) {
        const std::string out = repo_->sh("t=$(" + script + "); c=$(git commit-tree $t -p HEAD -m hostile); "
                                          "git push -q origin $c:refs/heads/main; git reset -q --soft $c; echo $c");
        return out.substr(0, 40);
    }

    // What the web root must hold for `sha`: every blob (regular, executable or link text) by
    // path, except under a .git segment; submodules are absent. Directories: every parent.
    struct Expected {
        std::map<std::string, std::string> files;  // path -> blob id
        std::set<std::string> dirs;
    };
    Expected expected_tree(const std::string& sha) {
        Expected e;
        const std::string listing = repo_->git({"ls-tree", "-r", "-t", "-z", sha});
        for (size_t at = 0; at < listing.size();) {
            const size_t end = listing.find('\0', at);
            const std::string entry = listing.substr(at, end - at);
            at = end + 1;
            const std::string mode = entry.substr(0, entry.find(' '));
            const std::string id = entry.substr(entry.find(' ', entry.find(' ') + 1) + 1, 40);
            const std::string path = entry.substr(entry.find('\t') + 1);
            bool under_git = false;
            for (const auto& seg : stdfs::path(path)) under_git = under_git || is_dot_git(seg.string());
            if (under_git || mode == "160000") continue;
            if (mode == "040000") e.dirs.insert(path);
            else e.files[path] = id;
        }
        return e;
    }

    // The web root of the live release against the commit, entry by entry.
    void expect_web_root_is(const std::string& sha) {
        const stdfs::path root = data() / "blog" / "current";
        ASSERT_EQ(stdfs::read_symlink(root), stdfs::path("releases") / sha);
        const Expected want = expected_tree(sha);
        std::set<std::string> files, dirs;
        for (auto it = stdfs::recursive_directory_iterator(root); it != stdfs::recursive_directory_iterator(); ++it) {
            const std::string rel = stdfs::relative(it->path(), root).string();
            const auto type = it->symlink_status().type();
            EXPECT_FALSE(is_dot_git(it->path().filename().string())) << rel;
            if (type == stdfs::file_type::directory) {
                dirs.insert(rel);
            } else if (type == stdfs::file_type::regular) {
                files.insert(rel);
                const auto w = want.files.find(rel);
                if (w == want.files.end()) {
                    ADD_FAILURE() << rel << " is not in commit " << sha;
                    continue;
                }
                EXPECT_EQ(slurp(it->path()), repo_->git({"cat-file", "blob", w->second})) << rel;
            } else {
                ADD_FAILURE() << rel << " is neither a regular file nor a directory";
            }
        }
        std::set<std::string> want_files;
        for (const auto& [path, id] : want.files) want_files.insert(path);
        EXPECT_EQ(files, want_files);
        EXPECT_EQ(dirs, want.dirs);
    }

    int http_code(const std::string& host, const std::string& path) const {
        const Run r = fetch(host, path);
        return r.out.size() > 12 && r.out.starts_with("HTTP/") ? std::atoi(r.out.c_str() + r.out.find(' ') + 1) : -1;
    }

    // The site's `log` names what the release left out or changed.
    void expect_reported(const std::string& what) const {
        EXPECT_NE(read("blog/log").find(what), std::string::npos) << read("blog/log");
    }

    std::string live_v1() {
        const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
        EXPECT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n") << daemon_log();
        return v1;
    }
};

TEST_F(HostileRepo, SymlinkToEtcPasswdIsServedAsItsLinkText) {
    const std::string sha = repo_->commit({{"index.html", "page\n"},
                                           {"passwd", "symlink:/etc/passwd"},
                                           {"etc", "symlink:/etc"},
                                           {"docs/shadow", "symlink:../../../../../../etc/shadow"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log();
    expect_web_root_is(sha);
    EXPECT_EQ(body("blog.test", "/passwd"), "/etc/passwd");
    EXPECT_EQ(body("blog.test", "/docs/shadow"), "../../../../../../etc/shadow");
    EXPECT_EQ(http_code("blog.test", "/etc/passwd"), 404);
    EXPECT_EQ(http_code("blog.test", "/etc/hostname"), 404);
    for (const std::string p : {"/passwd", "/etc/passwd", "/docs/shadow", "/etc/"})
        EXPECT_EQ(body("blog.test", p).find("root:"), std::string::npos) << p;
    expect_reported("passwd: symbolic link");
    expect_reported("etc: symbolic link");
}

TEST_F(HostileRepo, SymlinkToTheStateDirServesNothingOfIt) {
    const std::string sha = repo_->commit({{"index.html", "page\n"},
                                           {"state", "symlink:" + state().string()},
                                           {"data", "symlink:" + data().string()},
                                           {"up", "symlink:../../.."}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log();
    expect_web_root_is(sha);
    EXPECT_EQ(body("blog.test", "/state"), state().string());
    // Every file the state and data dirs hold, asked for through each link.
    int asked = 0;
    for (const auto& dir : {state(), data()}) {
        for (const auto& e : stdfs::recursive_directory_iterator(dir)) {
            if (!e.is_regular_file()) continue;
            const std::string rel = stdfs::relative(e.path(), dir).string();
            for (const std::string link : {"/state/", "/data/", "/up/"}) {
                ++asked;
                EXPECT_EQ(http_code("blog.test", link + rel), 404) << link + rel;
            }
        }
    }
    EXPECT_GT(asked, 6);
    expect_reported("state: symbolic link");
}

TEST_F(HostileRepo, CommittedDotGitDirectoriesAreLeftOut) {
    repo_->commit({{"index.html", "page\n"}});
    // Porcelain refuses these paths; plumbing builds them: .git, .GIT and sub/.Git trees holding a
    // config with a hook path, and a .gIt blob.
    const std::string sha = push_tree(
        "cfg=$(printf '[core]\\n\\thooksPath = /tmp\\n' | git hash-object -w --stdin);"
        "page=$(echo inner | git hash-object -w --stdin);"
        "g=$(printf '100644 blob %s\\tconfig\\n' $cfg | git mktree);"
        "sub=$(printf '040000 tree %s\\t.Git\\n100644 blob %s\\tpage.html\\n' $g $page | git mktree);"
        "git cat-file -p HEAD^{tree} | { cat; printf '040000 tree %s\\t.git\\n040000 tree %s\\t.GIT\\n100644 blob %s\\t.gIt\\n"
        "040000 tree %s\\tsub\\n' $g $g $cfg $sub; } | git mktree");
    ASSERT_FALSE(sha.empty());
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log();
    expect_web_root_is(sha);
    EXPECT_EQ(body("blog.test", "/sub/page.html"), "inner\n");
    for (const std::string p : {"/.git/config", "/.GIT/config", "/.gIt", "/sub/.Git/config"}) {
        EXPECT_EQ(http_code("blog.test", p), 404) << p;
        EXPECT_EQ(body("blog.test", p).find("hooksPath"), std::string::npos) << p;
    }
    expect_reported(".git: .git is never written");
    expect_reported("sub/.Git: .git is never written");
}

TEST_F(HostileRepo, SubmodulesAreLeftOut) {
    // A gitlink, and a .gitmodules that would point a recursive clone at a command and at /etc.
    const std::string first = repo_->commit({{"index.html", "page\n"},
                                             {".gitmodules", "[submodule \"mod\"]\n\tpath = mod\n\turl = ext::sh -c id\n"
                                                             "[submodule \"etc\"]\n\tpath = etc\n\turl = file:///etc\n"}});
    // Not through commit(): its `git add -A` would drop a gitlink that has no directory.
    repo_->git({"update-index", "--add", "--cacheinfo", "160000," + first + ",mod"});
    repo_->git({"commit", "-q", "-m", "submodule"});
    repo_->git({"push", "-q", "origin", "main"});
    const std::string sha = repo_->git({"rev-parse", "HEAD"}).substr(0, 40);
    ASSERT_EQ(repo_->git({"ls-tree", sha, "mod"}).substr(0, 6), "160000");
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log();
    expect_web_root_is(sha);
    EXPECT_FALSE(stdfs::exists(stdfs::symlink_status(data() / "blog" / "current" / "mod")));
    EXPECT_EQ(http_code("blog.test", "/mod/index.html"), 404);
    EXPECT_FALSE(stdfs::exists(data() / "blog" / "modules"));
    expect_reported("mod: submodule");
}

// A name is bytes from the repository: one with a newline must not forge a line of the site's log.
TEST_F(HostileRepo, NamesWithControlBytesCannotForgeLogLines) {
    repo_->commit({{"index.html", "page\n"}});
    const std::string sha = push_tree(
        "l=$(printf /etc/passwd | git hash-object -w --stdin);"
        "{ git ls-tree -z HEAD; printf '120000 blob %s\\tx\\n2026-01-01T00:00:00Z deployed 000000000000 in 1 ms\\0' $l; } | git mktree -z");
    ASSERT_FALSE(sha.empty());
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log();
    expect_web_root_is(sha);
    const std::string log = read("blog/log");
    EXPECT_EQ(split_lines(log).size(), 1u) << log;
    expect_reported("x\\x0a2026-01-01T00:00:00Z deployed 000000000000 in 1 ms: symbolic link");
}

// A deploy over a cap fails at stage: the reason names the cap and its limit, the previous
// release keeps serving, and nothing half-written is left (only the fetched objects stay).
// Scale 10 has the sizes of issue 7 (a 200 MiB blob, 100,000 files); scale 1 is the same shape
// ten times smaller. The 100,000-file test (about 2 minutes here) is DISABLED_ in the default run,
// where the scaled one stands for it; `ctest -L long` (cmake -DSITESFS_LONG_TESTS=ON) runs it.
template <uint64_t Scale>
class Caps : public HostileRepo {
protected:
    const uint64_t blob_mb = 20 * Scale;
    const uint64_t max_bytes = (10ull << 20) * Scale;
    const uint64_t dirs = 10 * Scale;  // of 1000 files each
    const uint64_t max_files = 5000 * Scale;

    void SetUp() override {
        reconcile_config_ = caps(1);
        DeployTest::SetUp();
    }

    std::string caps(uint64_t factor) const {
        return "max_bytes = " + std::to_string(max_bytes * factor) + "\nmax_files = " + std::to_string(max_files * factor) + "\n";
    }

    static std::map<std::string, uintmax_t> sizes(const stdfs::path& dir) {
        std::map<std::string, uintmax_t> out;
        for (const auto& e : stdfs::recursive_directory_iterator(dir))
            out[stdfs::relative(e.path(), dir).string()] = e.is_regular_file() ? e.file_size() : 0;
        return out;
    }

    static uintmax_t du(const stdfs::path& dir) {
        uintmax_t total = 0;
        for (const auto& e : stdfs::recursive_directory_iterator(dir))
            if (e.is_regular_file()) total += e.file_size();
        return total;
    }

    // Waits for the deploy of `sha` to fail (fetch and stage can outlast the wait file's timeout)
    // and checks that only the fetched objects are new under the site's data dir.
    void expect_clean_failure(const std::string& v1, const std::string& sha, const std::string& reason,
                              const std::map<std::string, uintmax_t>& releases_before, uintmax_t repo_before) {
        ASSERT_TRUE(eventually([&] { return status_line("blog", "state") == "failed"; }, 600s, 200ms))
            << read("blog/status") << daemon_log();
        const std::string error = status_line("blog", "error");
        EXPECT_NE(error.find("stage: " + reason), std::string::npos) << error;
        EXPECT_NE(read("blog/log").find("failed " + sha.substr(0, 12)), std::string::npos) << read("blog/log");
        EXPECT_EQ(status_line("blog", "commit"), v1);
        EXPECT_EQ(body("blog.test"), "v1\n");
        EXPECT_EQ(stdfs::read_symlink(data() / "blog" / "current"), stdfs::path("releases") / v1);
        EXPECT_EQ(sizes(releases()), releases_before) << "a .stage-* or a partial release is left";
        std::set<std::string> entries;
        for (const auto& e : stdfs::directory_iterator(data() / "blog")) entries.insert(e.path().filename());
        EXPECT_EQ(entries, (std::set<std::string>{".sitesfs-site", "current", "releases", "repo.git"}));
        RecordProperty("fetched_bytes", std::to_string(du(data() / "blog" / "repo.git") - repo_before));
    }

    // The cap raised in the config file (the documented way) and sitesfs restarted with it: the
    // same commit goes live.
    void expect_live_with_caps_raised(const std::string& sha) {
        reconcile_config_ = caps(100);
        spit(config_file(), config_text() + extra_config());
        ASSERT_NO_FATAL_FAILURE(restart());
        ASSERT_TRUE(eventually([&] { return status_line("blog", "state") == "live" && status_line("blog", "commit") == sha; },
                               600s, 200ms))
            << read("blog/status") << daemon_log();
    }

    void blob_over_max_bytes() {
        const std::string v1 = live_v1();
        const auto releases_before = sizes(releases());
        const uintmax_t repo_before = du(data() / "blog" / "repo.git");
        // Zeros: the cap is on the size checked out (read from the object header before the blob
        // is inflated), so how well it compresses does not matter, and zeros keep the repo small.
        const std::string sha = repo_->sh("head -c " + std::to_string(blob_mb << 20) + " /dev/zero > big.bin; git add big.bin; "
                                          "git commit -q -m big; git push -q origin main; git rev-parse HEAD").substr(0, 40);
        ASSERT_EQ(sha.size(), 40u);
        ASSERT_NO_FATAL_FAILURE(expect_clean_failure(
            v1, sha, "the tree has more than " + std::to_string(max_bytes) + " bytes of files (limit: [reconcile] max_bytes), at big.bin",
            releases_before, repo_before));
        ASSERT_NO_FATAL_FAILURE(expect_live_with_caps_raised(sha));
        EXPECT_EQ(stdfs::file_size(data() / "blog" / "current" / "big.bin"), blob_mb << 20);
        EXPECT_EQ(body("blog.test"), "v1\n");
    }

    void more_files_than_max_files() {
        const std::string v1 = live_v1();
        const auto releases_before = sizes(releases());
        const uintmax_t repo_before = du(data() / "blog" / "repo.git");
        // DIRS directories of 1000 files, built with plumbing: one subtree shared by all, so the
        // repository stays tiny while the checkout is large (the attack the cap exists for).
        const std::string sha = push_tree("e=$(git hash-object -w --stdin < /dev/null);"
                                  "sub=$(for i in $(seq 1000); do printf '100644 blob %s\\tf%04d.html\\n' $e $i; done | git mktree);"
                                  "for d in $(seq " + std::to_string(dirs) + "); do printf '040000 tree %s\\td%03d\\n' $sub $d; done | "
                                  "{ cat; git ls-tree HEAD; } | git mktree");
        ASSERT_FALSE(sha.empty());
        ASSERT_NO_FATAL_FAILURE(expect_clean_failure(
            v1, sha, "the tree has more than " + std::to_string(max_files) + " files and directories (limit: [reconcile] max_files)",
            releases_before, repo_before));
        ASSERT_NO_FATAL_FAILURE(expect_live_with_caps_raised(sha));
        EXPECT_EQ(http_code("blog.test", "/d001/f0001.html"), 200);
        EXPECT_EQ(http_code("blog.test", "/d" + std::string(dirs >= 100 ? "100" : "010") + "/f1000.html"), 200);
        EXPECT_EQ(body("blog.test"), "v1\n");
    }
};

// The 200 MiB blob takes about 20 s here (the cap stops it before it is inflated); 100,000
// files take about 100 s (50,000 written and removed, then 100,000 with the cap raised).
using HostileRepoCaps = Caps<10>;
using HostileRepoCapsScaled = Caps<1>;

TEST_F(HostileRepoCaps, A200MiBBlobOverMaxBytesFailsTheDeployCleanly) { blob_over_max_bytes(); }
TEST_F(HostileRepoCaps, DISABLED_A100000FileTreeOverMaxFilesFailsTheDeployCleanly) { more_files_than_max_files(); }
TEST_F(HostileRepoCapsScaled, A10000FileTreeOverMaxFilesFailsTheDeployCleanly) { more_files_than_max_files(); }

TEST_F(HostileRepo, NestingDeeperThanTheLimitFailsAndWithinItIsServed) {
    const std::string v1 = live_v1();
    // A chain of directories `d` ending in f.html, DEPTH levels below the root.
    const auto nested = [&](int depth) {
        // Beside the files of v1 (HEAD has the previous nested `d` after the first round).
        return push_tree("leaf=$(echo deep | git hash-object -w --stdin);"
                                  "t=$(printf '100644 blob %s\\tf.html\\n' $leaf | git mktree);"
                                  "for i in $(seq " + std::to_string(depth) + "); do t=$(printf '040000 tree %s\\td\\n' $t | git mktree); done;"
                                  "{ printf '040000 tree %s\\td\\n' $t; git ls-tree " + v1 + "; } | git mktree");
    };
    // The root is depth 0 and directories may nest 128 deep: f.html sits at depth DEPTH + 1.
    const std::string too_deep = nested(128);
    ASSERT_TRUE(eventually([&] { return status_line("blog", "state") == "failed"; }, 60s, 100ms)) << read("blog/status");
    EXPECT_NE(status_line("blog", "error").find("stage: the tree nests directories deeper than 128 levels"), std::string::npos)
        << read("blog/status");
    EXPECT_NE(read("blog/log").find("failed " + too_deep.substr(0, 12)), std::string::npos) << read("blog/log");
    EXPECT_EQ(status_line("blog", "commit"), v1);
    EXPECT_EQ(body("blog.test"), "v1\n");
    for (const auto& e : stdfs::directory_iterator(releases()))
        EXPECT_EQ(e.path().filename(), v1) << "left behind by the failed stage";

    const std::string within = nested(127);
    ASSERT_TRUE(eventually([&] { return status_line("blog", "commit") == within; }, 60s, 100ms)) << read("blog/status");
    EXPECT_EQ(status_line("blog", "state"), "live");
    std::string deep_path;
    for (int i = 0; i < 128; ++i) deep_path += "/d";
    EXPECT_EQ(body("blog.test", deep_path + "/f.html"), "deep\n");
    expect_web_root_is(within);
}

}  // namespace
}  // namespace sitesfs::it
