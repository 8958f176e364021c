// The binary's command line, exit codes and start-up errors.
#include <fstream>

#include "tests/integration/live_mount.hpp"

namespace {

const std::string kBin = SITESFS_BINARY;

TEST(Cli, HelpVersionAndUsageErrors) {
    EXPECT_EQ(sh(kBin + " --help").code, 0);
    EXPECT_NE(sh(kBin + " --help").out.find("Usage: sitesfs"), std::string::npos);
    EXPECT_EQ(sh(kBin + " --version").out, "sitesfs 0.1.0\n");
    const Result unknown = sh(kBin + " --bogus /x");
    EXPECT_EQ(unknown.code, 2);
    EXPECT_NE(unknown.err.find("--bogus"), std::string::npos);
    EXPECT_EQ(sh(kBin + " -o nosuchopt /x").code, 2);
    EXPECT_EQ(sh(kBin + " --state-dir /tmp").code, 2) << "missing MOUNTPOINT";
}

class CliMount : public MountTest {};

TEST_F(CliMount, ConfigAndStateErrorsNameTheirFile) {
    const auto cfg = dir_ / "bad.toml";
    std::ofstream(cfg) << "state_dir = \n";
    Result r = sh(kBin + " --config " + cfg.string() + " /x");
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find(cfg.string() + ":1:"), std::string::npos) << r.err;
    std::ofstream(cfg, std::ios::trunc) << "colour = 'blue'\n";
    r = sh(kBin + " --config " + cfg.string() + " /x");
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("colour"), std::string::npos) << r.err;

    const auto other = dir_ / "other";
    r = sh(kBin + " -f --state-dir " + state_.string() + " " + other.string());
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;

    stop(daemon_);
    std::ofstream(state_ / "sites" / "blog.toml") << "name = 'blog\n";
    r = sh(kBin + " --state-dir " + state_.string() + " " + mnt_.string());
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find((state_ / "sites" / "blog.toml").string() + ":1:"), std::string::npos) << r.err;
}

TEST_F(CliMount, BackgroundStartReturnsOnceMountedAndImportReports) {
    stop(daemon_);
    sh("fusermount3 -u " + mnt_.string());
    const auto seed = dir_ / "sites.toml";
    std::ofstream(seed) << "[sites.blog]\ndomain = 'blog.example.com'\nrepo = 'user/blog'\nbranch = 'main'\n"
                           "[sites.shop]\ndomain = 'bad..com'\nrepo = 'user/shop'\nbranch = 'main'\n";
    const Result imp = sh(kBin + " --state-dir " + state_.string() + " --import " + seed.string());
    EXPECT_EQ(imp.code, 1);
    EXPECT_NE(imp.out.find("taken: blog"), std::string::npos) << imp.out;
    EXPECT_NE(imp.out.find("refused: shop"), std::string::npos) << imp.out;

    const Result bg = sh(kBin + " --state-dir " + state_.string() + " " + mnt_.string() + " && cat " + mnt_.string() +
                      "/blog/domain && echo file:///tmp/x > " + mnt_.string() + "/blog/repo");
    EXPECT_EQ(bg.out, "blog.example.com\n");
    EXPECT_NE(bg.err.find("Invalid argument"), std::string::npos) << "local repos need --allow-local-repos: " << bg.err;
    sh("fusermount3 -u " + mnt_.string());
}

}  // namespace
