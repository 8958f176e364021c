// Deploy key resolution against real files, real ssh-keygen keys and real key commands (small
// shell scripts standing in for a secret store).
#include <gtest/gtest.h>
#include <libssh2.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "hooks/deploy_keys.hpp"
#include "tests/integration/mount_fixture.hpp"

namespace sitesfs::it {
namespace {

using hooks::KeyError;
using hooks::KeyProviders;
using hooks::resolve_deploy_key;
using hooks::SecretBuffer;

class DeployKeys : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/sitesfs-keys-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
        tmp_ = tmpl;
        const it::Run r = run({"ssh-keygen", "-t", "ed25519", "-N", "", "-C", "test", "-f", key_file().string(), "-q"});
        ASSERT_EQ(r.code, 0) << describe(r);
        key_ = slurp(key_file());
        ASSERT_NE(key_.find("PRIVATE KEY-----"), std::string::npos) << key_.size();
        ASSERT_EQ(mkdir(keys_dir().c_str(), 0700), 0) << std::strerror(errno);
        providers_.keys_dir = keys_dir();
    }

    void TearDown() override {
        std::error_code ec;
        stdfs::remove_all(tmp_, ec);
        if (ec) ADD_FAILURE() << "cannot remove " << tmp_ << ": " << ec.message();
    }

    // The generated key, outside the keys dir.
    stdfs::path key_file() const { return tmp_ / "k"; }
    stdfs::path keys_dir() const { return tmp_ / "keys"; }

    // keys_dir/NAME with `content` and `mode`.
    stdfs::path put_key(const std::string& name, const std::string& content, mode_t mode = 0600) const {
        const stdfs::path p = keys_dir() / name;
        spit(p, content);
        EXPECT_EQ(chmod(p.c_str(), mode), 0) << std::strerror(errno);
        return p;
    }

    // An executable /bin/sh script TMP/NAME with `body`.
    std::string script(const std::string& name, const std::string& body) const {
        const stdfs::path p = tmp_ / name;
        spit(p, "#!/bin/sh\n" + body);
        EXPECT_EQ(chmod(p.c_str(), 0755), 0) << std::strerror(errno);
        return p.string();
    }

    std::string resolve(const std::string& ref) const {
        try {
            const SecretBuffer key = resolve_deploy_key(providers_, ref);
            EXPECT_EQ(std::strlen(key.c_str()), key.size()) << "not NUL-terminated where libgit2 expects it";
            return std::string(key.c_str(), key.size());
        } catch (const KeyError& e) {
            ADD_FAILURE() << "resolving " << ref << " failed: " << e.what();
        }
        return {};
    }

    // keys_dir/NAME holding `key`, resolved through file:NAME.
    std::string resolve_key_file(const std::string& name, const std::string& key) const {
        put_key(name, key);
        return resolve("file:" + name);
    }

    // The KeyError message for `ref`; a test failure when it resolves.
    std::string key_error(const std::string& ref) const {
        try {
            const SecretBuffer key = resolve_deploy_key(providers_, ref);
            ADD_FAILURE() << ref << " resolved to " << key.size() << " bytes";
        } catch (const KeyError& e) {
            return e.what();
        }
        return {};
    }

    // A new key made by `ssh-keygen -t TYPE ARGS...` without a passphrase (unless ARGS give one);
    // its private key file's text.
    std::string keygen(const std::string& file, const std::vector<std::string>& type_and_args) const {
        std::vector<std::string> argv{"ssh-keygen", "-q", "-N", "", "-C", "test", "-f", (tmp_ / file).string(), "-t"};
        argv.insert(argv.end(), type_and_args.begin(), type_and_args.end());
        const it::Run r = run(argv);
        EXPECT_EQ(r.code, 0) << describe(r);
        return slurp(tmp_ / file);
    }

    // A new TYPE key in each format ssh-keygen writes: the format's name and the key file's text.
    std::vector<std::pair<std::string, std::string>> keys_in_every_format(const std::string& type) const {
        return {{"openssh", keygen(type, {type})},
                {"pem", keygen(type + ".pem", {type, "-m", "PEM"})},
                {"pkcs8", keygen(type + ".pkcs8", {type, "-m", "PKCS8"})}};
    }

    // `error` names the ref and says what to do, and quotes none of the key's base64 lines.
    static void expect_names_ref_and_remedy(const std::string& error, const std::string& ref, const std::string& key) {
        EXPECT_TRUE(error.starts_with("deploy key " + ref + " is ")) << error;
        EXPECT_TRUE(error.ends_with(": make an ed25519 key (ssh-keygen -t ed25519) and use that")) << error;
        for (const std::string& line : split_lines(key)) {
            if (line.starts_with("-----")) continue;
            EXPECT_EQ(error.find(line), std::string::npos) << error;
        }
    }

    stdfs::path tmp_;
    std::string key_;
    KeyProviders providers_;
};

// ---------------------------------------------------------------------------------------------
// file:

TEST_F(DeployKeys, FileReturnsExactlyTheKeyBytes) {
    put_key("blog", key_);
    EXPECT_EQ(resolve("file:blog"), key_);
}

TEST_F(DeployKeys, FileKeysDirMayItselfBeASymlink) {
    put_key("blog", key_);
    const stdfs::path link = tmp_ / "agenix";
    stdfs::create_directory_symlink(keys_dir(), link);
    providers_.keys_dir = link;
    EXPECT_EQ(resolve("file:blog"), key_);
}

TEST_F(DeployKeys, FileReadableByOthersIsRefusedWithChmodHint) {
    const stdfs::path p = put_key("blog", key_, 0644);
    const std::string why = key_error("file:blog");
    EXPECT_NE(why.find("deploy key file:blog: "), std::string::npos) << why;
    EXPECT_NE(why.find(p.string()), std::string::npos) << why;
    EXPECT_NE(why.find("readable by group or others"), std::string::npos) << why;
    EXPECT_NE(why.find("chmod 600"), std::string::npos) << why;
}

TEST_F(DeployKeys, FileWritableByGroupIsRefused) {
    put_key("blog", key_, 0620);
    EXPECT_NE(key_error("file:blog").find("chmod 600"), std::string::npos);
}

TEST_F(DeployKeys, FileSymlinkInsideKeysDirIsRefused) {
    ASSERT_EQ(symlink(key_file().c_str(), (keys_dir() / "blog").c_str()), 0) << std::strerror(errno);
    const std::string why = key_error("file:blog");
    EXPECT_NE(why.find("is a symbolic link"), std::string::npos) << why;
}

TEST_F(DeployKeys, FileNamesThatLeaveTheKeysDirAreRefused) {
    // A valid 0600 key one level up, where "../x" would land if the name were used as a path.
    spit(tmp_ / "x", key_);
    ASSERT_EQ(chmod((tmp_ / "x").c_str(), 0600), 0);
    ASSERT_EQ(mkdir((keys_dir() / "a").c_str(), 0700), 0);
    put_key("a/b", key_);
    for (const std::string name : {"../x", "a/b", "..", "."}) {
        const std::string why = key_error("file:" + name);
        EXPECT_NE(why.find("may not contain '/'"), std::string::npos) << name << ": " << why;
    }
}

TEST_F(DeployKeys, FileMissingNamesThePath) {
    const std::string why = key_error("file:nope");
    EXPECT_NE(why.find((keys_dir() / "nope").string()), std::string::npos) << why;
    EXPECT_NE(why.find("does not exist"), std::string::npos) << why;
}

TEST_F(DeployKeys, FileThatIsADirectoryIsRefused) {
    ASSERT_EQ(mkdir((keys_dir() / "blog").c_str(), 0700), 0);
    const std::string why = key_error("file:blog");
    EXPECT_NE(why.find("not a regular file"), std::string::npos) << why;
}

TEST_F(DeployKeys, FileThatIsNotAKeyIsRefusedWithoutShowingIt) {
    put_key("blog", "correct-horse-battery-staple\n-----BEGIN nothing\n");
    const std::string why = key_error("file:blog");
    EXPECT_NE(why.find("does not look like a private key"), std::string::npos) << why;
    EXPECT_EQ(why.find("correct-horse"), std::string::npos) << why;
    EXPECT_EQ(why.find("nothing"), std::string::npos) << why;
}

TEST_F(DeployKeys, FileLargerThan64KiBIsRefused) {
    put_key("blog", key_ + std::string(64 * 1024, '#'));
    const std::string why = key_error("file:blog");
    EXPECT_NE(why.find("64 KiB"), std::string::npos) << why;
}

TEST_F(DeployKeys, FileWithoutKeysDirConfigured) {
    put_key("blog", key_);
    providers_.keys_dir.clear();
    const std::string why = key_error("file:blog");
    EXPECT_NE(why.find("no keys directory is configured ([keys] dir)"), std::string::npos) << why;
}

TEST_F(DeployKeys, UnknownProviderIsRefused) {
    const std::string why = key_error("vault:blog");
    EXPECT_NE(why.find("unknown key provider 'vault' (file or cmd)"), std::string::npos) << why;
}

// ---------------------------------------------------------------------------------------------
// Key types

// libssh2 1.11 signs RSA logins with rsa-sha2-256/512; Debian 12's 1.10 only with ssh-rsa (SHA-1).
bool rsa_signs_with_sha1_only() { return libssh2_version(0x010b00) == nullptr; }

TEST_F(DeployKeys, RsaKeysInEveryFormatAreRefusedWithTheReasonAndWhatToUse) {
    for (const auto& [format, key] : keys_in_every_format("rsa")) {
        SCOPED_TRACE(format);
        put_key("blog", key);
        if (!rsa_signs_with_sha1_only()) {
            EXPECT_EQ(resolve("file:blog"), key);
            continue;
        }
        const std::string error = key_error("file:blog");
        EXPECT_EQ(error, std::string("deploy key file:blog is an RSA key; this sitesfs's libssh2 (") + libssh2_version(0) +
                             ") can only sign RSA logins with SHA-1 (ssh-rsa), which OpenSSH 8.8+ and GitHub refuse: "
                             "make an ed25519 key (ssh-keygen -t ed25519) and use that");
        expect_names_ref_and_remedy(error, "file:blog", key);
    }
}

TEST_F(DeployKeys, DsaKeysInEveryFormatAreRefused) {
    for (const auto& [format, key] : keys_in_every_format("dsa")) {
        SCOPED_TRACE(format);
        put_key("blog", key);
        const std::string error = key_error("file:blog");
        EXPECT_NE(error.find("is a DSA key; OpenSSH 7.0+ and GitHub refuse DSA (ssh-dss) logins"), std::string::npos) << error;
        expect_names_ref_and_remedy(error, "file:blog", key);
    }
}

// Making a real one needs a token; the parts before the secret are all the check reads.
TEST_F(DeployKeys, FidoSecurityKeysAreRefused) {
    const auto str = [](const std::string& s) {
        const uint32_t n = static_cast<uint32_t>(s.size());
        return std::string{char(n >> 24), char(n >> 16), char(n >> 8), char(n)} + s;
    };
    const std::string public_key = str("sk-ssh-ed25519@openssh.com") + str(std::string(32, 'P')) + str("ssh:");
    const std::string binary = std::string("openssh-key-v1", 15) + str("none") + str("none") + str("") +
                               std::string{0, 0, 0, 1} + str(public_key) + str(std::string(100, 'S'));
    spit(tmp_ / "sk.bin", binary);
    const it::Run base64 = run({"base64", "-w", "70", (tmp_ / "sk.bin").string()});
    ASSERT_EQ(base64.code, 0) << describe(base64);
    const std::string key = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + base64.out + "-----END OPENSSH PRIVATE KEY-----\n";
    put_key("blog", key);
    const std::string error = key_error("file:blog");
    EXPECT_NE(error.find("is a FIDO security key (sk-...), which needs its hardware token at every login; sitesfs has no token to ask"),
              std::string::npos) << error;
    expect_names_ref_and_remedy(error, "file:blog", key);
}

TEST_F(DeployKeys, Ed25519AndEcdsaKeysInEveryFormatPass) {
    EXPECT_EQ(resolve_key_file("ed25519", key_), key_);
    const std::string p384 = keygen("ecdsa-384", {"ecdsa", "-b", "384"});
    EXPECT_EQ(resolve_key_file("ecdsa-384", p384), p384);
    for (const auto& [format, key] : keys_in_every_format("ecdsa")) {
        SCOPED_TRACE(format);
        EXPECT_EQ(resolve_key_file("ecdsa-" + format, key), key);
    }
}

// The type of an encrypted PKCS#8 key is inside the encryption, and a key that is damaged may
// still be something libssh2 reads: neither is refused here.
TEST_F(DeployKeys, KeysWhoseTypeCannotBeReadAreLeftToLibssh2) {
    const std::string encrypted = keygen("enc", {"rsa", "-m", "PKCS8", "-N", "a passphrase"});
    ASSERT_TRUE(encrypted.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----")) << encrypted;
    EXPECT_EQ(resolve_key_file("enc", encrypted), encrypted);
    const std::string armor_end = "-----END OPENSSH PRIVATE KEY-----\n";
    for (const std::string& body : {std::string("!!!!\n"), std::string(""), std::string("b3BlbnNzaC1rZXktdjEA\n"),
                                    // the magic, then a cipher name 4 GiB long
                                    std::string("b3BlbnNzaC1rZXktdjEA/////w==\n")}) {
        const std::string key = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + body + armor_end;
        EXPECT_EQ(resolve_key_file("damaged", key), key) << body;
    }
}

TEST_F(DeployKeys, AKeyCommandsKeyTypeIsCheckedToo) {
    const std::string key = keygen("rsa", {"rsa"});
    providers_.command = {script("store", "cat '" + (tmp_ / "rsa").string() + "'\n")};
    if (!rsa_signs_with_sha1_only()) {
        EXPECT_EQ(resolve("cmd:blog"), key);
        return;
    }
    const std::string error = key_error("cmd:blog");
    EXPECT_TRUE(error.starts_with("deploy key cmd:blog is an RSA key; ")) << error;
}

// ---------------------------------------------------------------------------------------------
// cmd:

TEST_F(DeployKeys, CommandStdoutIsTheKeyAndStderrIsNot) {
    const stdfs::path args = tmp_ / "args";
    providers_.command = {script("store", "echo \"store: looking up $1\" >&2\n"
                                          "echo \"$@\" > '" + args.string() + "'\n"
                                          "cat '" + key_file().string() + "'\n"
                                          "echo 'store: done' >&2\n"),
                          "show", "--raw"};
    EXPECT_EQ(resolve("cmd:blog"), key_);
    EXPECT_EQ(slurp(args), "show --raw blog\n");
}

TEST_F(DeployKeys, CommandDrainsALoudStderrWhileReadingTheKey) {
    // More than a pipe buffer on stderr before the key: reading only stdout would stall.
    providers_.command = {script("store", "head -c 300000 /dev/zero | tr '\\0' x >&2\n"
                                          "cat '" + key_file().string() + "'\n")};
    EXPECT_EQ(resolve("cmd:blog"), key_);
}

TEST_F(DeployKeys, CommandNonZeroExitGivesCodeAndStderrOnOneLine) {
    providers_.command = {script("store", "echo '' >&2\necho 'store: no entry named' \"$1\" >&2\n"
                                          "printf 'second\\tline \\033[31mred\\033[0m\\r\\n\\n' >&2\nexit 3\n")};
    const std::string why = key_error("cmd:blog");
    EXPECT_TRUE(why.starts_with("deploy key cmd:blog: " + providers_.command[0] + " exited 3: ")) << why;
    EXPECT_TRUE(why.ends_with(" exited 3: store: no entry named blog / second line [31mred[0m")) << why;
}

TEST_F(DeployKeys, CommandFailureShowsTheLastFiveStderrLines) {
    providers_.command = {script("store", "for i in $(seq 1 20); do echo \"store: step $i\" >&2; done\nexit 1\n")};
    const std::string why = key_error("cmd:blog");
    EXPECT_TRUE(why.ends_with(" exited 1: store: step 16 / store: step 17 / store: step 18 / store: step 19 / store: step 20"))
        << why;
}

TEST_F(DeployKeys, CommandFailureStderrIsBoundedFromTheFront) {
    // 20 lines of 200 bytes: the last five are 1,000 bytes, more than is shown.
    providers_.command = {script("store", "for i in $(seq 10 29); do printf 'line %s: %0196d\\n' $i 0 >&2; done\n"
                                          "echo 'the reason' >&2\nexit 1\n")};
    const std::string why = key_error("cmd:blog");
    const std::string head = "deploy key cmd:blog: " + providers_.command[0] + " exited 1: …";
    ASSERT_TRUE(why.starts_with(head)) << why;
    EXPECT_TRUE(why.ends_with("0 / the reason")) << why;
    EXPECT_LE(why.size() - head.size(), 400u) << why;
    EXPECT_GE(why.size() - head.size(), 390u) << why;
    EXPECT_NE(why.find(" / line 29: 000"), std::string::npos) << why;
    EXPECT_EQ(why.find("line 28:"), std::string::npos) << why;
}

TEST_F(DeployKeys, CommandFailureAfterMuchStderrShowsItsEnd) {
    // Far more than the 4 KiB kept, in one line, then the reason.
    providers_.command = {script("store", "head -c 300000 /dev/zero | tr '\\0' x >&2\n"
                                          "printf '\\nstore: vault is sealed\\n' >&2\nexit 2\n")};
    const std::string why = key_error("cmd:blog");
    EXPECT_TRUE(why.ends_with("xxx / store: vault is sealed")) << why;
    EXPECT_NE(why.find(" exited 2: …x"), std::string::npos) << why;
}

TEST_F(DeployKeys, CommandTimeoutKillsItsProcessGroup) {
    const stdfs::path pids = tmp_ / "pids";
    providers_.command = {script("store", "echo $$ > '" + pids.string() + ".tmp'\n"
                                          "sleep 30 &\n"
                                          "echo $! >> '" + pids.string() + ".tmp'\n"
                                          "mv '" + pids.string() + ".tmp' '" + pids.string() + "'\n"
                                          "wait\n")};
    providers_.command_timeout = std::chrono::milliseconds(300);
    const auto start = std::chrono::steady_clock::now();
    const std::string why = key_error("cmd:blog");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    EXPECT_NE(why.find("timed out after 300ms"), std::string::npos) << why;

    const std::vector<std::string> lines = split_lines(slurp(pids));
    ASSERT_EQ(lines.size(), 2u) << slurp(pids);
    for (const auto& line : lines) {
        const pid_t pid = std::stoi(line);
        EXPECT_TRUE(eventually([&] { return !process_alive(pid); }, 3s)) << "pid " << pid << " survived";
    }
}

TEST_F(DeployKeys, CommandThatClosesItsOutputButKeepsRunningTimesOut) {
    const stdfs::path pid_file = tmp_ / "pid";
    providers_.command = {script("store", "echo $$ > '" + pid_file.string() + "'\nexec >&- 2>&-\nsleep 30\n")};
    providers_.command_timeout = std::chrono::milliseconds(300);
    const auto start = std::chrono::steady_clock::now();
    const std::string why = key_error("cmd:blog");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    EXPECT_NE(why.find("timed out"), std::string::npos) << why;
    const pid_t pid = std::stoi(slurp(pid_file));
    EXPECT_EQ(kill(pid, 0), -1);
    EXPECT_EQ(errno, ESRCH);
}

TEST_F(DeployKeys, CommandPrintingNothingIsRefused) {
    providers_.command = {script("store", "exit 0\n")};
    const std::string why = key_error("cmd:blog");
    EXPECT_NE(why.find("printed nothing"), std::string::npos) << why;
}

TEST_F(DeployKeys, CommandPrintingSomethingElseIsRefusedWithoutShowingIt) {
    providers_.command = {script("store", "echo 'correct-horse-battery-staple'\n")};
    const std::string why = key_error("cmd:blog");
    EXPECT_NE(why.find("does not look like a private key"), std::string::npos) << why;
    EXPECT_EQ(why.find("correct-horse"), std::string::npos) << why;
}

TEST_F(DeployKeys, CommandThatCannotRunIsReported) {
    providers_.command = {(tmp_ / "no-such-store").string()};
    const std::string why = key_error("cmd:blog");
    EXPECT_NE(why.find("cannot run " + (tmp_ / "no-such-store").string()), std::string::npos) << why;
}

TEST_F(DeployKeys, CommandWithoutCommandConfigured) {
    const std::string why = key_error("cmd:blog");
    EXPECT_NE(why.find("no key command is configured ([keys] command)"), std::string::npos) << why;
}

// ---------------------------------------------------------------------------------------------
// SecretBuffer

TEST(SecretBuffer, HoldsExactlyItsBytes) {
    const std::string long_text(5000, 'k');
    EXPECT_EQ(std::string(SecretBuffer(long_text).c_str()), long_text);
    const SecretBuffer short_one(std::string("abc"));
    EXPECT_EQ(short_one.size(), 3u);
    EXPECT_STREQ(short_one.c_str(), "abc");
}

TEST(SecretBuffer, MoveConstructionEmptiesTheSource) {
    for (const std::string& text : {std::string("short"), std::string(1000, 'x')}) {
        SecretBuffer a(text);
        SecretBuffer b(std::move(a));
        // Reading a moved-from buffer is the point: it must be empty, not hold the key.
        EXPECT_TRUE(a.empty());
        EXPECT_EQ(a.size(), 0u);
        EXPECT_STREQ(a.c_str(), "");
        EXPECT_EQ(std::string(b.c_str(), b.size()), text);
    }
}

TEST(SecretBuffer, MoveAssignmentReplacesAndEmptiesTheSource) {
    for (const std::string& text : {std::string("short"), std::string(1000, 'x')}) {
        SecretBuffer a(text);
        SecretBuffer b(std::string(2000, 'o'));
        b = std::move(a);
        EXPECT_TRUE(a.empty());
        EXPECT_STREQ(a.c_str(), "");
        EXPECT_EQ(std::string(b.c_str(), b.size()), text);
    }
}

}  // namespace
}  // namespace sitesfs::it
