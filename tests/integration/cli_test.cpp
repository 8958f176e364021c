// The command line: options, exit codes, start-up errors, the background start, --import, and the
// README's quick-start run command.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <regex>
#include <string>
#include <thread>

#include "mount_fixture.hpp"
#include "tests/support/caddy.hpp"

namespace sitesfs::it {
namespace {

// Tests that start sitesfs themselves, or not at all.
class CommandLine : public MountTest {
protected:
    CommandLine() { autostart_ = false; }

    // Runs sitesfs with `args` (cwd: the temp dir), killed after `timeout`.
    Run sitesfs_run(const std::vector<std::string>& args, Ms timeout = 20s) const {
        std::vector<std::string> argv{sitesfs()};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv, {.cwd = tmp(), .timeout = timeout});
    }
    static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }
};


TEST_F(CommandLine, HelpPrintsUsage) {
    const Run r = sitesfs_run({"--help"});
    EXPECT_EQ(r.code, 0) << describe(r);
    EXPECT_TRUE(r.out.starts_with("Usage: sitesfs [options] MOUNTPOINT\n")) << r.out;
    EXPECT_NE(r.out.find("--state-dir"), std::string::npos);
    EXPECT_NE(r.out.find("--allow-local-repos"), std::string::npos);
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(sitesfs_run({"-h"}).out, r.out);
}

TEST_F(CommandLine, VersionPrintsTheVersion) {
    const Run r = sitesfs_run({"--version"});
    EXPECT_TRUE(check("sitesfs --version", r, {.out = "sitesfs 0.1.0\n", .err = ""}));
    EXPECT_EQ(sitesfs_run({"-V"}).out, "sitesfs 0.1.0\n");
}

TEST_F(CommandLine, UnknownOptionIsAUsageError) {
    const Run r = sitesfs_run({"--frobnicate", "mnt"});
    EXPECT_EQ(r.code, 2) << describe(r);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(first_line(r.err), "sitesfs: unknown option '--frobnicate'") << r.err;
    EXPECT_FALSE(is_mounted(mnt()));
}

TEST_F(CommandLine, UnknownMountOptionIsAUsageError) {
    const Run r = sitesfs_run({"-f", "-o", "ro,frobnicate", "--state-dir", state().string(), "mnt"});
    EXPECT_EQ(r.code, 2) << describe(r);
    EXPECT_NE(first_line(r.err).find("'frobnicate'"), std::string::npos) << r.err;
    EXPECT_EQ(sitesfs_run({"-ofrobnicate", "mnt"}).code, 2);
    EXPECT_FALSE(is_mounted(mnt()));
}

TEST_F(CommandLine, MissingMountpointIsAUsageError) {
    const Run r = sitesfs_run({"-f", "--state-dir", state().string()});
    EXPECT_EQ(r.code, 2) << describe(r);
    EXPECT_NE(first_line(r.err).find("MOUNTPOINT"), std::string::npos) << r.err;
    EXPECT_EQ(sitesfs_run({"-f", "a", "b", "c"}).code, 2);
}

TEST_F(CommandLine, ConfigWithASyntaxErrorNamesFileLineAndColumn) {
    const auto cfg = tmp() / "sitesfs.toml";
    spit(cfg, "log_level = \"info\"\nstate_dir = = \"/x\"\n");
    const Run r = sitesfs_run({"-f", "--config", cfg.string(), "mnt"});
    EXPECT_EQ(r.code, 2) << describe(r);
    EXPECT_TRUE(std::regex_search(r.err, std::regex(std::regex_replace(cfg.string(), std::regex("\\."), "\\.") + ":2:[0-9]+")))
        << r.err;
    EXPECT_FALSE(is_mounted(mnt()));
}

TEST_F(CommandLine, ConfigWithAnUnknownKeyNamesIt) {
    const auto cfg = tmp() / "sitesfs.toml";
    spit(cfg, "log_level = \"info\"\ncolour = \"blue\"\n");
    Run r = sitesfs_run({"-f", "--config", cfg.string(), "mnt"});
    EXPECT_EQ(r.code, 2) << describe(r);
    EXPECT_NE(r.err.find(cfg.string()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("colour"), std::string::npos) << r.err;

    spit(cfg, "[filesystem]\nfile_mod = \"0644\"\n");
    r = sitesfs_run({"-f", "--config", cfg.string(), "mnt"});
    EXPECT_EQ(r.code, 2) << describe(r);
    EXPECT_NE(r.err.find("filesystem.file_mod"), std::string::npos) << r.err;
}

// Nothing is clamped (mount/config_keys.cpp): a value out of its key's bounds stops start-up,
// naming the key and what it accepts; so does a log level the docs do not list.
TEST_F(CommandLine, AConfigValueOutOfBoundsStopsStartUpNamingTheKeyAndTheRange) {
    const auto cfg = tmp() / "sitesfs.toml";
    spit(cfg, "[reconcile]\nworkers = 100\n");
    const Run r = sitesfs_run({"-f", "--config", cfg.string(), "--state-dir", state().string(), "mnt"});
    EXPECT_EQ(r.code, 2) << describe(r);
    EXPECT_EQ(first_line(r.err),
              "sitesfs: " + cfg.string() + ": reconcile.workers: must be a whole number from 1 to 64, not 100")
        << describe(r);
    spit(cfg, "[filesystem]\nwait_timeout = 0.0001\n");
    const Run tiny = sitesfs_run({"-f", "--config", cfg.string(), "--state-dir", state().string(), "mnt"});
    EXPECT_EQ(tiny.code, 2) << describe(tiny);
    EXPECT_NE(tiny.err.find("filesystem.wait_timeout: must be a number of seconds from 0.001 to 31536000, not 0.0001"),
              std::string::npos)
        << describe(tiny);
    const Run level = sitesfs_run({"-f", "--log-level", "warning", "--state-dir", state().string(), "mnt"});
    EXPECT_EQ(level.code, 2) << describe(level);
    EXPECT_EQ(first_line(level.err),
              "sitesfs: unknown log level 'warning' (one of \"trace\", \"debug\", \"info\", \"warn\", \"error\" or \"off\")")
        << describe(level);
    EXPECT_FALSE(is_mounted(mnt()));
}

// The health listener serves every site over plain HTTP: it is refused anywhere but on loopback,
// and on a port where it would take the place of the public HTTPS listener or its redirect.
TEST_F(CommandLine, AHealthListenerOffLoopbackOrOnTheProxysPortIsRefused) {
    const auto cfg = tmp() / "sitesfs.toml";
    const auto refused = [&](const std::string& text, const std::string& why) {
        spit(cfg, text);
        const Run r = sitesfs_run({"-f", "--config", cfg.string(), "mnt"});
        EXPECT_EQ(r.code, 2) << describe(r);
        EXPECT_NE(r.err.find(why), std::string::npos) << text << describe(r);
    };
    refused("[health]\naddress = \"0.0.0.0:2080\"\n", "health.address: must be a loopback address");
    refused("[health]\naddress = \"localhost:2080\"\n", "health.address: must be IP:PORT");
    refused("[health]\naddress = \"127.0.0.1:80\"\n", "health.address: port 80 is the proxy's own");
    refused("[proxy]\nport = 8443\n[health]\naddress = \"[::1]:8443\"\n", "port 8443 is the proxy's own");
    refused("[health]\ntls_address = \"caddy:443\"\n", "health.tls_address: must be IP:PORT");
    EXPECT_FALSE(is_mounted(mnt()));
}

TEST_F(CommandLine, CorruptStateFileStopsStartUpAndIsLeftAlone) {
    REQUIRE_FUSE();
    stdfs::create_directories(state() / "sites");
    const auto file = state() / "sites" / "blog.toml";
    const std::string garbage = "format = 1\nname = 'blog\ngeneration = ]]]\n\x01\xff garbage\n";
    spit(file, garbage);
    const Run r = sitesfs_run({"-f", "--state-dir", state().string(), "mnt"});
    EXPECT_EQ(r.code, 1) << describe(r);
    EXPECT_TRUE(std::regex_search(r.err, std::regex("blog\\.toml:[0-9]+:[0-9]+"))) << r.err;
    EXPECT_NE(r.err.find(file.string()), std::string::npos) << r.err;
    EXPECT_EQ(slurp(file), garbage);
    EXPECT_FALSE(is_mounted(mnt()));
    // The same in the background: the parent reports the child's error.
    const Run bg = sitesfs_run({"--state-dir", state().string(), "mnt"});
    EXPECT_EQ(bg.code, 1) << describe(bg);
    EXPECT_TRUE(std::regex_search(bg.err, std::regex("blog\\.toml:[0-9]+:[0-9]+"))) << bg.err;
    EXPECT_EQ(slurp(file), garbage);
    EXPECT_FALSE(is_mounted(mnt()));
}

TEST_F(CommandLine, ASecondReadWriteInstanceOnTheSameStateDirIsRefused) {
    REQUIRE_FUSE();
    ASSERT_NO_FATAL_FAILURE(start());
    ASSERT_NO_FATAL_FAILURE(make_site("blog", "blog.example.com"));
    stdfs::create_directory(tmp() / "mnt2");
    const Run r = sitesfs_run({"-f", "--state-dir", state().string(), (tmp() / "mnt2").string()});
    EXPECT_EQ(r.code, 1) << describe(r);
    EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;
    EXPECT_FALSE(is_mounted(tmp() / "mnt2"));
    // The first instance is unharmed.
    EXPECT_TRUE(shell("echo www.example.com > blog/domain && cat blog/domain", {.out = "www.example.com\n"}));
}

TEST_F(CommandLine, SigtermAndSigintUnmountAndExitZero) {
    REQUIRE_FUSE();
    for (const int sig : {SIGTERM, SIGINT, SIGHUP}) {
        SCOPED_TRACE(strsignal(sig));
        ASSERT_NO_FATAL_FAILURE(start());
        ASSERT_TRUE(shell("mkdir -p blog && grep -c '^state:' blog/status", {.out = "1\n"}));
        const std::string log = daemon_log();
        const auto status = stop(sig);  // SIGKILL after 5 s
        ASSERT_TRUE(status.has_value());
        EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
            << "sitesfs ended with " << wait_status_text(*status)
            << "; a signal is the normal way to stop it (exit 0 expected); log:\n" << log;
        EXPECT_FALSE(is_mounted(mnt()));
    }
}

TEST_F(CommandLine, WithoutForegroundItReturnsOnceTheMountAnswers) {
    REQUIRE_FUSE();
    const Run r = sitesfs_run({"--state-dir", state().string(), "--allow-local-repos", mnt().string()});
    for (pid_t pid : find_processes({sitesfs(), mnt().string()})) track_pid(pid);
    ASSERT_EQ(r.code, 0) << describe(r);
    EXPECT_EQ(r.out, "");
    // Right away, no waiting: the mount answers.
    EXPECT_TRUE(mount_answers(mnt()));
    EXPECT_TRUE(shell("ls -a", {.out = ".\n..\n.sites.toml\n"}));
    EXPECT_TRUE(shell("mkdir blog && echo blog.example.com > blog/domain && cat blog/domain", {.out = "blog.example.com\n"}));

    const auto daemons = find_processes({sitesfs(), mnt().string()});
    ASSERT_EQ(daemons.size(), 1u) << "exactly one daemon should serve the mount";
    const pid_t daemon = daemons.front();
    EXPECT_TRUE(check("fusermount3 -u", run({"fusermount3", "-u", mnt().string()}), {}));
    EXPECT_TRUE(eventually([&] { return !process_alive(daemon); }, 5s)) << "the daemon outlived its unmount";
    EXPECT_FALSE(is_mounted(mnt()));
    // It released the state dir: a new instance starts, and sees the site.
    ASSERT_NO_FATAL_FAILURE(start());
    EXPECT_EQ(read("blog/domain"), "blog.example.com\n");
}

TEST_F(CommandLine, WithoutForegroundAMountFailureIsReported) {
    REQUIRE_FUSE();
    const Run r = sitesfs_run({"--state-dir", state().string(), (tmp() / "no-such-dir").string()});
    for (pid_t pid : find_processes({sitesfs(), "no-such-dir"})) track_pid(pid);
    EXPECT_EQ(r.code, 1) << describe(r);
    EXPECT_NE(r.err.find("no-such-dir"), std::string::npos) << r.err;
}

TEST_F(CommandLine, LocalReposAreRefusedWithoutTheFlag) {
    REQUIRE_FUSE();
    ASSERT_NO_FATAL_FAILURE(start({}, /*allow_local_repos=*/false));
    ASSERT_TRUE(shell("mkdir blog"));
    EXPECT_TRUE(shell("echo file:///tmp/x > blog/repo", {.code = 1, .err_has = "write error: Invalid argument"}));
    EXPECT_TRUE(shell("echo /tmp/x > blog/repo", {.code = 1, .err_has = "write error: Invalid argument"}));
    EXPECT_EQ(read("blog/repo"), "\n");
    EXPECT_NE(status_line("blog", "error").find("allow-local-repos"), std::string::npos) << status_of("blog");
    EXPECT_TRUE(shell("echo https://github.com/user/blog > blog/repo && cat blog/repo",
                      {.out = "https://github.com/user/blog\n"}));
}

TEST_F(CommandLine, ImportTakesGoodSitesAndReportsRefusedOnes) {
    REQUIRE_FUSE();
    const auto seed = tmp() / "sites.toml";
    spit(seed,
         "[global]\n"
         "root = \"/var/lib/sites\"\n"
         "caddyfile = \"/etc/caddy/Caddyfile\"\n"
         "log = \"/var/log/sites-deploy.log\"\n"
         "\n"
         "[sites.blog]\n"
         "domain = \"blog.example.com\"\n"
         "repo = \"https://github.com/user/blog\"\n"
         "branch = \"main\"\n"
         "path = \"public\"\n"
         "\n"
         "[sites.shop]\n"
         "domain = \"bad..com\"\n"
         "repo = \"https://github.com/user/shop\"\n"
         "branch = \"main\"\n");
    const Run r = sitesfs_run({"--state-dir", state().string(), "--import", seed.string()});
    EXPECT_EQ(r.code, 1) << describe(r);
    const auto lines = split_lines(r.out);
    int taken = 0, refused = 0;
    for (const auto& l : lines) {
        if (l.starts_with("taken: ")) {
            ++taken;
            EXPECT_TRUE(l.starts_with("taken: blog")) << l;
        }
        if (l.starts_with("refused: ")) {
            ++refused;
            EXPECT_TRUE(l.starts_with("refused: shop")) << l;
            EXPECT_NE(l.find("bad..com"), std::string::npos) << l;
        }
    }
    EXPECT_EQ(taken, 1) << r.out;
    EXPECT_EQ(refused, 1) << r.out;
    EXPECT_FALSE(is_mounted(mnt()));

    ASSERT_NO_FATAL_FAILURE(start());
    EXPECT_TRUE(shell("ls", {.out = "blog\n"}));
    EXPECT_EQ(read("blog/domain"), "blog.example.com\n");
    EXPECT_EQ(read("blog/repo"), "https://github.com/user/blog\n");
    EXPECT_EQ(read("blog/branch"), "main\n");
    EXPECT_EQ(read("blog/path"), "public\n");
    EXPECT_EQ(status_line("blog", "state"), "pending");
}

TEST_F(CommandLine, ImportOfOnlyGoodSitesExitsZero) {
    const auto seed = tmp() / "sites.toml";
    spit(seed, "[sites.blog]\ndomain = \"blog.example.com\"\nrepo = \"user/blog\"\nbranch = \"main\"\n");
    const Run r = sitesfs_run({"--state-dir", state().string(), "--import", seed.string()});
    EXPECT_EQ(r.code, 0) << describe(r);
    EXPECT_NE(r.out.find("taken: blog"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("refused: "), std::string::npos) << r.out;
}

// An import makes its sites durable in batches (one flush per batch); a kill at any moment leaves
// each site whole or absent, and the next run takes the rest.
TEST_F(CommandLine, AnImportKilledAnywhereLeavesWholeSitesAndCanBeRunAgain) {
    constexpr int kSites = 3000;
    const auto seed = tmp() / "sites.toml";
    std::string text;
    for (int i = 0; i < kSites; ++i)
        text += "[sites.s" + std::to_string(i) + "]\ndomain = \"s" + std::to_string(i) +
                ".example.com\"\nrepo = \"user/s\"\nbranch = \"main\"\n";
    spit(seed, text);
    // How many entries of sites/ are site files (`placed`) or anything (temp files too).
    auto count = [&](bool placed) {
        size_t n = 0;
        std::error_code ec;
        for (auto it = stdfs::directory_iterator(state() / "sites", ec); !ec && it != stdfs::directory_iterator(); it.increment(ec))
            n += !placed || it->path().extension() == ".toml";
        return n;
    };
    struct Kill {
        const char* when;
        bool placed;    // wait for site files, not just temp files
        size_t at_least;
    };
    int partial = 0;
    // While the first batch writes its temp files; as its first file is renamed into place; while
    // the second batch writes.
    for (const Kill k : {Kill{"at the first temp file", false, 1}, Kill{"at the first site file", true, 1},
                         Kill{"at the 1001st site file", true, 1001}}) {
        const pid_t pid = spawn_logged({SITESFS_BINARY, "--state-dir", state().string(), "--import", seed.string()},
                                       tmp() / "import.log");
        ASSERT_GT(pid, 0);
        eventually([&] { return count(k.placed) >= k.at_least || !process_alive(pid); }, 60s, 1ms);
        ::kill(pid, SIGKILL);
        ASSERT_TRUE(wait_child(pid, 10s));
        size_t files = 0;
        if (stdfs::exists(state() / "sites"))
            for (const auto& e : stdfs::directory_iterator(state() / "sites")) files += e.path().extension() == ".toml";
        if (files > 0 && files < kSites) ++partial;
        std::cout << "killed " << k.when << ": " << files << " of " << kSites << " sites saved\n";
        // Every site file left parses (the store opens, or the import would fail to start), and
        // a second run creates exactly the rest.
        const Run again = sitesfs_run({"--state-dir", state().string(), "--import", seed.string()}, 120s);
        int taken = 0, exists = 0;
        for (const auto& l : split_lines(again.out)) {
            taken += l.starts_with("taken: ");
            exists += l.starts_with("refused: ") && l.ends_with("already exists");
        }
        EXPECT_EQ(taken + exists, kSites) << "killed " << k.when << ": " << describe(again);
        EXPECT_EQ(taken, static_cast<int>(kSites - files)) << "killed " << k.when;
        for (const auto& e : stdfs::directory_iterator(state() / "sites"))
            EXPECT_NE(e.path().filename().string().front(), '.') << "a temp file was left: " << e.path();
        stdfs::remove_all(state());
    }

    EXPECT_GT(partial, 0) << "no kill fell between the batches; the test proved less than it should";
}

TEST_F(CommandLine, ImportOfABrokenFileNamesLineAndColumn) {
    const auto seed = tmp() / "sites.toml";
    spit(seed, "[sites.blog]\ndomain = \"blog.example.com\n");
    const Run r = sitesfs_run({"--state-dir", state().string(), "--import", seed.string()});
    EXPECT_NE(r.code, 0) << describe(r);
    EXPECT_TRUE(std::regex_search(r.err, std::regex("sites\\.toml:2:[0-9]+"))) << r.err;
}

TEST_F(CommandLine, TheReadmeRunCommandServesUntilCtrlC) {
    REQUIRE_FUSE();
    const auto script = stdfs::path(SITESFS_SOURCE_DIR) / "scripts" / "run";
    ASSERT_TRUE(stdfs::exists(script)) << script << " does not exist";
    const auto run_mnt = tmp() / "run-mnt";
    const auto run_dir = tmp() / "run";
    const auto log = tmp() / "run.log";
    const int port = free_port();
    // The build under test (build-asan/ in the sanitized suite), not whatever build/ holds.
    const auto build_dir = stdfs::path(SITESFS_BINARY).parent_path();
    const pid_t pid = spawn_logged({"bash", script.string()}, log,
                                   {"SITESFS_MOUNTPOINT=" + run_mnt.string(), "SITESFS_RUN_DIR=" + run_dir.string(),
                                    "SITESFS_HTTP_PORT=" + std::to_string(port),
                                    "SITESFS_BUILD_DIR=" + build_dir.string()});
    ASSERT_GT(pid, 0);
    track_pid(pid);
    // It may have to build first.
    const bool mounted = eventually(
        [&] {
            int status;
            if (waitpid(pid, &status, WNOHANG) == pid) return true;  // exited: checked below
            return mount_answers(run_mnt);
        },
        240s, 50ms);
    ASSERT_TRUE(mounted && mount_answers(run_mnt)) << "scripts/run did not mount " << run_mnt << "; log:\n" << slurp(log);

    // The commands it prints, as printed, end in a live site.
    std::string commands;
    for (const auto& line : split_lines(slurp(log)))
        if (line.starts_with("  ")) commands += line.substr(2) + "\n";
    ASSERT_NE(commands.find("curl"), std::string::npos) << slurp(log);
    const Run demo = sh_in(run_mnt, "set -e\n" + commands);
    EXPECT_EQ(demo.code, 0) << describe(demo) << slurp(log);
    EXPECT_NE(demo.out.find("live "), std::string::npos) << demo.out << slurp(log);
    EXPECT_NE(demo.out.find("<h1>Hello from sitesfs</h1>"), std::string::npos) << demo.out << slurp(log);
    EXPECT_TRUE(stdfs::exists(run_dir / "state" / "sites" / "demo.toml"));

    const auto status = terminate_child(pid, 10s, SIGINT);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "scripts/run ended with " << wait_status_text(*status) << " after SIGINT; log:\n" << slurp(log);
    EXPECT_FALSE(is_mounted(run_mnt)) << slurp(log);
    EXPECT_TRUE(find_processes({"caddy", "run", (run_dir / "caddy").string()}).empty()) << "Caddy outlived scripts/run";
    EXPECT_EQ(sanitizer_report(slurp(log)), "") << "in the log of scripts/run";
}

}  // namespace
}  // namespace sitesfs::it
