// The config keys (mount/config_keys.cpp): the defaults load and match the structs' own
// initializers, every value out of bounds is refused naming the key and its range, and the docs
// (docs/configuration.md, docs/sitesfs.8), the usage text and the NixOS module say what the table
// says.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>

#include <cmath>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "mount/config.hpp"
#include "mount/config_keys.hpp"
#include "mount/options.hpp"
#include "webhook/listener.hpp"

namespace sitesfs::mount {
namespace {

using ::testing::HasSubstr;

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
    EXPECT_EQ(h.notify.command, c.hooks.notify.command);
    EXPECT_EQ(h.notify.timeout, c.hooks.notify.timeout);
    EXPECT_EQ(h.notify.jobs, c.hooks.notify.jobs);
    const fs::FsOptions f;
    EXPECT_EQ(f.uid, c.filesystem.uid);
    EXPECT_EQ(f.gid, c.filesystem.gid);
    EXPECT_EQ(f.file_mode, c.filesystem.file_mode);
    EXPECT_EQ(f.dir_mode, c.filesystem.dir_mode);
    EXPECT_EQ(f.cache_timeout, c.filesystem.cache_timeout);
    EXPECT_EQ(f.max_temp_bytes, c.filesystem.max_temp_bytes);
    EXPECT_EQ(f.max_temps_per_site, c.filesystem.max_temps_per_site);
    EXPECT_EQ(f.wait_timeout, c.filesystem.wait_timeout);
    const webhook::ListenerOptions w;
    EXPECT_EQ(w.limits.max_body, c.webhook.max_body);
    EXPECT_EQ(w.rate, c.webhook.rate);
    EXPECT_EQ(w.burst, c.webhook.burst);
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
            // The largest uid is within bounds, but no one's: builds need its primary group.
            const std::string why = refusal(setting(k, number(k.max)));
            if (k.name == "build.user") EXPECT_THAT(why, HasSubstr("has no entry in the user database"));
            else EXPECT_EQ(why, "");
        }
    }
    EXPECT_GE(checked, 20);
}

// A builder for the tests: [build] user, and [builders.b] with `fields` besides its command.
std::string with_builder(const std::string& fields) {
    return "[build]\nuser = \"nobody\"\n[builders.b]\ncommand = [\"true\"]\n" + fields;
}

TEST(Builders, EveryNumberOutOfBoundsIsRefusedNamingTheFieldAndTheRange) {
    int checked = 0;
    for (const BuilderField& f : builder_fields()) {
        const ConfigKey& k = f.spec;
        if (k.type != KeyType::integer && k.type != KeyType::seconds) continue;
        SCOPED_TRACE(std::string(k.name));
        const std::string key(k.name);
        for (const double v : {k.min - 1, k.max + 1}) {
            EXPECT_EQ(refusal(with_builder(key + " = " + number(v) + "\n")),
                      "sitesfs.toml: builders.b." + key + ": must be " + k.accepts() + ", not " + number(v));
            ++checked;
        }
        EXPECT_EQ(refusal(with_builder(key + " = " + number(k.min) + "\n")), "");
        EXPECT_EQ(refusal(with_builder(key + " = " + number(k.max) + "\n")), "");
    }
    EXPECT_EQ(checked, 6);
    EXPECT_EQ(refusal(with_builder("timeout = 0\n")),
              "sitesfs.toml: builders.b.timeout: must be a number of seconds from 1 to 86400, not 0");
    EXPECT_EQ(refusal(with_builder("memory = 255\n")),
              "sitesfs.toml: builders.b.memory: must be a whole number from 256 to 134217728, not 255");
    EXPECT_EQ(refusal(with_builder("processes = 65537\n")),
              "sitesfs.toml: builders.b.processes: must be a whole number from 16 to 65536, not 65537");
}

TEST(Builders, AFullBuilderIsReadIntoTheSandboxsUnits) {
    const Config c = load_config_text(R"([build]
jobs = 4
user = "nobody"

[builders.hugo]
command = ["hugo", "--minify", "--source", "{src}", "--destination", "{out}", "--baseURL=x/{out}/{src}"]
network = true
timeout = 90.5
memory = 1024
processes = 64
env = ["HUGO_ENV=production", "TZ=Europe/Vienna", "EMPTY=", "A=b=c"]

[builders.npm-site_2]
command = ["npm", "run", "build"]
)",
                                      "t.toml");
    const hooks::BuildConfig& b = c.hooks.build;
    const passwd* nobody = getpwnam("nobody");
    ASSERT_NE(nobody, nullptr);
    EXPECT_EQ(b.jobs, 4u);
    EXPECT_EQ(b.uid, nobody->pw_uid);
    EXPECT_EQ(b.gid, nobody->pw_gid);
    ASSERT_EQ(b.builders.size(), 2u);
    const hooks::Builder& hugo = b.builders.at("hugo");
    EXPECT_EQ(hugo.name, "hugo");
    EXPECT_EQ(hugo.command, (std::vector<std::string>{"hugo", "--minify", "--source", "{src}", "--destination",
                                                      "{out}", "--baseURL=x/{out}/{src}"}));
    EXPECT_TRUE(hugo.network);
    EXPECT_EQ(hugo.limits.time, std::chrono::milliseconds(90500));
    EXPECT_EQ(hugo.limits.memory_bytes, 1024ull << 20);
    EXPECT_EQ(hugo.limits.max_processes, 64u);
    EXPECT_EQ(hugo.env, (std::vector<std::pair<std::string, std::string>>{
                            {"HUGO_ENV", "production"}, {"TZ", "Europe/Vienna"}, {"EMPTY", ""}, {"A", "b=c"}}));
    // The other limits are the sandbox's, which the config does not set.
    EXPECT_EQ(hugo.limits.max_file_bytes, hooks::SandboxLimits{}.max_file_bytes);
    EXPECT_EQ(hugo.limits.tmp_bytes, hooks::SandboxLimits{}.tmp_bytes);
    EXPECT_EQ(b.builders.at("npm-site_2").command, (std::vector<std::string>{"npm", "run", "build"}));
}

// The table's defaults are the sandbox's own (hooks/sandbox.hpp) and BuildConfig's.
TEST(Builders, DefaultsAreTheSandboxsAndNoBuilds) {
    const Config none = load_config(std::nullopt);
    EXPECT_EQ(none.hooks.build.jobs, hooks::BuildConfig{}.jobs);
    EXPECT_EQ(none.hooks.build.uid, std::nullopt);
    EXPECT_TRUE(none.hooks.build.builders.empty());
    const hooks::Builder b = load_config_text(with_builder(""), "t").hooks.build.builders.at("b");
    const hooks::Builder plain;
    EXPECT_EQ(b.network, plain.network);
    EXPECT_EQ(b.limits.time, plain.limits.time);
    EXPECT_EQ(b.limits.memory_bytes, plain.limits.memory_bytes);
    EXPECT_EQ(b.limits.max_processes, plain.limits.max_processes);
    EXPECT_TRUE(b.env.empty());
}

TEST(Builders, RefusalsNameTheKeyAndWhatIsWrong) {
    const std::string user = "[build]\nuser = \"nobody\"\n";
    EXPECT_EQ(refusal(user + "[builders.Hugo]\ncommand = [\"hugo\"]\n"),
              "sitesfs.toml: builders.Hugo: a builder's name is 1-32 of a-z, 0-9, '_', '-', starting with a letter "
              "or digit (a site's build field names it)");
    EXPECT_THAT(refusal(user + "[builders.-x]\ncommand = [\"hugo\"]\n"), HasSubstr("builders.-x: a builder's name"));
    EXPECT_THAT(refusal(user + "[builders." + std::string(33, 'a') + "]\ncommand = [\"hugo\"]\n"),
                HasSubstr("a builder's name is 1-32"));
    EXPECT_EQ(refusal(user + "[builders]\nhugo = 1\n"),
              "sitesfs.toml: builders.hugo: must be a table: [builders.hugo] with command = [...]");
    EXPECT_EQ(refusal(with_builder("networks = true\n")),
              "sitesfs.toml: builders.b.networks: unknown setting; a builder has command, network, timeout, memory, "
              "processes, env");
    EXPECT_EQ(refusal(user + "[builders.b]\nnetwork = true\n"),
              "sitesfs.toml: builders.b.command: is required: a non-empty array of strings (argv, no shell)");
    EXPECT_EQ(refusal(user + "[builders.b]\ncommand = []\n"),
              "sitesfs.toml: builders.b.command: must be a non-empty array of strings (argv, no shell)");
    EXPECT_EQ(refusal(user + "[builders.b]\ncommand = [\"hugo\", \"--source={source}\"]\n"),
              "sitesfs.toml: builders.b.command: \"--source={source}\": the only placeholders are {src} and {out}, "
              "and no other { or } may appear");
    EXPECT_THAT(refusal(user + "[builders.b]\ncommand = [\"x\", \"{out\"]\n"), HasSubstr("\"{out\": the only"));
    EXPECT_THAT(refusal(user + "[builders.b]\ncommand = [\"x\", \"{x}\"]\n"), HasSubstr("\"{x}\": the only"));
    EXPECT_THAT(refusal(user + "[builders.b]\ncommand = [\"x\", \"}\"]\n"), HasSubstr("\"}\": the only"));
    EXPECT_EQ(refusal(with_builder("env = [\"1X=y\"]\n")),
              "sitesfs.toml: builders.b.env: \"1X=y\" is not NAME=VALUE with NAME matching [A-Za-z_][A-Za-z0-9_]*");
    EXPECT_THAT(refusal(with_builder("env = [\"NOVALUE\"]\n")), HasSubstr("\"NOVALUE\" is not NAME=VALUE"));
    EXPECT_THAT(refusal(with_builder("env = [\"=x\"]\n")), HasSubstr("\"=x\" is not NAME=VALUE"));
    EXPECT_THAT(refusal(with_builder("env = [\"A-B=x\"]\n")), HasSubstr("\"A-B=x\" is not NAME=VALUE"));
    EXPECT_EQ(refusal(with_builder("network = \"yes\"\n")), "sitesfs.toml: builders.b.network: must be true or false");
}

TEST(Builders, NeedABuildUserThatIsNotRoot) {
    EXPECT_THAT(refusal("[builders.hugo]\ncommand = [\"hugo\"]\n"),
                HasSubstr("sitesfs.toml: builders.hugo: builders need [build] user: "));
    EXPECT_EQ(refusal("[build]\nuser = 0\n"),
              "sitesfs.toml: build.user: must be a user name, or a uid from 1 to 4294967294, not 0");
    EXPECT_EQ(refusal("[build]\nuser = \"root\"\n"),
              "sitesfs.toml: build.user: must be a user name, or a uid from 1 to 4294967294, not \"root\" (0)");
    EXPECT_EQ(refusal("[build]\nuser = \"no-such-user-here\"\n"),
              "sitesfs.toml: build.user: no such user 'no-such-user-here'");
    EXPECT_THAT(refusal("[build]\nuser = 4000000000\n"),
                HasSubstr("build.user: uid 4000000000 has no entry in the user database"));
    EXPECT_EQ(refusal("[build]\njobs = 0\n"), "sitesfs.toml: build.jobs: must be a whole number from 1 to 64, not 0");
    EXPECT_EQ(refusal("[build]\nuser = \"nobody\"\n"), "");
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

TEST(ConfigKeys, TheStoresNamesAndAddressesAreChecked) {
    EXPECT_THAT(refusal("[store]\nhost = \"web/1\"\n"), HasSubstr("store.host"));
    EXPECT_THAT(refusal("[store]\nlabels = [\"eu\", \"EU\"]\n"), HasSubstr("label \"EU\": a label is lower-case here"));
    EXPECT_THAT(refusal("[store]\nendpoints = [\"127.0.0.1:2379\"]\n"), HasSubstr("is not an http:// or https:// URL"));
    EXPECT_THAT(refusal("[store]\nendpoints = []\n"), HasSubstr("must name at least one member"));
    EXPECT_THAT(refusal("[store]\nprefix = \"sitesfs\"\n"), HasSubstr("must start and end with '/'"));
    EXPECT_THAT(refusal("[store]\nbackend = \"consul\"\n"), HasSubstr("store.backend"));
    const Config c = load_config_text("[store]\nbackend = \"etcd\"\nhost = \"web1.example\"\nlabels = [\"eu\"]\n", "t.toml");
    EXPECT_EQ(c.store.backend, StoreConfig::Backend::etcd);
    EXPECT_EQ(c.store.host, "web1.example");
    EXPECT_EQ(c.store.labels, std::vector<std::string>{"eu"});
    EXPECT_EQ(c.store.endpoints, std::vector<std::string>{"http://127.0.0.1:2379"});
    EXPECT_EQ(c.store.prefix, "/sitesfs/");
}

TEST(ConfigKeys, TheWebhookListensOnLoopbackOnlyAndNeedsASecret) {
    EXPECT_TRUE(load_config(std::nullopt).webhook.listen.empty()) << "off by default";
    const Config c = load_config_text("[webhook]\nlisten = \"[::1]:9418\"\nsecret_ref = \"file:webhook\"\n", "t.toml");
    EXPECT_EQ(c.webhook.listen, "[::1]:9418");
    EXPECT_EQ(c.webhook.secret_ref, "file:webhook");
    EXPECT_EQ(load_config_text("[webhook]\nlisten = \"unix:/run/sitesfs/hook.sock\"\nsecret_ref = \"cmd:hook\"\n", "t.toml")
                  .webhook.listen,
              "unix:/run/sitesfs/hook.sock");
    EXPECT_THAT(refusal("[webhook]\nlisten = \"0.0.0.0:9418\"\nsecret_ref = \"file:webhook\"\n"),
                HasSubstr("webhook.listen: \"0.0.0.0:9418\": must be a loopback address"));
    EXPECT_THAT(refusal("[webhook]\nlisten = \"localhost:9418\"\nsecret_ref = \"file:webhook\"\n"),
                HasSubstr("names are not resolved"));
    EXPECT_THAT(refusal("[webhook]\nlisten = \"127.0.0.1:9418\"\n"), HasSubstr("webhook.secret_ref: is needed with listen"));
    EXPECT_THAT(refusal("[webhook]\nsecret_ref = \"webhook\"\n"), HasSubstr("webhook.secret_ref"));
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

TEST(ConfigKeys, NotifyTakesACommandWithItsTimeoutAndJobs) {
    EXPECT_TRUE(load_config(std::nullopt).hooks.notify.command.empty()) << "no notifications unless configured";
    const Config c = load_config_text(
        "[notify]\ncommand = [\"/usr/local/bin/tell\", \"--channel\", \"ops\"]\ntimeout = 2.5\njobs = 2\n", "t");
    EXPECT_EQ(c.hooks.notify.command, (std::vector<std::string>{"/usr/local/bin/tell", "--channel", "ops"}));
    EXPECT_EQ(c.hooks.notify.timeout, std::chrono::milliseconds(2500));
    EXPECT_EQ(c.hooks.notify.jobs, 2u);
    EXPECT_EQ(refusal("[notify]\ncommand = []\n"),
              "sitesfs.toml: notify.command: must be a non-empty array of strings (argv, no shell)");
    EXPECT_EQ(refusal("[notify]\ncommand = \"/usr/local/bin/tell ops\"\n"),
              "sitesfs.toml: notify.command: must be a non-empty array of strings (argv, no shell)");
    EXPECT_EQ(refusal("[notify]\nevents = [\"failed\"]\n"), "sitesfs.toml: notify.events: unknown setting");
}

TEST(ConfigKeys, UnknownKeysAndSectionsAreRefused) {
    EXPECT_EQ(refusal("colour = \"blue\"\n"), "sitesfs.toml: colour: unknown setting");
    EXPECT_EQ(refusal("[filesystem]\nfile_mod = \"0644\"\n"), "sitesfs.toml: filesystem.file_mod: unknown setting");
    EXPECT_EQ(refusal("proxy = 1\n"), "sitesfs.toml: proxy: must be a table");
    EXPECT_EQ(refusal("[colours]\nsky = \"blue\"\n"), "sitesfs.toml: colours: unknown setting");
    EXPECT_EQ(refusal("[proxy]\n\"\\u001b[2J\" = 1\n"), "sitesfs.toml: proxy.\\x1b[2J: unknown setting");
}

TEST(ConfigDoc, TheKeyListInConfigurationMdIsGeneratedFromTheTable) {
    const std::string text = source_file("docs/configuration.md");
    ASSERT_FALSE(text.empty()) << "docs/configuration.md is missing";
    std::string expected;
    ASSERT_NO_THROW(expected = with_config_doc(text));
    if (text == expected) return;
    std::istringstream have(text), want(expected);
    std::string a, b;
    int line = 0;
    while (++line, std::getline(have, a) && std::getline(want, b) && a == b) {
    }
    ADD_FAILURE() << "docs/configuration.md is stale: run `cmake --build build -t config-doc` and commit it.\n"
                  << "First difference, line " << line << ":\n  the file: " << a << "\n  the code: " << b;
}

// docs/sitesfs.8, as a reader sees it: a line with its macro dropped, the arguments of the
// font macros joined as troff joins them, the escapes replaced.
std::string troff_text(const std::string& line) {
    if (line.starts_with(".\\\"")) return "";
    std::string body = line;
    bool joined = false;
    if (line.starts_with(".")) {
        const size_t space = line.find(' ');
        const std::string macro = line.substr(1, space == std::string::npos ? std::string::npos : space - 1);
        static const std::vector<std::string> fonts{"B", "I", "BR", "RB", "BI", "IB", "IR", "RI"};
        if (std::find(fonts.begin(), fonts.end(), macro) == fonts.end()) return "";
        joined = macro.size() == 2;
        body = space == std::string::npos ? "" : line.substr(space + 1);
    }
    std::vector<std::string> args;
    if (line.starts_with(".")) {
        std::string cur;
        bool quoted = false, any = false;
        for (const char ch : body) {
            if (ch == '"') {
                quoted = !quoted;
                any = true;
            } else if (ch == ' ' && !quoted) {
                if (any || !cur.empty()) args.push_back(cur);
                cur.clear();
                any = false;
            } else {
                cur += ch;
            }
        }
        if (any || !cur.empty()) args.push_back(cur);
    } else {
        args.push_back(body);
    }
    std::string out;
    for (const auto& a : args) out += (out.empty() || joined ? "" : " ") + a;
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
             {"\\(dq", "\""}, {"\\(aq", "'"}, {"\\-", "-"}, {"\\&", ""}, {"\\c", ""}, {"\\(em", "-"}})
        for (size_t at; (at = out.find(from)) != std::string::npos;) out.replace(at, from.size(), to);
    return out;
}

struct ManEntry {
    std::string tag;        // "= 32", "(unset)", "" for [ssh.pins]
    std::string paragraph;  // what follows the tag, flattened
};

struct ManConfig {
    std::string intro;  // .SH CONFIGURATION up to its first .SS
    std::map<std::string, ManEntry> keys;
};

ManConfig man_config(const std::string& man) {
    ManConfig out;
    std::istringstream in(man);
    std::string line, section;
    bool inside = false, in_intro = false, want_tag = false;
    ManEntry* entry = nullptr;
    while (std::getline(in, line)) {
        if (line.starts_with(".SH ")) {
            inside = line == ".SH CONFIGURATION";
            in_intro = inside;
            entry = nullptr;
            continue;
        }
        if (!inside) continue;
        if (line.starts_with(".SS ")) {
            in_intro = false;
            entry = nullptr;
            const std::string name = line.substr(4);
            section = name.starts_with("[") ? name.substr(1, name.size() - 2) : "";
            continue;
        }
        if (line == ".TP") {
            want_tag = true;
            entry = nullptr;
            continue;
        }
        if (line == ".PP") {
            entry = nullptr;
            continue;
        }
        const std::string text = troff_text(line);
        if (want_tag) {
            want_tag = false;
            static const std::regex tag(R"(^(\[?[a-z_.]+\]?)(?: (= .*|\((?:unset|derived|required)\)))?$)");
            std::smatch m;
            if (std::regex_match(text, m, tag)) {
                std::string key = m[1];
                if (key.starts_with("[")) key = key.substr(1, key.size() - 2);
                else if (!section.empty()) key = section + "." + key;
                entry = &out.keys[key];
                entry->tag = m[2];
            }
            continue;
        }
        if (in_intro) out.intro += text + " ";
        if (entry) entry->paragraph += text + " ";
    }
    return out;
}

TEST(ManPage, DocumentsEveryConfigKeyWithTheDefaultAndTheBoundsOfTheCode) {
    const std::string man = source_file("docs/sitesfs.8");
    ASSERT_FALSE(man.empty()) << "docs/sitesfs.8 is missing";
    const ManConfig doc = man_config(man);
    std::map<std::string, bool> in_table;
    // The keys as the man page names them: the fields of [builders.NAME] under .SS [builders.NAME].
    std::vector<std::pair<std::string, const ConfigKey*>> keys;
    for (const ConfigKey& k : config_keys()) {
        if (k.type != KeyType::builders) keys.emplace_back(k.name, &k);
        else
            for (const BuilderField& f : builder_fields())
                keys.emplace_back(std::string(k.name) + ".NAME." + std::string(f.spec.name), &f.spec);
    }
    for (const auto& [name, key] : keys) {
        const ConfigKey& k = *key;
        in_table[name] = true;
        const auto it = doc.keys.find(name);
        if (it == doc.keys.end()) {
            ADD_FAILURE() << "docs/sitesfs.8: " << name << " is missing from CONFIGURATION (a .TP under its .SS)";
            continue;
        }
        const ManEntry& e = it->second;
        const bool field = name.starts_with("builders.");
        const std::string want = k.type == KeyType::pins ? ""
                                 : k.fallback.empty()    ? (field ? "(required)" : k.derived ? "(derived)" : "(unset)")
                                                         : "= " + std::string(k.fallback);
        EXPECT_EQ(e.tag, want) << "docs/sitesfs.8: the default of " << name << " differs from mount/config_keys.cpp";
        // The bounds: durations within the general rule are covered by the section's introduction.
        std::string bounds = k.range();
        if (k.type == KeyType::user || k.type == KeyType::group) bounds = bounds.substr(bounds.find(", or ") + 5);
        if (k.type == KeyType::seconds && k.min == kMinSeconds && k.max == kMaxSeconds) {
            EXPECT_NE(doc.intro.find(bounds), std::string::npos)
                << "docs/sitesfs.8: CONFIGURATION should give the bounds of durations, " << bounds;
        } else if (k.type == KeyType::string) {
            for (const std::string_view choice : k.choices)
                EXPECT_NE(e.paragraph.find(choice.empty() ? "\"\"" : std::string(choice)), std::string::npos)
                    << "docs/sitesfs.8: " << name << " does not mention \"" << choice << "\":\n" << e.paragraph;
        } else if (!bounds.empty()) {
            EXPECT_NE(e.paragraph.find(bounds), std::string::npos)
                << "docs/sitesfs.8: " << name << " should say it accepts " << bounds << ":\n" << e.paragraph;
        }
    }
    for (const auto& [name, entry] : doc.keys)
        EXPECT_TRUE(in_table.count(name)) << "docs/sitesfs.8 documents " << name << ", which mount/config_keys.cpp lacks";
}

std::string man_option_paragraph(const std::string& man, const std::string& option) {
    std::istringstream in(man);
    std::string line, out;
    bool inside = false, want_tag = false;
    while (std::getline(in, line)) {
        if (line.starts_with(".SH")) {
            if (inside) break;
            inside = line == ".SH OPTIONS";
            continue;
        }
        if (!inside) continue;
        if (line == ".TP" || line == ".PP" || line.starts_with(".SS")) {
            if (!out.empty()) break;
            want_tag = line == ".TP";
            continue;
        }
        if (want_tag) {
            want_tag = false;
            if (troff_text(line).starts_with(option + " ")) out = " ";
            continue;
        }
        if (!out.empty()) out += troff_text(line) + " ";
    }
    return out;
}

TEST(ManPage, OptionsGiveTheDefaultsOfTheCode) {
    const std::string man = source_file("docs/sitesfs.8");
    const std::string state_dir = man_option_paragraph(man, "--state-dir");
    EXPECT_NE(state_dir.find("(default " + default_value("state_dir")), std::string::npos)
        << "docs/sitesfs.8, --state-dir:" << state_dir;
    const std::string log_level = man_option_paragraph(man, "--log-level");
    EXPECT_NE(log_level.find(default_value("log_level") + " (the default)"), std::string::npos)
        << "docs/sitesfs.8, --log-level:" << log_level;
    for (const std::string_view level : config_key("log_level").choices)
        EXPECT_NE(log_level.find(std::string(level)), std::string::npos) << level << " in" << log_level;
}

TEST(Usage, GivesTheDefaultsOfTheCode) {
    const std::string usage = usage_text();
    EXPECT_NE(usage.find("(default " + default_value("state_dir") + ")"), std::string::npos) << usage;
    EXPECT_NE(usage.find("trace, debug, info, warn, error, off (default " + default_value("log_level") + ")"),
              std::string::npos)
        << usage;
}

// nix/module.nix: `NAME = mkOption { ... default = VALUE; ... }`.
std::string nix_option(const std::string& module, const std::string& name, const std::string& field) {
    const size_t at = module.find("    " + name + " = mkOption {");
    if (at == std::string::npos) return "(no option " + name + ")";
    const size_t end = module.find("\n    };", at);
    const std::string block = module.substr(at, end - at);
    const size_t f = block.find(field + " = ");
    if (f == std::string::npos) return "(no " + field + ")";
    const size_t value = f + field.size() + 3;
    return block.substr(value, block.find(';', value) - value);
}

TEST(NixModule, OptionsThatSetAConfigKeyDefaultToTheCodesDefault) {
    const std::string module = source_file("nix/module.nix");
    ASSERT_FALSE(module.empty()) << "nix/module.nix is missing";
    for (const auto& [option, key] : std::vector<std::pair<std::string, std::string>>{
             {"stateDir", "state_dir"},
             {"dataDir", "data_dir"},
             {"reloadUnit", "reload.unit"},
             {"pollInterval", "reconcile.poll_interval"},
             {"hostKeyPolicy", "ssh.host_key_policy"},
             {"storeBackend", "store.backend"}}) {
        EXPECT_EQ(nix_option(module, option, "default"), config_key(key).fallback)
            << "nix/module.nix: services.sitesfs." << option << " (" << key << ")";
    }
    const ConfigKey& poll = config_key("reconcile.poll_interval");
    EXPECT_EQ(nix_option(module, "pollInterval", "type"),
              "types.ints.between " + number(poll.min) + " " + number(poll.max))
        << "nix/module.nix: services.sitesfs.pollInterval takes what reconcile.poll_interval takes (whole seconds)";
    std::string policies;
    for (const std::string_view choice : config_key("ssh.host_key_policy").choices)
        policies += " \"" + std::string(choice) + "\"";
    std::string type = nix_option(module, "hostKeyPolicy", "type");
    type = std::regex_replace(type, std::regex(R"(\s+)"), " ");
    EXPECT_EQ(type, "types.enum [" + policies + " ]") << "nix/module.nix: services.sitesfs.hostKeyPolicy";
}

}  // namespace
}  // namespace sitesfs::mount
