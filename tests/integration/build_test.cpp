// Sites that are built (docs/builds.md), end to end: a builder from the config named in a site's
// `build`, run sandboxed by the real bubblewrap as `nobody`, its output served by a real Caddy. What
// a hostile or broken build leaves never reaches the web root, and the previous release keeps
// serving.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <regex>

#include "tests/integration/deploy_fixture.hpp"

namespace sitesfs::it {
namespace {

const std::map<std::string, std::string> kHugoSite{
    {"config.toml", "baseURL = '/'\ntitle = 'Blog'\ndisableKinds = ['taxonomy', 'term', 'RSS', 'sitemap']\n"},
    {"content/_index.md", "---\ntitle: Home\n---\nHello from hugo.\n"},
    {"layouts/index.html", "<h1>{{ .Title }}</h1>{{ .Content }}\n"},
};

class Builds : public DeployTest {
protected:
    void before_start() override {
        if (::access("/usr/bin/bwrap", X_OK) != 0) SITESFS_CANNOT_RUN() << "bubblewrap not installed (scripts/install-deps)";
        if (::access("/usr/bin/hugo", X_OK) != 0) SITESFS_CANNOT_RUN() << "hugo not installed (scripts/install-deps)";
        // mkdtemp's 0700 would keep the build's user from reaching its scratch dir under the data dir.
        ASSERT_EQ(::chmod(tmp().c_str(), 0755), 0);
    }

    std::string build_table_;  // more lines for [build]

    // Every builder's environment holds this, so that the test finds its own builds among the
    // processes of `nobody` (another test may be building meanwhile).
    std::string marker() const { return "SITESFS_TEST=" + tmp().string(); }

    std::string extra_config() const override {
        const std::string env = "env = [\"" + marker() + "\"]\n";
        return "[build]\nuser = \"nobody\"\njobs = 2\n" + build_table_ +
               "[builders.hugo]\ncommand = [\"hugo\", \"--minify\", \"--destination\", \"{out}\"]\n" + env +
               // The repository's own script, as `npm run build` runs package.json's: what a hostile
               // repository would do with any builder.
               "[builders.script]\ncommand = [\"sh\", \"build.sh\", \"{out}\"]\ntimeout = 3\nmemory = 256\n" + env +
               "[builders.online]\ncommand = [\"sh\", \"build.sh\", \"{out}\"]\nnetwork = true\n" + env +
               "[builders.slow]\ncommand = [\"sh\", \"build.sh\", \"{out}\"]\ntimeout = 120\n" + env;
    }

    // A site with `build` set before its repo and domain, so its first deploy builds.
    std::string create_built_site(const std::string& site, const std::string& builder, const std::string& domain) const {
        EXPECT_TRUE(shell("mkdir " + site + " && echo " + builder + " > " + site + "/build && echo " + repo_->url() + " > " +
                          site + "/repo && echo " + domain + " > " + site + "/domain"));
        return wait(site);
    }

    std::string served_release(const std::string& site) const {
        std::error_code ec;
        return stdfs::read_symlink(data() / site / "current", ec).filename().string();
    }

    // What the build and stage steps left under releases/ besides releases: nothing.
    // The scratch dirs left in the site's releases/ once the run is over. A run removes its scratch
    // dir after it has recorded its outcome (so a site goes live without waiting for thousands of
    // files to go), so this waits a little for that removal.
    std::vector<std::string> leftovers(const std::string& site) const {
        std::vector<std::string> found;
        eventually(
            [&] {
                found.clear();
                std::error_code ec;
                for (const auto& e : stdfs::directory_iterator(data() / site / "releases", ec))
                    if (e.path().filename().string().starts_with(".")) found.push_back(e.path().filename().string());
                return found.empty();
            },
            10s, 20ms);
        return found;
    }

    // Whether a process of this test's builds runs: none once a build is over.
    bool builds_running() const {
        std::error_code ec;
        for (const auto& e : stdfs::directory_iterator("/proc", ec)) {
            struct stat st{};
            if (::stat(e.path().c_str(), &st) != 0 || st.st_uid != 65534) continue;
            const std::string environ = slurp(e.path() / "environ");
            if (environ.find(marker() + '\0') != std::string::npos) return true;
        }
        return false;
    }
};

TEST_F(Builds, HugoBuildsTheReleaseVisitorsGet) {
    auto files = kHugoSite;
    files["index.html"] = "unbuilt\n";  // hugo leaves it out; served as committed, it is the home page
    const std::string sha = repo_->commit(files);
    ASSERT_EQ(create_built_site("blog", "hugo", "blog.test"), "live " + sha + "\n") << daemon_log();
    EXPECT_EQ(body("blog.test"), "<h1>Home</h1><p>Hello from hugo.</p>") << daemon_log();
    EXPECT_EQ(fetch("blog.test", "/config.toml").out.substr(0, 12), "HTTP/1.1 404") << "the source is not served";
    // Named by the commit and the builder that made it.
    EXPECT_TRUE(std::regex_match(served_release("blog"), std::regex(sha + "-[0-9a-f]{12}"))) << served_release("blog");
    const std::string log = read("blog/buildlog");
    EXPECT_TRUE(std::regex_search(log, std::regex("\nsitesfs: hugo for release " + sha + "-[0-9a-f]{12}: ok in [0-9]+ms\n$"))) << log;
    EXPECT_NE(log.find("Total in"), std::string::npos) << log;
    EXPECT_TRUE(leftovers("blog").empty());
    EXPECT_FALSE(builds_running());

    // Without a builder the tree is served as committed, and there is no build to show.
    ASSERT_TRUE(shell("echo > blog/build"));
    EXPECT_EQ(wait("blog"), "live " + sha + "\n") << daemon_log();
    EXPECT_EQ(served_release("blog"), sha);
    EXPECT_EQ(body("blog.test"), "unbuilt\n");
    EXPECT_EQ(body("blog.test", "/layouts/index.html"), "<h1>{{ .Title }}</h1>{{ .Content }}\n");
    EXPECT_EQ(read("blog/buildlog"), "\n");
}

// Hugo themes are usually submodules: without them the build has no theme. Here the theme's URL is
// relative to the site's, as `git submodule add ../theme` writes it.
TEST_F(Builds, AHugoSiteWithASubmoduleThemeIsBuiltWithItsSubmodules) {
    TestRepo theme(tmp() / "theme");
    theme.commit({{"layouts/index.html", "<main class=\"paper\"><h1>{{ .Title }}</h1>{{ .Content }}</main>\n"},
                  {"theme.toml", "name = 'paper'\n"}});
    repo_->git({"-c", "protocol.file.allow=always", "submodule", "add", "../../theme/origin.git", "themes/paper"});
    auto files = kHugoSite;
    files.erase("layouts/index.html");
    files["config.toml"] += "theme = 'paper'\n";
    files["index.html"] = "unbuilt\n";
    const std::string sha = repo_->commit(files);

    const std::string without = create_built_site("blog", "hugo", "blog.test");
    EXPECT_TRUE(without.starts_with("failed build: exit 255: ")) << without;
    EXPECT_NE(status_line("blog", "error").find("paper"), std::string::npos) << status_of("blog");

    ASSERT_TRUE(shell("echo recursive > blog/submodules"));
    EXPECT_EQ(wait("blog"), "live " + sha + "\n") << read("blog/buildlog") << daemon_log();
    EXPECT_EQ(body("blog.test"), "<main class=paper><h1>Home</h1><p>Hello from hugo.</p></main>");

    // Served as committed, the release holds the submodule's files too.
    ASSERT_TRUE(shell("echo > blog/build"));
    EXPECT_EQ(wait("blog"), "live " + sha + "\n") << daemon_log();
    EXPECT_EQ(body("blog.test", "/themes/paper/theme.toml"), "name = 'paper'\n");
}

TEST_F(Builds, AFailingBuildKeepsThePreviousReleaseServing) {
    const std::string good = repo_->commit(kHugoSite);
    ASSERT_EQ(create_built_site("blog", "hugo", "blog.test"), "live " + good + "\n") << daemon_log();
    const std::string release = served_release("blog");

    const std::string bad = repo_->commit({{"layouts/index.html", "<h1>{{ .Title </h1>\n"}});
    ASSERT_TRUE(shell("echo main > blog/branch"));
    const std::string outcome = wait("blog");
    // `wait` names the commit still served, then why the new one is not.
    EXPECT_TRUE(outcome.starts_with("failed " + good + " build: exit 255: Error: ")) << outcome;
    const std::string error = status_line("blog", "error");
    EXPECT_TRUE(error.starts_with("build: exit 255: Error: ")) << error;
    // The build sees its dir as /build: no path of the host in what it says.
    EXPECT_NE(error.find("\"/build/src/layouts/index.html:1:1\": parse failed"), std::string::npos) << error;
    const std::string log = read("blog/buildlog");
    EXPECT_TRUE(std::regex_search(log, std::regex("\nsitesfs: hugo for release " + bad + "-[0-9a-f]{12}: exit 255: Error: "))) << log;

    EXPECT_EQ(body("blog.test"), "<h1>Home</h1><p>Hello from hugo.</p>");
    EXPECT_EQ(served_release("blog"), release);
    EXPECT_EQ(status_line("blog", "commit"), good);
    EXPECT_TRUE(leftovers("blog").empty()) << "a failed build leaves no scratch dir";
    EXPECT_EQ(stdfs::directory_iterator(data() / "blog" / "releases")->path().filename(), release);
}

// The repository's build script does what a hostile one would: links to the host's files, a
// .git, a FIFO, writes outside its dir. The release holds only regular files and directories.
TEST_F(Builds, NothingAHostileBuildLeavesReachesTheWebRoot) {
    // On the host: the sandbox's own /tmp may take a write to this path, but it is gone with the build.
    const stdfs::path outside = data() / "blog" / "escaped";
    const std::string script =
        "out=$1\n"
        "echo '<p>built</p>' > \"$out/index.html\"\n"
        "mkdir \"$out/docs\" && echo docs > \"$out/docs/index.html\"\n"
        "ln -s /etc/passwd \"$out/passwd\"\n"
        "ln -s / \"$out/docs/root\"\n"
        "ln \"$out/index.html\" \"$out/hard.html\"\n"
        "mkdir \"$out/.git\" && echo '[core]' > \"$out/.git/config\"\n"
        "mkfifo \"$out/pipe\"\n"
        "for f in " + outside.string() + " ../../escaped /etc/escaped /usr/escaped; do\n"
        "  echo x 2>/dev/null > \"$f\"\n"
        "done\n"
        "true\n";
    const std::string sha = repo_->commit({{"build.sh", script}});
    ASSERT_EQ(create_built_site("blog", "script", "blog.test"), "live " + sha + "\n") << daemon_log();
    EXPECT_EQ(body("blog.test"), "<p>built</p>\n");
    EXPECT_EQ(body("blog.test", "/docs/"), "docs\n");
    for (const std::string path : {"/passwd", "/docs/root/etc/passwd", "/.git/config", "/pipe"})
        EXPECT_EQ(fetch("blog.test", path).out.substr(0, 12), "HTTP/1.1 404") << path;

    // Only directories and regular files, each the daemon's own copy.
    const stdfs::path release = data() / "blog" / "current";
    std::vector<std::string> files;
    for (auto it = stdfs::recursive_directory_iterator(release); it != stdfs::recursive_directory_iterator(); ++it) {
        struct stat st{};
        ASSERT_EQ(::lstat(it->path().c_str(), &st), 0);
        EXPECT_TRUE(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) << it->path();
        EXPECT_EQ(st.st_uid, 0u) << it->path();
        EXPECT_EQ(st.st_nlink, S_ISREG(st.st_mode) ? 1u : st.st_nlink) << it->path();
        files.push_back(stdfs::relative(it->path(), release).string());
    }
    std::sort(files.begin(), files.end());
    EXPECT_EQ(files, (std::vector<std::string>{"docs", "docs/index.html", "hard.html", "index.html"}));

    for (const auto& f : {outside, data() / "blog" / "releases" / "escaped", stdfs::path("/escaped"),
                          stdfs::path("/etc/escaped"), stdfs::path("/usr/escaped")})
        EXPECT_FALSE(stdfs::exists(f)) << f;
    const std::string log = read("blog/buildlog");
    for (const std::string left_out : {"passwd: symbolic link left out", "docs/root: symbolic link left out",
                                       ".git: .git is never written", "pipe: not a regular file or directory"})
        EXPECT_NE(log.find("sitesfs: left out of the release: " + left_out), std::string::npos) << log;
    EXPECT_FALSE(builds_running());
}

TEST_F(Builds, ABuildPastItsTimeOrMemoryLimitFailsAndThePreviousReleaseServes) {
    const std::string good = repo_->commit({{"build.sh", "echo v1 > \"$1/index.html\"\n"}});
    ASSERT_EQ(create_built_site("blog", "script", "blog.test"), "live " + good + "\n") << daemon_log();

    const std::string slow = repo_->commit({{"build.sh", "echo starting\nsleep 60 &\nsleep 60\n"}});
    ASSERT_TRUE(shell("echo main > blog/branch"));
    EXPECT_EQ(wait("blog"), "failed " + good + " build: timed out after 3s: starting\n") << daemon_log();
    EXPECT_EQ(status_line("blog", "error"), "build: timed out after 3s: starting");
    EXPECT_TRUE(std::regex_search(read("blog/buildlog"), std::regex("sitesfs: script for release " + slow + "-[0-9a-f]{12}: timed out after 3s")));
    EXPECT_FALSE(builds_running()) << "the background sleep outlived its build";

    const std::string greedy = repo_->commit({{"build.sh", "python3 -c 'b = bytearray(1 << 30)'\n"}});
    ASSERT_TRUE(shell("echo > blog/branch"));
    EXPECT_TRUE(wait("blog").starts_with("failed " + good + " build: exit 1: ")) << daemon_log();
    const std::string error = status_line("blog", "error");
    EXPECT_TRUE(error.starts_with("build: exit 1: ")) << error;
    EXPECT_TRUE(error.ends_with("MemoryError (memory limit 256 MiB)")) << error;
    EXPECT_TRUE(std::regex_search(read("blog/buildlog"), std::regex("sitesfs: script for release " + greedy + "-[0-9a-f]{12}: exit 1: ")));

    EXPECT_EQ(body("blog.test"), "v1\n");
    EXPECT_TRUE(leftovers("blog").empty());
}

// The builder says whether a build may reach the network; Caddy on the host's loopback stands for
// the world.
TEST_F(Builds, TheNetworkIsThereOnlyWhenTheBuilderAllowsIt) {
    const std::string script = "curl -sS --max-time 5 -o /dev/null http://" + caddy_->address() +
                               "/ && echo fetched > \"$1/index.html\"\n";
    const std::string sha = repo_->commit({{"build.sh", script}});
    const std::string offline = create_built_site("blog", "script", "blog.test");
    EXPECT_TRUE(offline.starts_with("failed build: exit 7: curl: (7) Failed to connect to 127.0.0.1")) << offline;
    EXPECT_TRUE(status_line("blog", "error").starts_with("build: exit 7: curl: (7) Failed to connect to 127.0.0.1"))
        << status_of("blog");

    ASSERT_TRUE(shell("echo online > blog/build"));
    EXPECT_EQ(wait("blog"), "live " + sha + "\n") << read("blog/buildlog");
    EXPECT_EQ(body("blog.test"), "fetched\n");
}

// An npm project's build runs node, whose JIT needs memory that is written and then executed: the
// build sandbox, and the unit sitesfs ships (service.TheShippedUnit...), must allow it.
TEST_F(Builds, ANodeBuildRunsItsJit) {
    if (::access("/usr/bin/node", X_OK) != 0) SITESFS_CANNOT_RUN() << "node not installed (scripts/install-deps)";
    const std::string sha = repo_->commit(
        {{"build.sh", "node build.js \"$1\"\n"},
         {"build.js", "let s = 0;\nfor (let i = 0; i < 1e7; i++) s += i % 7;\n"
                      "require('fs').writeFileSync(process.argv[2] + '/index.html', 'node says ' + s + '\\n');\n"}});
    ASSERT_EQ(create_built_site("blog", "slow", "blog.test"), "live " + sha + "\n") << read("blog/buildlog");
    EXPECT_EQ(body("blog.test"), "node says 29999994\n");
}

// A newer change stops the build it makes pointless, and everything that build started, at once
// rather than at its time limit.
TEST_F(Builds, ABuildSupersededByANewerChangeIsCancelled) {
    const std::string sha = repo_->commit({{"build.sh", "sleep 100\n"}, {"index.html", "as committed\n"}});
    ASSERT_TRUE(shell("mkdir blog && echo slow > blog/build && echo " + repo_->url() +
                      " > blog/repo && echo blog.test > blog/domain"));
    ASSERT_TRUE(eventually([&] { return builds_running(); }, 10s, 50ms)) << daemon_log();
    const auto started = std::chrono::steady_clock::now();
    ASSERT_TRUE(shell("echo > blog/build"));
    EXPECT_EQ(wait("blog"), "live " + sha + "\n") << daemon_log();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 8s);
    EXPECT_FALSE(builds_running());
    EXPECT_EQ(body("blog.test"), "as committed\n");
    EXPECT_TRUE(leftovers("blog").empty());
}

TEST_F(Builds, AWriteNamingABuilderTheConfigLacksIsRefused) {
    ASSERT_TRUE(shell("mkdir blog"));
    EXPECT_EQ(write_errno("blog/build", "jekyll\n"), EINVAL);
    EXPECT_EQ(status_line("blog", "error"),
              "build 'jekyll': this host's config defines no such builder; it has hugo, online, script, slow");
    EXPECT_EQ(read("blog/build"), "\n");
    EXPECT_EQ(write_errno("blog/build", "hugo\n"), 0);
}

// The release is named by what built it: a start with a changed builder builds again; one with the
// same builder serves what is there.
TEST_F(Builds, ARestartRebuildsOnlyWhenTheBuilderChanged) {
    const std::string sha = repo_->commit(kHugoSite);
    ASSERT_EQ(create_built_site("blog", "hugo", "blog.test"), "live " + sha + "\n") << daemon_log();
    const std::string first = served_release("blog");
    const std::string log = read("blog/buildlog");

    ASSERT_NO_FATAL_FAILURE(restart());
    ASSERT_TRUE(eventually([&] { return status_line("blog", "state") == "live"; }, 30s, 100ms)) << daemon_log();
    EXPECT_EQ(served_release("blog"), first);
    EXPECT_EQ(read("blog/buildlog"), log) << "built again without a change";

    std::string config = slurp(config_file());
    const std::string minify = "\"--minify\", ";
    config.erase(config.find(minify), minify.size());
    spit(config_file(), config);
    ASSERT_NO_FATAL_FAILURE(restart());
    ASSERT_TRUE(eventually([&] { return served_release("blog") != first && status_line("blog", "state") == "live"; }, 30s,
                           100ms))
        << daemon_log();
    EXPECT_EQ(body("blog.test"), "<h1>Home</h1><p>Hello from hugo.</p>\n\n");
    EXPECT_NE(read("blog/buildlog"), log) << "the log names the release, so the new builder's build reads apart";
}

// [build] dir: the builds run in a dir of their own (a tmpfs, in production), one scratch dir a
// site, emptied of what a killed daemon left when sitesfs starts.
class BuildsInADirOfTheirOwn : public Builds {
protected:
    void before_start() override {
        Builds::before_start();
        build_table_ = "dir = \"" + builds().string() + "\"\n";
        stdfs::create_directories(builds() / "stale" / "src");
        spit(builds() / "stale" / "src" / "index.html", "left by a killed daemon\n");
    }
    stdfs::path builds() const { return tmp() / "builds"; }
};

TEST_F(BuildsInADirOfTheirOwn, TheBuildRunsThereAndLeavesNothing) {
    EXPECT_FALSE(stdfs::exists(builds() / "stale")) << "a start empties [build] dir";
    const std::string sha = repo_->commit({{"build.sh", "ls -d /build/src && sleep 1 && echo built > \"$1/index.html\"\n"}});
    ASSERT_TRUE(shell("mkdir blog && echo slow > blog/build && echo " + repo_->url() +
                      " > blog/repo && echo blog.test > blog/domain"));
    ASSERT_TRUE(eventually([&] { return stdfs::exists(builds() / "blog" / "src" / "build.sh"); }, 10s, 20ms)) << daemon_log();
    EXPECT_EQ(wait("blog"), "live " + sha + "\n") << read("blog/buildlog") << daemon_log();
    EXPECT_EQ(body("blog.test"), "built\n");
    EXPECT_TRUE(eventually([&] { return stdfs::is_empty(builds()); }, 5s, 20ms)) << "the scratch dir outlived its run";
    EXPECT_TRUE(leftovers("blog").empty());
}

}  // namespace
}  // namespace sitesfs::it
