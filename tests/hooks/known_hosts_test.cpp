// KnownHosts against files in a temp dir and fingerprints computed by OpenSSH's own tools, and
// the SshServer test fixture against the real git and ssh CLIs.
#include "hooks/known_hosts.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <array>
#include <cstdlib>
#include <thread>

#include "tests/integration/mount_fixture.hpp"
#include "tests/support/git.hpp"
#include "tests/support/sshd.hpp"

namespace sitesfs::it {
namespace {

using hooks::HostKeyError;
using hooks::HostKeyPolicy;
using hooks::KnownHosts;
using Digest = std::array<unsigned char, 32>;

Digest digest_of(unsigned char seed) {
    Digest d;
    for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<unsigned char>(seed * 31 + i * 7);
    return d;
}

// The SHA-256 of the key blob in an OpenSSH public key line ("ssh-ed25519 BASE64 comment"):
// what libgit2 hands the certificate callback, computed here without OpenSSH's help.
::testing::AssertionResult blob_digest(const std::string& pub_line, Digest* out) {
    const Run h =
        run({"bash", "-c", "printf '%s\\n' \"$1\" | awk '{print $2}' | base64 -d | sha256sum", "bash", pub_line});
    if (h.code != 0 || h.out.size() < 64)
        return ::testing::AssertionFailure() << "sha256 of the key blob: " << describe(h);
    for (size_t i = 0; i < out->size(); ++i)
        (*out)[i] = static_cast<unsigned char>(std::stoi(h.out.substr(2 * i, 2), nullptr, 16));
    return ::testing::AssertionSuccess();
}

// The second field of `ssh-keygen -l` output: "256 SHA256:... comment (ED25519)".
std::string keygen_fingerprint(const std::string& listing) {
    const auto start = listing.find(' ');
    if (start == std::string::npos) return "<no fingerprint in: " + listing + ">";
    return listing.substr(start + 1, listing.find(' ', start + 1) - start - 1);
}

template <typename F>
std::string host_key_error(F&& f) {
    try {
        f();
    } catch (const HostKeyError& e) {
        return e.what();
    }
    return "<no error>";
}

class KnownHostsTest : public ::testing::Test {
protected:
    // ::testing::Test has a member function Run(); here the name means the process result.
    using Run = it::Run;

    void SetUp() override {
        char tmpl[] = "/tmp/sitesfs-hostkey-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        tmp_ = tmpl;
        file_ = tmp_ / "known_hosts";
    }
    void TearDown() override {
        std::error_code ec;
        stdfs::remove_all(tmp_, ec);
    }

    stdfs::path tmp_;
    stdfs::path file_;
};

TEST_F(KnownHostsTest, FingerprintIsWhatSshKeygenPrints) {
    for (const auto& type : {"ed25519", "ecdsa", "rsa"}) {
        const auto key = tmp_ / (std::string("key_") + type);
        const Run gen = run({"ssh-keygen", "-q", "-t", type, "-N", "", "-f", key.string()});
        ASSERT_EQ(gen.code, 0) << describe(gen);
        Digest d;
        ASSERT_TRUE(blob_digest(slurp(key.string() + ".pub"), &d));
        const Run listed = run({"ssh-keygen", "-l", "-f", key.string() + ".pub"});
        ASSERT_EQ(listed.code, 0) << describe(listed);
        EXPECT_EQ(KnownHosts::fingerprint(d.data()), keygen_fingerprint(listed.out)) << type;
    }
}

TEST_F(KnownHostsTest, FingerprintHasNoPaddingAndCanonicalBits) {
    Digest zeros{}, ones;
    ones.fill(0xff);
    EXPECT_EQ(KnownHosts::fingerprint(zeros.data()), "SHA256:" + std::string(43, 'A'));
    // The last two bytes fill three characters; their unused low bits are zero, hence '8'.
    EXPECT_EQ(KnownHosts::fingerprint(ones.data()), "SHA256:" + std::string(42, '/') + "8");
}

TEST_F(KnownHostsTest, AcceptNewRecordsAnUnknownHostAndAcceptsItAgain) {
    KnownHosts hosts(file_, HostKeyPolicy::AcceptNew);
    const Digest d = digest_of(1);
    const std::string fp = KnownHosts::fingerprint(d.data());
    ASSERT_FALSE(stdfs::exists(file_));
    ASSERT_NO_THROW(hosts.check("git.example.com", 22, d.data()));
    struct stat st;
    ASSERT_EQ(::stat(file_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(slurp(file_), "git.example.com:22 " + fp + "\n");
    EXPECT_NO_THROW(hosts.check("git.example.com", 22, d.data()));
    EXPECT_EQ(slurp(file_), "git.example.com:22 " + fp + "\n");
    // No temp file left next to it.
    EXPECT_EQ(std::distance(stdfs::directory_iterator(tmp_), stdfs::directory_iterator()), 1);
}

TEST_F(KnownHostsTest, AChangedKeyIsRefusedWithBothFingerprintsAndTheFile) {
    KnownHosts hosts(file_, HostKeyPolicy::AcceptNew);
    const Digest pinned = digest_of(1), offered = digest_of(2);
    ASSERT_NO_THROW(hosts.check("git.example.com", 22, pinned.data()));
    const std::string before = slurp(file_);
    const std::string err = host_key_error([&] { hosts.check("git.example.com", 22, offered.data()); });
    EXPECT_NE(err.find("git.example.com:22"), std::string::npos) << err;
    EXPECT_NE(err.find("pinned " + KnownHosts::fingerprint(pinned.data())), std::string::npos) << err;
    EXPECT_NE(err.find("offered " + KnownHosts::fingerprint(offered.data())), std::string::npos) << err;
    EXPECT_NE(err.find(file_.string()), std::string::npos) << err;
    EXPECT_EQ(slurp(file_), before);
}

TEST_F(KnownHostsTest, TheSameHostOnAnotherPortIsSeparate) {
    KnownHosts hosts(file_, HostKeyPolicy::AcceptNew);
    const Digest a = digest_of(1), b = digest_of(2);
    ASSERT_NO_THROW(hosts.check("git.example.com", 22, a.data()));
    ASSERT_NO_THROW(hosts.check("git.example.com", 2222, b.data()));
    EXPECT_EQ(slurp(file_), "git.example.com:22 " + KnownHosts::fingerprint(a.data()) + "\ngit.example.com:2222 " +
                                KnownHosts::fingerprint(b.data()) + "\n");
    EXPECT_NE(host_key_error([&] { hosts.check("git.example.com", 2222, a.data()); }), "<no error>");
    EXPECT_NE(host_key_error([&] { hosts.check("git.example.com", 22, b.data()); }), "<no error>");
}

TEST_F(KnownHostsTest, StrictRefusesAnUnpinnedHostAndNamesItsFingerprint) {
    KnownHosts hosts(file_, HostKeyPolicy::Strict);
    const Digest d = digest_of(3);
    const std::string err = host_key_error([&] { hosts.check("git.example.com", 22, d.data()); });
    EXPECT_NE(err.find("strict"), std::string::npos) << err;
    EXPECT_NE(err.find("git.example.com:22"), std::string::npos) << err;
    EXPECT_NE(err.find("\"git.example.com:22\" = \"" + KnownHosts::fingerprint(d.data()) + "\" in [ssh.pins]"),
              std::string::npos)
        << err;
    EXPECT_FALSE(stdfs::exists(file_));
}

TEST_F(KnownHostsTest, StrictAcceptsAPinFromTheConfigAndWritesNothing) {
    const Digest d = digest_of(4), other = digest_of(5);
    KnownHosts hosts(file_, HostKeyPolicy::Strict, {{"git.example.com:22", KnownHosts::fingerprint(d.data())}});
    EXPECT_NO_THROW(hosts.check("git.example.com", 22, d.data()));
    const std::string err = host_key_error([&] { hosts.check("git.example.com", 22, other.data()); });
    EXPECT_NE(err.find("offered " + KnownHosts::fingerprint(other.data())), std::string::npos) << err;
    EXPECT_NE(err.find("[ssh.pins]"), std::string::npos) << err;
    EXPECT_FALSE(stdfs::exists(file_));
}

// What accept-new recorded was trusted on first use, which strict mode is there to rule out.
TEST_F(KnownHostsTest, StrictDoesNotTrustWhatAcceptNewRecorded) {
    const Digest d = digest_of(4);
    const std::string text = "git.example.com:22 " + KnownHosts::fingerprint(d.data()) + "\n";
    spit(file_, text);
    KnownHosts hosts(file_, HostKeyPolicy::Strict);
    const std::string err = host_key_error([&] { hosts.check("git.example.com", 22, d.data()); });
    EXPECT_NE(err.find("strict"), std::string::npos) << err;
    EXPECT_EQ(slurp(file_), text);
}

TEST_F(KnownHostsTest, PinsWinOverTheFile) {
    const Digest in_file = digest_of(6), in_config = digest_of(7);
    const std::string text = "# recorded earlier\ngit.example.com:22 " + KnownHosts::fingerprint(in_file.data()) + "\n";
    spit(file_, text);
    KnownHosts hosts(file_, HostKeyPolicy::AcceptNew,
                     {{"git.example.com:22", KnownHosts::fingerprint(in_config.data())}});
    EXPECT_NO_THROW(hosts.check("git.example.com", 22, in_config.data()));
    EXPECT_NE(host_key_error([&] { hosts.check("git.example.com", 22, in_file.data()); }), "<no error>");
    EXPECT_EQ(slurp(file_), text);
}

TEST_F(KnownHostsTest, ACorruptLineIsAnErrorNamingFileAndLine) {
    const std::string good = "git.example.com:22 " + KnownHosts::fingerprint(digest_of(8).data());
    const std::string fp = KnownHosts::fingerprint(digest_of(9).data());
    const std::vector<std::pair<std::string, int>> cases = {
        {"# a comment\n\n" + good + "\nnot a line\n", 4},
        {good + "\ngit.example.com " + fp + "\n", 2},                      // no port
        {good + "\ngit.example.com:0 " + fp + "\n", 2},                    // port 0
        {good + "\ngit.example.com:65536 " + fp + "\n", 2},                // port too large
        {"git.example.com:22 SHA256:abc\n", 1},                            // digest too short
        {"git.example.com:22 " + fp.substr(0, 49) + "9\n", 1},             // non-canonical last character
        {"git.example.com:22 " + fp + "=\n", 1},                           // padding
        {"git.example.com:22 " + fp + " extra\n", 1},                      // three fields
        {good + "\nother.example.com:22 " + fp + "\n" + "git.example.com:22 " + fp + "\n", 3},  // two keys
    };
    for (const auto& [text, line] : cases) {
        spit(file_, text);
        KnownHosts hosts(file_, HostKeyPolicy::AcceptNew);
        const std::string err = host_key_error([&] { hosts.check("new.example.com", 22, digest_of(10).data()); });
        EXPECT_NE(err.find(file_.string() + ":" + std::to_string(line) + ":"), std::string::npos)
            << text << "\n" << err;
        EXPECT_EQ(slurp(file_), text) << "a corrupt file must not be rewritten";
    }
}

TEST_F(KnownHostsTest, HostsAreCaseInsensitive) {
    const Digest d = digest_of(11), other = digest_of(12);
    KnownHosts hosts(file_, HostKeyPolicy::AcceptNew);
    ASSERT_NO_THROW(hosts.check("Git.Example.COM", 22, d.data()));
    EXPECT_EQ(slurp(file_), "git.example.com:22 " + KnownHosts::fingerprint(d.data()) + "\n");
    EXPECT_NO_THROW(hosts.check("git.example.com", 22, d.data()));
    EXPECT_NE(host_key_error([&] { hosts.check("GIT.example.com", 22, other.data()); }), "<no error>");

    // A line written by hand in upper case.
    const std::string text = "OTHER.Example.com:22 " + KnownHosts::fingerprint(d.data()) + "\n";
    spit(file_, text);
    EXPECT_NO_THROW(hosts.check("other.example.com", 22, d.data()));
    EXPECT_NE(host_key_error([&] { hosts.check("other.example.com", 22, other.data()); }), "<no error>");
    EXPECT_EQ(slurp(file_), text);
    KnownHosts pinned(file_, HostKeyPolicy::Strict, {{"PINNED.example.com:22", KnownHosts::fingerprint(d.data())}});
    EXPECT_NO_THROW(pinned.check("pinned.EXAMPLE.com", 22, d.data()));
}

TEST_F(KnownHostsTest, RecordingKeepsTheRestOfTheFile) {
    const Digest a = digest_of(13), b = digest_of(14);
    // Written by hand: a comment and no newline at the end.
    const std::string text = "# pinned by the operator\nold.example.com:22 " + KnownHosts::fingerprint(a.data());
    spit(file_, text);
    KnownHosts hosts(file_, HostKeyPolicy::AcceptNew);
    ASSERT_NO_THROW(hosts.check("new.example.com", 22, b.data()));
    EXPECT_EQ(slurp(file_), text + "\nnew.example.com:22 " + KnownHosts::fingerprint(b.data()) + "\n");
    EXPECT_NO_THROW(hosts.check("old.example.com", 22, a.data()));
}

TEST_F(KnownHostsTest, WhatAnotherInstanceRecordedIsSeen) {
    const Digest first = digest_of(15), second = digest_of(16);
    KnownHosts one(file_, HostKeyPolicy::AcceptNew), two(file_, HostKeyPolicy::AcceptNew);
    ASSERT_NO_THROW(two.check("other.example.com", 22, second.data()));
    ASSERT_NO_THROW(one.check("git.example.com", 22, first.data()));
    const std::string err = host_key_error([&] { two.check("git.example.com", 22, second.data()); });
    EXPECT_NE(err.find("pinned " + KnownHosts::fingerprint(first.data())), std::string::npos) << err;
    // An operator removing a line is seen too: the host is recorded afresh.
    spit(file_, "");
    EXPECT_NO_THROW(two.check("git.example.com", 22, second.data()));
}

TEST_F(KnownHostsTest, ConcurrentRecordsAreAllKept) {
    KnownHosts hosts(file_, HostKeyPolicy::AcceptNew);
    constexpr int kThreads = 8;
    std::vector<std::thread> threads;
    std::vector<std::string> errors(kThreads);
    for (int i = 0; i < kThreads; ++i)
        threads.emplace_back([&, i] {
            const Digest d = digest_of(static_cast<unsigned char>(20 + i));
            errors[i] = host_key_error([&] { hosts.check("host" + std::to_string(i) + ".example.com", 22, d.data()); });
        });
    for (auto& t : threads) t.join();
    const std::string text = slurp(file_);
    for (int i = 0; i < kThreads; ++i) {
        EXPECT_EQ(errors[i], "<no error>");
        const std::string line = "host" + std::to_string(i) + ".example.com:22 " +
                                 KnownHosts::fingerprint(digest_of(static_cast<unsigned char>(20 + i)).data()) + "\n";
        EXPECT_NE(text.find(line), std::string::npos) << text;
    }
    EXPECT_EQ(split_lines(text).size(), static_cast<size_t>(kThreads));
}

TEST_F(KnownHostsTest, BadPinsAndHostsAreRefused) {
    const std::string fp = KnownHosts::fingerprint(digest_of(1).data());
    EXPECT_THROW(KnownHosts(file_, HostKeyPolicy::Strict, {{"git.example.com", fp}}), HostKeyError);
    EXPECT_THROW(KnownHosts(file_, HostKeyPolicy::Strict, {{"git.example.com:22", "SHA256:short"}}), HostKeyError);
    EXPECT_THROW(KnownHosts(file_, HostKeyPolicy::Strict, {{"git.example.com:22", fp}, {"GIT.example.com:22",
                                                             KnownHosts::fingerprint(digest_of(2).data())}}),
                 HostKeyError);
    KnownHosts hosts(file_, HostKeyPolicy::AcceptNew);
    EXPECT_NE(host_key_error([&] { hosts.check("evil.example.com:22 SHA256:x\nhost", 22, digest_of(1).data()); }),
              "<no error>");
    EXPECT_NE(host_key_error([&] { hosts.check("git.example.com", 0, digest_of(1).data()); }), "<no error>");
    EXPECT_FALSE(stdfs::exists(file_));
}

// ---------------------------------------------------------------------------------------------
// The SshServer fixture

class SshServerTest : public KnownHostsTest {
protected:
    // `git ls-remote URL` through OpenSSH with only this key and no host key checking.
    Run ls_remote(const std::string& url, const stdfs::path& key) {
        RunOptions options;
        options.timeout = 30s;
        options.env = {"GIT_SSH_COMMAND=ssh -F /dev/null -i " + key.string() +
                           " -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no"
                           " -o UserKnownHostsFile=/dev/null",
                       "GIT_CONFIG_NOSYSTEM=1", "HOME=" + (tmp_ / "home").string(), "GIT_TERMINAL_PROMPT=0"};
        return run({"git", "ls-remote", url}, options);
    }

    // What ssh-keyscan reports for the server: `ssh-keygen -l` of it, and its public key line.
    Run keyscan(int port) {
        return bash("set -o pipefail; ssh-keyscan -t ed25519 -p " + std::to_string(port) +
                    " 127.0.0.1 2>/dev/null | tee " + (tmp_ / "scanned").string() + " | ssh-keygen -lf -");
    }
};

TEST_F(SshServerTest, ServesTheRepoToAddedKeysOnly) {
    TestRepo repo(tmp_ / "repo");
    const std::string first = repo.commit({{"index.html", "<h1>hi</h1>\n"}});
    ASSERT_EQ(first.size(), 40u);

    SshServer server(tmp_ / "sshd");
    server.serve_repo(repo.bare());
    const std::string key_text = server.add_client_key("deployer");
    ASSERT_NE(key_text.find("PRIVATE KEY"), std::string::npos);
    std::string why;
    ASSERT_TRUE(server.start(&why)) << why;
    EXPECT_EQ(server.url(), "ssh://" + server.user() + "@127.0.0.1:" + std::to_string(server.port()) +
                                repo.bare().string());

    const auto key_file = tmp_ / "id_deployer";
    spit(key_file, key_text);
    stdfs::permissions(key_file, stdfs::perms::owner_read | stdfs::perms::owner_write);
    Run r = ls_remote(server.url(), key_file);
    EXPECT_EQ(r.code, 0) << describe(r) << "\nsshd log:\n" << slurp(server.log_file());
    EXPECT_NE(r.out.find(first + "\trefs/heads/main"), std::string::npos) << r.out;

    // A commit pushed (as root) after serve_repo() is readable by the git user too.
    const std::string second = repo.commit({{"index.html", "<h1>hello</h1>\n"}});
    r = ls_remote(server.url(), key_file);
    EXPECT_EQ(r.code, 0) << describe(r);
    EXPECT_NE(r.out.find(second + "\trefs/heads/main"), std::string::npos) << r.out;

    const Run gen = run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (tmp_ / "stranger").string()});
    ASSERT_EQ(gen.code, 0) << describe(gen);
    r = ls_remote(server.url(), tmp_ / "stranger");
    EXPECT_NE(r.code, 0) << describe(r);
    EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");

    // `restrict` and the forced command: asking for a shell command runs git-upload-pack instead.
    r = run({"ssh", "-F", "/dev/null", "-i", key_file.string(), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-p",
             std::to_string(server.port()), server.user() + "@127.0.0.1", "id"},
            {.timeout = 30s});
    EXPECT_EQ(r.out.find("uid="), std::string::npos) << describe(r);
    EXPECT_NE(r.out.find("refs/heads/main"), std::string::npos) << describe(r);
}

TEST_F(SshServerTest, HostKeyFingerprintIsWhatTheServerOffersAndRotates) {
    SshServer server(tmp_ / "sshd");
    std::string why;
    ASSERT_TRUE(server.start(&why)) << why;
    const std::string before = server.host_key_fingerprint();
    ASSERT_TRUE(before.starts_with("SHA256:")) << before;
    Run r = keyscan(server.port());
    ASSERT_EQ(r.code, 0) << describe(r);
    EXPECT_EQ(keygen_fingerprint(r.out), before) << r.out;
    // What KnownHosts computes from the digest libgit2 would hand it.
    // ssh-keyscan prints "[127.0.0.1]:PORT ssh-ed25519 BASE64": the host field goes first.
    const std::string scanned = slurp(tmp_ / "scanned");
    ASSERT_EQ(split_lines(scanned).size(), 1u) << scanned;
    Digest d;
    ASSERT_TRUE(blob_digest(scanned.substr(scanned.find(' ') + 1), &d));
    EXPECT_EQ(KnownHosts::fingerprint(d.data()), before);

    server.rotate_host_key();
    const std::string after = server.host_key_fingerprint();
    EXPECT_NE(after, before);
    server.stop();
    ASSERT_TRUE(server.start(&why)) << why;
    r = keyscan(server.port());
    ASSERT_EQ(r.code, 0) << describe(r);
    EXPECT_EQ(keygen_fingerprint(r.out), after) << r.out;
}

}  // namespace
}  // namespace sitesfs::it
