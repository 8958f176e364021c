// The config keys (mount/config_keys.cpp): the defaults load and match the structs' own
// initializers, every value out of bounds is refused naming the key and its range, and the usage
// text says what the table says.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "mount/config.hpp"
#include "mount/config_keys.hpp"
#include "mount/options.hpp"

namespace sitesfs::mount {
namespace {

std::string source_file(const std::string& relative) {
    std::ifstream in(std::string(SITESFS_SOURCE_DIR) + "/" + relative, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// The error load_config_text gives for `text`, or "" when it loads.
std::string refusal(const std::string& text) {
    try {
        load_config_text(text, "sitesfs.toml");
        return "";
    } catch (const ConfigError& e) {
        return e.what();
    }
}

// `KEY = VALUE` under its section.
std::string setting(const ConfigKey& k, const std::string& value) {
    const std::string line = std::string(k.key()) + " = " + value + "\n";
    return k.section().empty() ? line : "[" + std::string(k.section()) + "]\n" + line;
}

std::string number(double v) {
    std::ostringstream out;
    out.precision(15);
    out << v;
    return out.str();
}

TEST(ConfigKeys, TheBuiltInDefaultsLoad) {
    EXPECT_NO_THROW(load_config(std::nullopt));
    EXPECT_EQ(refusal(""), "");
    const Config c = load_config(std::nullopt);
    EXPECT_EQ(c.state_dir, default_value("state_dir"));
    EXPECT_EQ(c.log_level, default_value("log_level"));
}

TEST(ConfigKeys, NamesAreUniqueAndInDeclaredSections) {
    std::map<std::string_view, int> seen;
    for (const ConfigKey& k : config_keys()) {
        EXPECT_EQ(++seen[k.name], 1) << k.name << " is declared twice";
        EXPECT_FALSE(k.help.empty()) << k.name << " has no help";
        EXPECT_NE(k.apply, nullptr) << k.name;
        if (k.fallback.empty() && k.type != KeyType::pins) {
            EXPECT_FALSE(k.example.empty()) << k.name << ": an unset key needs an example for the docs";
        }
        if (k.section().empty()) continue;
        bool declared = false;
        for (const ConfigSection& s : config_sections()) declared = declared || s.name == k.section();
        EXPECT_TRUE(declared) << k.name << ": section [" << k.section() << "] is not in config_sections()";
    }
}

// hooks/ and fs/ keep initializers of their own for the code and the tests that build their
// configs directly; they must say what the table says.
TEST(ConfigKeys, TheStructsOwnInitializersAgreeWithTheTable) {
    const Config c = load_config(std::nullopt);
    const hooks::HooksConfig h;
    EXPECT_EQ(h.data_dir, c.data_dir);
    EXPECT_EQ(h.workers, c.hooks.workers);
    EXPECT_EQ(h.poll_interval, c.hooks.poll_interval);
    EXPECT_EQ(h.keep_releases, c.hooks.keep_releases);
    EXPECT_EQ(h.limits.max_files, c.hooks.limits.max_files);
    EXPECT_EQ(h.limits.max_bytes, c.hooks.limits.max_bytes);
    EXPECT_EQ(h.git.connect, c.hooks.git.connect);
    EXPECT_EQ(h.git.io, c.hooks.git.io);
    EXPECT_EQ(h.proxy.file, c.hooks.proxy.file);
    EXPECT_EQ(h.proxy.main_config, c.hooks.proxy.main_config);
    EXPECT_EQ(h.proxy.caddy, c.hooks.proxy.caddy);
    EXPECT_EQ(h.proxy.scheme, c.hooks.proxy.scheme);
    EXPECT_EQ(h.proxy.port, c.hooks.proxy.port);
    EXPECT_EQ(h.proxy.timeout, c.hooks.proxy.timeout);
    EXPECT_EQ(h.reload.mode, c.hooks.reload.mode);
    EXPECT_EQ(h.reload.unit, c.hooks.reload.unit);
    EXPECT_EQ(h.reload.command, c.hooks.reload.command);
    EXPECT_EQ(h.reload.timeout, c.hooks.reload.timeout);
    EXPECT_EQ(h.health.enabled, c.hooks.health.enabled);
    EXPECT_EQ(h.health.address, c.hooks.health.address);
    EXPECT_EQ(h.health.path, c.hooks.health.path);
    EXPECT_EQ(h.health.timeout, c.hooks.health.timeout);
    EXPECT_EQ(h.keys.keys_dir, c.hooks.keys.keys_dir);
    EXPECT_EQ(h.keys.command, c.hooks.keys.command);
    EXPECT_EQ(h.keys.command_timeout, c.hooks.keys.command_timeout);
    EXPECT_EQ(h.host_key_policy, c.hooks.host_key_policy);
    EXPECT_EQ(h.host_key_pins, c.hooks.host_key_pins);
    const fs::FsOptions f;
    EXPECT_EQ(f.uid, c.filesystem.uid);
    EXPECT_EQ(f.gid, c.filesystem.gid);
    EXPECT_EQ(f.file_mode, c.filesystem.file_mode);
    EXPECT_EQ(f.dir_mode, c.filesystem.dir_mode);
    EXPECT_EQ(f.cache_timeout, c.filesystem.cache_timeout);
    EXPECT_EQ(f.max_temp_bytes, c.filesystem.max_temp_bytes);
    EXPECT_EQ(f.max_temps_per_site, c.filesystem.max_temps_per_site);
    EXPECT_EQ(f.wait_timeout, c.filesystem.wait_timeout);
}

// Nothing is clamped: a number just outside a key's bounds stops start-up, and the message names
// the key and what it accepts. The bounds themselves are accepted.
TEST(ConfigKeys, EveryNumberOutOfBoundsIsRefusedNamingTheKeyAndTheRange) {
    int checked = 0;
    for (const ConfigKey& k : config_keys()) {
        if (k.type != KeyType::integer && k.type != KeyType::seconds && k.type != KeyType::user &&
            k.type != KeyType::group)
            continue;
        SCOPED_TRACE(std::string(k.name));
        const bool whole = k.type != KeyType::seconds;
        const double below = whole || k.min == 0 ? k.min - 1 : k.min / 2;
        std::vector<double> outside{below};
        if (!std::isinf(k.max)) outside.push_back(whole ? k.max + 1 : k.max + 0.5);
        for (const double v : outside) {
            const std::string why = refusal(setting(k, number(v)));
            EXPECT_EQ(why, "sitesfs.toml: " + std::string(k.name) + ": must be " + k.accepts() + ", not " + number(v));
            ++checked;
        }
        EXPECT_EQ(refusal(setting(k, number(k.min))), "");
        if (!std::isinf(k.max)) {
            EXPECT_EQ(refusal(setting(k, number(k.max))), "");
        }
    }
    EXPECT_GE(checked, 20);
}

TEST(ConfigKeys, TheWorkersCapIsAnErrorNotASilentClamp) {
    EXPECT_EQ(refusal("[reconcile]\nworkers = 100\n"),
              "sitesfs.toml: reconcile.workers: must be a whole number from 1 to 64, not 100");
    EXPECT_EQ(load_config_text("[reconcile]\nworkers = 64\n", "t").hooks.workers, 64u);
}

TEST(ConfigKeys, ValuesAreNotConvertedBetweenTypes) {
    // toml++ on its own reads 1 as true, true as 1 and 2.0 as 2.
    EXPECT_EQ(refusal("allow_local_repos = 1\n"), "sitesfs.toml: allow_local_repos: must be true or false");
    EXPECT_EQ(refusal("[reconcile]\nworkers = true\n"),
              "sitesfs.toml: reconcile.workers: must be a whole number from 1 to 64");
    EXPECT_EQ(refusal("[reconcile]\nworkers = 2.0\n"),
              "sitesfs.toml: reconcile.workers: must be a whole number from 1 to 64");
    EXPECT_EQ(refusal("[health]\nenabled = \"yes\"\n"), "sitesfs.toml: health.enabled: must be true or false");
    EXPECT_NE(refusal("[git]\nio_timeout = true\n").find("git.io_timeout: must be a number of seconds"),
              std::string::npos);
    EXPECT_EQ(load_config_text("[git]\nio_timeout = 2.5\n", "t").hooks.git.io, std::chrono::milliseconds(2500));
}

TEST(ConfigKeys, StringsOutsideTheirChoicesAreRefused) {
    EXPECT_EQ(refusal("log_level = \"warning\"\n"),
              "sitesfs.toml: log_level: must be one of \"trace\", \"debug\", \"info\", \"warn\", \"error\" or "
              "\"off\", not \"warning\"");
    EXPECT_NE(refusal("[proxy]\nscheme = \"ftp\"\n").find("proxy.scheme: must be one of \"\", \"http\" or \"https\""),
              std::string::npos);
    EXPECT_NE(refusal("[reload]\nmode = \"dbus\"\n").find("reload.mode: must be one of"), std::string::npos);
    EXPECT_NE(refusal("[ssh]\nhost_key_policy = \"yes\"\n").find("ssh.host_key_policy: must be one of"),
              std::string::npos);
    EXPECT_EQ(refusal("[reload]\nmode = \"command\"\n"), "sitesfs.toml: reload.command: is needed with mode = \"command\"");
}

TEST(ConfigKeys, ModesIdsPathsAndCommandsAreChecked) {
    EXPECT_NE(refusal("[filesystem]\nfile_mode = \"0800\"\n").find("filesystem.file_mode: must be an octal string"),
              std::string::npos);
    EXPECT_NE(refusal("[filesystem]\nfile_mode = \"+644\"\n").find("filesystem.file_mode"), std::string::npos);
    EXPECT_EQ(load_config_text("[filesystem]\nfile_mode = \"640\"\n", "t").filesystem.file_mode, 0640u);
    EXPECT_EQ(refusal("[filesystem]\nowner = 4294967296\n"),
              "sitesfs.toml: filesystem.owner: must be a user name, or a uid from 0 to 4294967294, not 4294967296");
    EXPECT_EQ(refusal("[filesystem]\ngroup = \"no-such-group-here\"\n"),
              "sitesfs.toml: filesystem.group: no such group 'no-such-group-here'");
    EXPECT_EQ(load_config_text("[filesystem]\nowner = \"root\"\n", "t").filesystem.uid, 0u);
    EXPECT_EQ(refusal("data_dir = \"sites\"\n"), "sitesfs.toml: data_dir: must be an absolute path, not \"sites\"");
    EXPECT_EQ(refusal("[keys]\ncommand = []\n"),
              "sitesfs.toml: keys.command: must be a non-empty array of strings (argv, no shell)");
    EXPECT_EQ(refusal("[health]\npath = \"x\"\n"), "sitesfs.toml: health.path: must start with '/' and hold no whitespace");
    EXPECT_EQ(refusal("[proxy]\ncaddy = \"\"\n"), "sitesfs.toml: proxy.caddy: must not be empty");
    EXPECT_EQ(refusal("[ssh.pins]\n\"github.com:22\" = \"MD5:x\"\n"),
              "sitesfs.toml: ssh.pins.github.com:22: write \"HOST:PORT\" = \"SHA256:...\" (ssh-keygen -lf prints it)");
}

TEST(ConfigKeys, UnknownKeysAndSectionsAreRefused) {
    EXPECT_EQ(refusal("colour = \"blue\"\n"), "sitesfs.toml: colour: unknown setting");
    EXPECT_EQ(refusal("[filesystem]\nfile_mod = \"0644\"\n"), "sitesfs.toml: filesystem.file_mod: unknown setting");
    EXPECT_EQ(refusal("proxy = 1\n"), "sitesfs.toml: proxy: must be a table");
    EXPECT_EQ(refusal("[colours]\nsky = \"blue\"\n"), "sitesfs.toml: colours: unknown setting");
}

TEST(Usage, GivesTheDefaultsOfTheCode) {
    const std::string usage = usage_text();
    EXPECT_NE(usage.find("(default " + default_value("state_dir") + ")"), std::string::npos) << usage;
    EXPECT_NE(usage.find("trace, debug, info, warn, error, off (default " + default_value("log_level") + ")"),
              std::string::npos)
        << usage;
}

}  // namespace
}  // namespace sitesfs::mount
