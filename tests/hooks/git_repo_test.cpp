// GitRepo against real repositories made with the git CLI: file:// remotes for most cases, and a
// local HTTPS server running git-http-backend where only the smart protocol shows the behaviour
// (libgit2's file:// transport sends every object the remote has, whatever was asked for).
#include "hooks/git_repo.hpp"
#include "hooks/submodules.hpp"

#include <git2.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <future>
#include <optional>
#include <set>
#include <unordered_map>

#include "tests/integration/mount_fixture.hpp"
#include "tests/support/git.hpp"
#include "tests/support/sshd.hpp"
#include "tests/support/stall_server.hpp"

namespace sitesfs::it {
namespace {

using hooks::GitError;
using hooks::GitRepo;
using hooks::NoSuchCommitError;
using hooks::RemoteOptions;
using hooks::TreeLimits;
using hooks::TreeReport;

RemoteOptions local_ok() {
    RemoteOptions o;
    o.policy.allow_local_repos = true;
    return o;
}

// The message of the GitError (or, writing a tree, ReleaseError) `f` threw, or "<no error>".
template <typename F>
std::string git_error(F&& f) {
    try {
        f();
    } catch (const GitError& e) {
        return e.what();
    } catch (const hooks::ReleaseError& e) {
        return e.what();
    }
    return "<no error>";
}

bool has_prefix(const std::vector<std::string>& v, const std::string& prefix) {
    for (const auto& s : v)
        if (s.starts_with(prefix)) return true;
    return false;
}

unsigned mode_of(const stdfs::path& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 ? st.st_mode & 07777 : 0xffffffff;
}

// Sets an environment variable for one scope and puts it back as it was, also after a failed assertion.
class EnvGuard {
public:
    EnvGuard(const char* name, const std::string& value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        ::setenv(name, value.c_str(), 1);
    }
    EnvGuard(const EnvGuard&) = delete;
    EnvGuard& operator=(const EnvGuard&) = delete;
    ~EnvGuard() {
        if (old_) ::setenv(name_, old_->c_str(), 1);
        else ::unsetenv(name_);
    }

private:
    const char* name_;
    std::optional<std::string> old_;
};

// The home directory libgit2 takes as the host's: libgit2 fixes its config search paths from
// HOME when it starts, so HOME points here while init_git() runs and a test can later put a
// ~/.gitconfig here that libgit2 would read if init_git() had not switched it off.
stdfs::path g_host_home;

class InitGit : public ::testing::Environment {
public:
    void SetUp() override {
        char tmpl[] = "/tmp/sitesfs-git-home-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
        g_host_home = tmpl;
        const EnvGuard home("HOME", g_host_home.string());
        const EnvGuard xdg("XDG_CONFIG_HOME", (g_host_home / ".config").string());
        hooks::init_git();
    }
    void TearDown() override {
        std::error_code ec;
        stdfs::remove_all(g_host_home, ec);
    }
};
[[maybe_unused]] const auto* const kInitGit = ::testing::AddGlobalTestEnvironment(new InitGit);

// Serves every repository under `root` over HTTPS with git-http-backend (protocol v0, as libgit2
// 1.5 speaks it). Writes its port to the port file once it listens. With a 5th argument N >= 0, the
// answer to every POST (the pack) stops after N bytes of its body and the connection stays open.
constexpr const char* kHttpsServer = R"PY(
import http.server, os, ssl, subprocess, sys, time
root, cert, key, portfile = sys.argv[1:5]
stall_after = int(sys.argv[5]) if len(sys.argv) > 5 else -1
class Handler(http.server.BaseHTTPRequestHandler):
    def handle_git(self):
        path, _, query = self.path.partition('?')
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        env = {'GIT_PROJECT_ROOT': root, 'GIT_HTTP_EXPORT_ALL': '1', 'PATH_INFO': path, 'QUERY_STRING': query,
               'REQUEST_METHOD': self.command, 'CONTENT_TYPE': self.headers.get('Content-Type', ''),
               'CONTENT_LENGTH': str(len(body)), 'GIT_CONFIG_NOSYSTEM': '1', 'HOME': root,
               'PATH': os.environ['PATH']}
        out = subprocess.run(['git', 'http-backend'], input=body, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b'\r\n\r\n')
        status, headers = 200, []
        for line in head.split(b'\r\n'):
            name, _, value = line.decode().partition(':')
            if name.lower() == 'status': status = int(value.split()[0])
            elif name: headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers: self.send_header(name, value)
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        if self.command == 'POST' and stall_after >= 0:
            self.wfile.write(payload[:stall_after])
            self.wfile.flush()
            time.sleep(3600)
        self.wfile.write(payload)
    do_GET = do_POST = handle_git
    def log_message(self, *args): pass
server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
with open(portfile + '.tmp', 'w') as f: f.write(str(server.server_address[1]))
os.rename(portfile + '.tmp', portfile)
server.serve_forever()
)PY";

class GitRepoTest : public ::testing::Test {
protected:
    // ::testing::Test has a member function Run(); here the name means a process result.
    using Run = it::Run;

    void SetUp() override {
        char tmpl[] = "/tmp/sitesfs-git-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
        tmp_ = tmpl;
    }

    void TearDown() override {
        if (server_ > 0) terminate_child(server_);
        std::error_code ec;
        stdfs::remove_all(tmp_, ec);
    }

    const stdfs::path& tmp() const { return tmp_; }
    stdfs::path local() const { return tmp_ / "local.git"; }
    stdfs::path release(const std::string& name = "release") const { return tmp_ / name; }

    // Runs git on the bare repository sitesfs writes (to look at it from outside).
    std::string inspect(const std::vector<std::string>& args) {
        std::vector<std::string> argv{"git", "--git-dir=" + local().string()};
        argv.insert(argv.end(), args.begin(), args.end());
        RunOptions o;
        o.env = {"HOME=" + tmp_.string(), "GIT_CONFIG_NOSYSTEM=1"};
        const Run r = run(argv, o);
        EXPECT_EQ(r.code, 0) << describe(r);
        return r.out;
    }

    // A commit on `branch` of `repo` whose tree is given in `git mktree` lines, built with plumbing
    // because porcelain refuses paths such as .git/config.
    std::string push_tree(TestRepo& repo, const std::string& mktree_lines, const std::string& branch) {
        return push_script_tree(repo, "printf '" + mktree_lines + "' | git mktree", branch);
    }

    // The same for the tree whose hash a bash script prints.
    std::string push_script_tree(TestRepo& repo, const std::string& script, const std::string& branch) {
        const Run tree = bash(script, in_src());
        EXPECT_EQ(tree.code, 0) << describe(tree);
        const std::string sha = repo.git({"commit-tree", tree.out.substr(0, 40), "-m", "crafted"}).substr(0, 40);
        repo.git({"push", "-q", "origin", sha + ":refs/heads/" + branch});
        return sha;
    }

    // For git plumbing in the work tree of TestRepo(tmp() / "src").
    RunOptions in_src() const {
        RunOptions o;
        o.cwd = tmp_ / "src" / "work";
        o.env = {"HOME=" + (tmp_ / "src" / "home").string(), "GIT_CONFIG_NOSYSTEM=1"};
        return o;
    }

    std::string blob(TestRepo& repo, const std::string& content) {
        const stdfs::path file = tmp_ / "blob.tmp";
        spit(file, content);
        return repo.git({"hash-object", "-w", file.string()}).substr(0, 40);
    }

    // Serves tmp()/src over HTTPS and makes libgit2 trust its certificate; the repository URL.
    // `stall_post_after` >= 0: packs stop after that many bytes (see kHttpsServer).
    std::string serve_https(int stall_post_after = -1) {
        const stdfs::path cert = tmp_ / "cert.pem", key = tmp_ / "key.pem", port = tmp_ / "port";
        const Run made = run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                              "-nodes", "-keyout", key.string(), "-out", cert.string(), "-days", "2", "-subj",
                              "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"});
        if (made.code != 0) {
            ADD_FAILURE() << "openssl: " << describe(made);
            return "";
        }
        spit(tmp_ / "server.py", kHttpsServer);
        server_ = spawn_logged({"/usr/bin/python3", (tmp_ / "server.py").string(), (tmp_ / "src").string(),
                                cert.string(), key.string(), port.string(), std::to_string(stall_post_after)},
                               tmp_ / "server.log");
        if (!eventually([&] { return stdfs::exists(port); }, 20s)) {
            ADD_FAILURE() << "the HTTPS server did not start: " << slurp(tmp_ / "server.log");
            return "";
        }
        EXPECT_EQ(git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, cert.c_str(), nullptr), 0);
        return "https://localhost:" + slurp(port) + "/origin.git";
    }

private:
    stdfs::path tmp_;
    pid_t server_ = -1;
};

// ---- remote_head ----

TEST_F(GitRepoTest, RemoteHeadOfBranch) {
    TestRepo src(tmp() / "src");
    const std::string main1 = src.commit({{"index.html", "main"}});
    const std::string other = src.commit({{"index.html", "other"}}, "other");
    GitRepo repo(local());
    EXPECT_EQ(repo.remote_head(src.url(), "main", local_ok()), main1);
    EXPECT_EQ(repo.remote_head(src.url(), "other", local_ok()), other);
    // Only asked: nothing was downloaded.
    EXPECT_EQ(repo.find_commit(main1), "");
}

TEST_F(GitRepoTest, RemoteHeadOfDefaultBranch) {
    // "aaa" sorts first and "master" is absent, so only the remote's HEAD can name "trunk".
    TestRepo src(tmp() / "src", "trunk");
    const std::string trunk = src.commit({{"index.html", "trunk"}}, "trunk");
    src.commit({{"index.html", "aaa"}}, "aaa");
    GitRepo repo(local());
    EXPECT_EQ(repo.remote_head(src.url(), "", local_ok()), trunk);
    EXPECT_EQ(repo.fetch_branch(src.url(), "", local_ok()), trunk);
}

TEST_F(GitRepoTest, MissingBranchIsNamed) {
    TestRepo src(tmp() / "src");
    src.commit({{"index.html", "main"}});
    GitRepo repo(local());
    const std::string expected = "branch 'nope' not found on " + src.url();
    EXPECT_EQ(git_error([&] { repo.remote_head(src.url(), "nope", local_ok()); }), expected);
    EXPECT_EQ(git_error([&] { repo.fetch_branch(src.url(), "nope", local_ok()); }), expected);
}

TEST_F(GitRepoTest, UnreachableRemoteSaysWhatFailed) {
    GitRepo repo(local());
    const std::string url = "file://" + (tmp() / "missing.git").string();
    const std::string error = git_error([&] { repo.remote_head(url, "main", local_ok()); });
    EXPECT_TRUE(error.starts_with("ls-remote " + url + ": ")) << error;
    EXPECT_NE(error.find("missing.git"), std::string::npos) << error;
    // libgit2 alone would say "unsupported URL protocol" for a plain path that does not exist.
    const std::string path = (tmp() / "missing.git").string();
    EXPECT_EQ(git_error([&] { repo.remote_head(path, "main", local_ok()); }),
              "ls-remote " + path + ": there is no repository directory at " + path);
}

// ---- fetch_branch ----

TEST_F(GitRepoTest, FetchBranchWritesOnlyItsPrivateRef) {
    TestRepo src(tmp() / "src");
    const std::string tip = src.commit({{"index.html", "main"}});
    src.commit({{"index.html", "other"}}, "other");
    src.git({"tag", "-a", "v1", "-m", "release"});
    src.git({"push", "-q", "origin", "v1"});
    GitRepo repo(local());
    EXPECT_EQ(repo.fetch_branch(src.url(), "main", local_ok()), tip);
    EXPECT_EQ(repo.find_commit(tip), tip);
    EXPECT_EQ(inspect({"for-each-ref", "--format=%(objectname) %(refname)"}), tip + " refs/sitesfs/followed\n");
    // libgit2 1.5 truncates FETCH_HEAD on every fetch, but with update_fetchhead off writes nothing in.
    EXPECT_EQ(slurp(local() / "FETCH_HEAD"), "");
    EXPECT_EQ(inspect({"config", "--bool", "core.symlinks"}), "false\n");
}

TEST_F(GitRepoTest, FetchBranchOverHttpsFetchesNothingElse) {
    TestRepo src(tmp() / "src");
    const std::string tip = src.commit({{"index.html", "main"}});
    const std::string other = src.commit({{"index.html", "other"}}, "other");
    const std::string tagged = src.commit({{"index.html", "tagged"}}, "tagged");
    src.git({"tag", "-a", "v1", "-m", "release"});
    src.git({"push", "-q", "origin", "v1"});
    src.git({"push", "-q", "origin", ":tagged"});  // now reachable only through the tag
    const std::string tag = src.git({"rev-parse", "v1"}).substr(0, 40);
    const std::string url = serve_https();
    ASSERT_FALSE(url.empty());

    GitRepo repo(local());
    EXPECT_EQ(repo.remote_head(url, "main", {}), tip);
    EXPECT_EQ(repo.fetch_branch(url, "main", {}), tip);
    EXPECT_EQ(repo.find_commit(tip), tip);
    EXPECT_EQ(repo.find_commit(other), "");
    EXPECT_EQ(repo.find_commit(tagged), "");
    EXPECT_EQ(repo.find_commit(tag), "");  // would throw "names a tag" if the tag object were there
}

TEST_F(GitRepoTest, LaterCommitIsSeen) {
    TestRepo src(tmp() / "src");
    const std::string first = src.commit({{"index.html", "one"}});
    GitRepo repo(local());
    EXPECT_EQ(repo.remote_head(src.url(), "main", local_ok()), first);
    EXPECT_EQ(repo.fetch_branch(src.url(), "main", local_ok()), first);
    const std::string second = src.commit({{"index.html", "two"}});
    ASSERT_NE(first, second);
    EXPECT_EQ(repo.remote_head(src.url(), "main", local_ok()), second);
    EXPECT_EQ(repo.find_commit(second), "");
    EXPECT_EQ(repo.fetch_branch(src.url(), "main", local_ok()), second);
    EXPECT_EQ(repo.find_commit(second), second);
}

// ---- find_commit ----

TEST_F(GitRepoTest, FindCommitByPrefix) {
    TestRepo src(tmp() / "src");
    const std::string sha = src.commit({{"index.html", "x"}});
    GitRepo repo(local());
    EXPECT_EQ(repo.find_commit(sha.substr(0, 7)), "");
    repo.fetch_branch(src.url(), "main", local_ok());
    EXPECT_EQ(repo.find_commit(sha.substr(0, 7)), sha);
    EXPECT_EQ(repo.find_commit(sha), sha);
    std::string upper = sha.substr(0, 12);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(repo.find_commit(upper), sha);
    const std::string tree = src.git({"rev-parse", "HEAD^{tree}"}).substr(0, 40);
    EXPECT_EQ(git_error([&] { repo.find_commit(tree); }), tree + " names a tree, not a commit");
    EXPECT_NE(git_error([&] { repo.find_commit("abc"); }), "<no error>");
    EXPECT_NE(git_error([&] { repo.find_commit("xyzxyzx"); }), "<no error>");
}

TEST_F(GitRepoTest, FindCommitAmbiguousPrefix) {
    // Two blobs whose ids share 7 hex digits (28 bits): by the birthday bound a few tens of
    // thousands of candidates are enough, hashed in memory; only the colliding pair is written.
    std::unordered_map<uint32_t, std::string> seen;
    std::string a, b;
    for (uint64_t i = 0; a.empty() && i < 2'000'000; ++i) {
        const std::string content = "candidate " + std::to_string(i) + "\n";
        git_oid oid;
        ASSERT_EQ(git_odb_hash(&oid, content.data(), content.size(), GIT_OBJECT_BLOB), 0);
        const uint32_t prefix = (uint32_t{oid.id[0]} << 20) | (uint32_t{oid.id[1]} << 12) |
                                (uint32_t{oid.id[2]} << 4) | (oid.id[3] >> 4);
        if (auto [it, fresh] = seen.emplace(prefix, content); !fresh) a = it->second, b = content;
    }
    ASSERT_FALSE(a.empty());
    GitRepo repo(local());
    std::string ids[2];
    int n = 0;
    for (const std::string& content : {a, b}) {
        spit(tmp() / "blob", content);
        const Run r = run({"git", "--git-dir=" + local().string(), "hash-object", "-w", (tmp() / "blob").string()});
        ASSERT_EQ(r.code, 0) << describe(r);
        ids[n++] = r.out.substr(0, 40);
    }
    ASSERT_EQ(ids[0].substr(0, 7), ids[1].substr(0, 7));
    ASSERT_NE(ids[0].substr(0, 8), ids[1].substr(0, 8));
    const std::string prefix = ids[0].substr(0, 7);
    EXPECT_EQ(git_error([&] { repo.find_commit(prefix); }), "commit prefix " + prefix + " is ambiguous; write more digits");
    EXPECT_EQ(git_error([&] { repo.find_commit(ids[0].substr(0, 8)); }), ids[0].substr(0, 8) + " names a blob, not a commit");
}

// ---- fetch_commit ----

TEST_F(GitRepoTest, FetchCommitOnlyOnAnotherBranch) {
    TestRepo src(tmp() / "src");
    src.commit({{"index.html", "main"}});
    const std::string pinned = src.commit({{"index.html", "pinned"}}, "feature");
    GitRepo repo(local());
    EXPECT_EQ(repo.find_commit(pinned), "");
    EXPECT_EQ(repo.fetch_commit(src.url(), pinned, local_ok()), pinned);
    EXPECT_EQ(repo.find_commit(pinned), pinned);
    EXPECT_EQ(inspect({"rev-parse", "refs/sitesfs/pinned"}), pinned + "\n");
    const TreeReport report = repo.write_tree(pinned, release(), {});
    EXPECT_EQ(slurp(release() / "index.html"), "pinned");
    EXPECT_EQ(report.files, 1u);

    EXPECT_NE(git_error([&] { repo.fetch_commit(src.url(), pinned.substr(0, 12), local_ok()); }), "<no error>");
}

// A running sshd (in tmp/ssh) that serves one bare repository, and the options that fetch from it
// with a client key of its own. `failure` says why the server did not start; empty when it runs.
struct SshRemote {
    SshRemote(const stdfs::path& tmp, const stdfs::path& bare)
        : sshd((stdfs::create_directories(tmp / "ssh"), tmp / "ssh")),
          hosts(tmp / "known_hosts", hooks::HostKeyPolicy::AcceptNew) {
        sshd.serve_repo(bare);
        if (!sshd.start(&failure)) return;
        key.emplace(sshd.add_client_key("client"));
        options.key = &*key;
        options.key_ref = "file:client";
        options.known_hosts = &hosts;
    }

    SshServer sshd;
    hooks::KnownHosts hosts;
    std::string failure;
    std::optional<hooks::SecretBuffer> key;
    RemoteOptions options;
};

// How fetch_commit failed: its message, and whether it said the server has no such commit.
struct FetchCommitError {
    std::string message;
    bool no_such_commit = false;
};

FetchCommitError fetch_commit_error(GitRepo& repo, const std::string& url, const std::string& sha,
                                    const RemoteOptions& options) {
    try {
        repo.fetch_commit(url, sha, options);
    } catch (const NoSuchCommitError& e) {
        return {e.what(), true};
    } catch (const GitError& e) {
        return {e.what(), false};
    }
    ADD_FAILURE() << "fetching " << sha << " from " << url << " worked";
    return {};
}

TEST_F(GitRepoTest, FetchCommitTheLocalRemoteDoesNotHaveSaysSo) {
    TestRepo src(tmp() / "src");
    src.commit({{"index.html", "main"}});
    GitRepo repo(local());
    const std::string absent(40, 'e');
    for (const std::string& url : {src.url(), src.bare().string()}) {
        const FetchCommitError error = fetch_commit_error(repo, url, absent, local_ok());
        EXPECT_TRUE(error.no_such_commit) << error.message;
        EXPECT_EQ(error.message,
                  "commit " + absent + " is not in " + url + ": asked the server for it by id; it has no such commit");
    }
    EXPECT_EQ(inspect({"for-each-ref"}), "");
}

// git upload-pack answers "not our ref"; libgit2 passes on its stderr.
TEST_F(GitRepoTest, FetchCommitTheSshServerDoesNotHaveSaysSo) {
    TestRepo src(tmp() / "src");
    const std::string main1 = src.commit({{"index.html", "main"}});
    const Run allow = run({"git", "--git-dir=" + src.bare().string(), "config", "uploadpack.allowReachableSHA1InWant", "true"});
    ASSERT_EQ(allow.code, 0) << describe(allow);
    SshRemote ssh(tmp(), src.bare());
    ASSERT_EQ(ssh.failure, "");
    const std::string url = ssh.sshd.url();
    GitRepo repo(local());
    const std::string absent(40, 'e');
    const FetchCommitError error = fetch_commit_error(repo, url, absent, ssh.options);
    EXPECT_TRUE(error.no_such_commit) << error.message;
    EXPECT_EQ(error.message, "commit " + absent + " is not in " + url + ": asked the server for it by id; it has no such commit");
    // The same server, the same way, for a commit it has: the connection was not what failed.
    EXPECT_EQ(repo.fetch_commit(url, main1, ssh.options), main1);
}

// git-http-backend closes the connection on a want it does not have: libgit2 sees "early EOF", as
// for a dropped connection, and that is all that can be said.
TEST_F(GitRepoTest, FetchCommitTheHttpsServerDoesNotHaveIsAnEarlyEof) {
    TestRepo src(tmp() / "src");
    src.commit({{"index.html", "main"}});
    const Run allow = run({"git", "--git-dir=" + src.bare().string(), "config", "uploadpack.allowReachableSHA1InWant", "true"});
    ASSERT_EQ(allow.code, 0) << describe(allow);
    const std::string url = serve_https();
    ASSERT_FALSE(url.empty());
    GitRepo repo(local());
    const std::string absent(40, 'e');
    const FetchCommitError error = fetch_commit_error(repo, url, absent, {});
    EXPECT_FALSE(error.no_such_commit) << "an early EOF taken for a missing commit";
    EXPECT_EQ(error.message, "fetch " + url + " commit " + absent + ": early EOF");
}

TEST_F(GitRepoTest, FetchCommitRefusedByServerSaysWhy) {
    TestRepo src(tmp() / "src");
    src.commit({{"index.html", "main"}});
    const std::string pinned = src.commit({{"index.html", "pinned"}}, "feature");
    const std::string url = serve_https();
    ASSERT_FALSE(url.empty());
    GitRepo repo(local());
    // git-http-backend does not let a client ask for an object by id unless the server allows it.
    const auto [refused, no_such_commit] = fetch_commit_error(repo, url, pinned, {});
    EXPECT_FALSE(no_such_commit) << "the server has the commit";
    EXPECT_TRUE(refused.starts_with("fetch " + url)) << refused;
    EXPECT_NE(refused.find("specific object"), std::string::npos) << refused;
    EXPECT_EQ(repo.find_commit(pinned), "");

    const Run allow = run({"git", "--git-dir=" + src.bare().string(), "config", "uploadpack.allowReachableSHA1InWant", "true"});
    ASSERT_EQ(allow.code, 0) << describe(allow);
    EXPECT_EQ(repo.fetch_commit(url, pinned, {}), pinned);
    EXPECT_EQ(repo.find_commit(pinned), pinned);
}

// ---- write_tree ----

TEST_F(GitRepoTest, WriteTreeContentsAndModes) {
    TestRepo src(tmp() / "src");
    src.commit({{"index.html", "<h1>hi</h1>\n"}, {"bin/run.sh", "#!/bin/sh\necho hi\n"}, {"a/b/c/deep.txt", "deep"}});
    stdfs::permissions(tmp() / "src" / "work" / "bin" / "run.sh", stdfs::perms::owner_exec, stdfs::perm_options::add);
    const std::string sha = src.commit({}, "main", "executable");
    ASSERT_EQ(src.git({"ls-tree", "HEAD", "bin/run.sh"}).substr(0, 6), "100755");

    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(src.url(), "main", local_ok()), sha);
    const TreeReport report = repo.write_tree(sha, release(), {});
    EXPECT_EQ(slurp(release() / "index.html"), "<h1>hi</h1>\n");
    EXPECT_EQ(slurp(release() / "bin" / "run.sh"), "#!/bin/sh\necho hi\n");
    EXPECT_EQ(slurp(release() / "a" / "b" / "c" / "deep.txt"), "deep");
    EXPECT_EQ(mode_of(release() / "index.html"), 0644u);
    EXPECT_EQ(mode_of(release() / "bin" / "run.sh"), 0755u);
    EXPECT_EQ(mode_of(release() / "a" / "b" / "c" / "deep.txt"), 0644u);
    EXPECT_EQ(mode_of(release()), 0755u);
    EXPECT_EQ(mode_of(release() / "a" / "b"), 0755u);
    EXPECT_EQ(report.files, 3u);
    EXPECT_EQ(report.bytes, 12u + 18u + 4u);
    EXPECT_TRUE(report.skipped.empty());
    EXPECT_FALSE(stdfs::exists(release() / ".git"));
}

TEST_F(GitRepoTest, WriteTreeSymlinkBecomesPlainFile) {
    TestRepo src(tmp() / "src");
    const std::string sha = src.commit({{"passwd", "symlink:/etc/passwd"},
                                        {"docs/real.txt", "real"},
                                        {"docs-link", "symlink:docs"},
                                        {"up", "symlink:../../.."}});
    GitRepo repo(local());
    repo.fetch_branch(src.url(), "main", local_ok());
    const TreeReport report = repo.write_tree(sha, release(), {});
    EXPECT_EQ(slurp(release() / "passwd"), "/etc/passwd");
    EXPECT_EQ(slurp(release() / "docs-link"), "docs");
    EXPECT_EQ(slurp(release() / "up"), "../../..");
    EXPECT_EQ(mode_of(release() / "passwd"), 0644u);
    EXPECT_TRUE(has_prefix(report.skipped, "passwd: symbolic link")) << ::testing::PrintToString(report.skipped);
    int entries = 0;
    for (const auto& e : stdfs::recursive_directory_iterator(release())) {
        ++entries;
        EXPECT_FALSE(e.is_symlink()) << e.path();
        EXPECT_TRUE(e.symlink_status().type() == stdfs::file_type::regular ||
                    e.symlink_status().type() == stdfs::file_type::directory)
            << e.path();
    }
    EXPECT_EQ(entries, 5);  // passwd, docs, docs/real.txt, docs-link, up
}

TEST_F(GitRepoTest, WriteTreeSkipsDotGitInAnyCase) {
    TestRepo src(tmp() / "src");
    src.commit({{"index.html", "x"}});
    const std::string hook = blob(src, "#!/bin/sh\nrm -rf /\n");
    const std::string page = blob(src, "page");
    const RunOptions o = in_src();
    const Run inner = bash("printf '100644 blob " + hook + "\\tconfig\\n' | git mktree", o);
    ASSERT_EQ(inner.code, 0) << describe(inner);
    const std::string dotgit = inner.out.substr(0, 40);
    const Run sub = bash("printf '040000 tree " + dotgit + "\\t.Git\\n100644 blob " + page + "\\tpage.html\\n' | git mktree", o);
    ASSERT_EQ(sub.code, 0) << describe(sub);
    const std::string sha = push_tree(src,
                                      "040000 tree " + dotgit + "\\t.git\\n040000 tree " + dotgit + "\\t.GIT\\n100644 blob " +
                                          hook + "\\t.gIt\\n040000 tree " + sub.out.substr(0, 40) + "\\tsub\\n100644 blob " +
                                          page + "\\tindex.html\\n",
                                      "crafted");
    ASSERT_EQ(src.git({"ls-tree", "-r", "--name-only", sha}), ".GIT/config\n.gIt\n.git/config\nindex.html\nsub/.Git/config\nsub/page.html\n");

    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(src.url(), "crafted", local_ok()), sha);
    const TreeReport report = repo.write_tree(sha, release(), {});
    std::set<std::string> written;
    for (const auto& e : stdfs::recursive_directory_iterator(release()))
        written.insert(stdfs::relative(e.path(), release()).string());
    EXPECT_EQ(written, (std::set<std::string>{"index.html", "sub", "sub/page.html"}));
    EXPECT_EQ(report.files, 2u);
    for (const std::string skipped : {".git: ", ".GIT: ", ".gIt: ", "sub/.Git: "})
        EXPECT_TRUE(has_prefix(report.skipped, skipped)) << skipped << " in " << ::testing::PrintToString(report.skipped);
}

// Names come from the repository; in a message a newline would forge a line of status or log.
TEST_F(GitRepoTest, WriteTreeEscapesControlBytesInReportedNames) {
    TestRepo src(tmp() / "src");
    src.commit({{"index.html", "x"}});
    const std::string target = blob(src, "/etc/passwd");
    // One printf per entry: a \\0 followed by digits would be read as an octal escape.
    const std::string sha = push_script_tree(src,
                                             "{ printf '120000 blob " + target + "\\tx\\nsite other: deployed\\0'; printf '120000 blob " +
                                                 target + "\\tesc\\033[2J\\\\\\0'; } | git mktree -z",
                                             "names");
    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(src.url(), "names", local_ok()), sha);
    const TreeReport report = repo.write_tree(sha, release(), {});
    EXPECT_EQ(slurp(release() / "x\nsite other: deployed"), "/etc/passwd");
    EXPECT_TRUE(has_prefix(report.skipped, "x\\x0asite other: deployed: symbolic link")) << ::testing::PrintToString(report.skipped);
    EXPECT_TRUE(has_prefix(report.skipped, "esc\\x1b[2J\\\\: symbolic link")) << ::testing::PrintToString(report.skipped);
}

TEST_F(GitRepoTest, WriteTreeSkipsSubmodule) {
    TestRepo src(tmp() / "src");
    const std::string first = src.commit({{"index.html", "x"}});
    src.git({"update-index", "--add", "--cacheinfo", "160000," + first + ",mod"});
    src.git({"commit", "-q", "-m", "submodule"});
    src.git({"push", "-q", "origin", "main"});
    const std::string sha = src.git({"rev-parse", "HEAD"}).substr(0, 40);
    ASSERT_EQ(src.git({"ls-tree", "HEAD", "mod"}).substr(0, 6), "160000");

    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(src.url(), "main", local_ok()), sha);
    const TreeReport report = repo.write_tree(sha, release(), {});
    EXPECT_FALSE(stdfs::exists(stdfs::symlink_status(release() / "mod")));
    EXPECT_EQ(slurp(release() / "index.html"), "x");
    EXPECT_EQ(report.files, 1u);
    EXPECT_TRUE(has_prefix(report.skipped, "mod: submodule")) << ::testing::PrintToString(report.skipped);
}

TEST_F(GitRepoTest, WriteTreeCaps) {
    TestRepo src(tmp() / "src");
    const std::string sha = src.commit({{"a", "0123456789"}, {"b", "0123456789"}, {"c", "0123456789"}});
    GitRepo repo(local());
    repo.fetch_branch(src.url(), "main", local_ok());

    TreeLimits exact;
    exact.max_files = 3;
    exact.max_bytes = 30;
    EXPECT_EQ(repo.write_tree(sha, release("exact"), exact).bytes, 30u);

    TreeLimits files;
    files.max_files = 2;
    const std::string too_many = git_error([&] { repo.write_tree(sha, release("files"), files); });
    EXPECT_NE(too_many.find("more than 2 files"), std::string::npos) << too_many;
    EXPECT_NE(too_many.find("[reconcile] max_files"), std::string::npos) << too_many;

    TreeLimits bytes;
    bytes.max_bytes = 25;
    const std::string too_big = git_error([&] { repo.write_tree(sha, release("bytes"), bytes); });
    EXPECT_NE(too_big.find("more than 25 bytes"), std::string::npos) << too_big;
    EXPECT_NE(too_big.find("[reconcile] max_bytes"), std::string::npos) << too_big;
    EXPECT_FALSE(stdfs::exists(release("bytes") / "c"));
}

TEST_F(GitRepoTest, WriteTreeRefusesDeepNesting) {
    TestRepo src(tmp() / "src");
    src.commit({{"index.html", "x"}});
    const std::string leaf = blob(src, "deep");
    const std::string sha = push_script_tree(src,
                                             "t=$(printf '100644 blob " + leaf +
                                                 "\\tf\\n' | git mktree) && for i in $(seq 200); do t=$(printf \"040000 tree $t\\td\\n\" | git mktree) || exit 1; done && echo $t",
                                             "deep");
    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(src.url(), "deep", local_ok()), sha);
    const std::string error = git_error([&] { repo.write_tree(sha, release(), {}); });
    EXPECT_NE(error.find("deeper than 128 levels"), std::string::npos) << error;
}

TEST_F(GitRepoTest, WriteTreeIntoExistingDirectoryFails) {
    TestRepo src(tmp() / "src");
    const std::string sha = src.commit({{"index.html", "new"}});
    GitRepo repo(local());
    repo.fetch_branch(src.url(), "main", local_ok());
    stdfs::create_directory(release());
    spit(release() / "index.html", "old");
    const std::string error = git_error([&] { repo.write_tree(sha, release(), {}); });
    EXPECT_NE(error.find(release().string()), std::string::npos) << error;
    EXPECT_NE(error.find("File exists"), std::string::npos) << error;
    EXPECT_EQ(slurp(release() / "index.html"), "old");
}

// ---- URL policy and host configuration ----

TEST_F(GitRepoTest, LocalUrlRefusedWithoutPermission) {
    TestRepo src(tmp() / "src");
    const std::string sha = src.commit({{"index.html", "x"}});
    GitRepo repo(local());
    const RemoteOptions strict;
    for (const std::string& url : {src.url(), src.bare().string()}) {
        for (const std::string& error :
             {git_error([&] { repo.remote_head(url, "main", strict); }), git_error([&] { repo.fetch_branch(url, "main", strict); }),
              git_error([&] { repo.fetch_commit(url, sha, strict); })}) {
            EXPECT_NE(error.find("--allow-local-repos"), std::string::npos) << error;
        }
    }
    EXPECT_EQ(repo.find_commit(sha), "");
    // Refused before connecting: for a repository that does not exist the reason is still the
    // policy, while with permission the same URL fails in the transport.
    const std::string missing = "file://" + (tmp() / "missing.git").string();
    const std::string refused = git_error([&] { repo.remote_head(missing, "main", strict); });
    EXPECT_NE(refused.find("--allow-local-repos"), std::string::npos) << refused;
    const std::string connected = git_error([&] { repo.remote_head(missing, "main", local_ok()); });
    EXPECT_EQ(connected.find("--allow-local-repos"), std::string::npos) << connected;
    EXPECT_NE(connected, "<no error>");
}

TEST_F(GitRepoTest, HostGitconfigIsIgnored) {
    TestRepo wanted(tmp() / "src");
    const std::string wanted_tip = wanted.commit({{"index.html", "wanted"}});
    TestRepo decoy(tmp() / "decoy");
    const std::string decoy_tip = decoy.commit({{"index.html", "decoy"}});
    const std::string rewrite = "[url \"" + decoy.url() + "\"]\n\tinsteadOf = " + wanted.url() + "\n";
    const stdfs::path files[] = {g_host_home / ".gitconfig", g_host_home / ".config" / "git" / "config"};
    // Later tests must not find them.
    struct Cleanup {
        const stdfs::path* begin;
        const stdfs::path* end;
        ~Cleanup() {
            for (auto* f = begin; f != end; ++f) stdfs::remove(*f);
        }
    } cleanup{std::begin(files), std::end(files)};
    stdfs::create_directories(g_host_home / ".config" / "git");
    for (const auto& f : files) spit(f, rewrite);

    // The git CLI follows the rewrite, so this setup does fool a client that reads the host's config.
    RunOptions o;
    o.env = {"HOME=" + g_host_home.string(), "XDG_CONFIG_HOME=" + (g_host_home / ".config").string(),
             "GIT_CONFIG_NOSYSTEM=1"};
    const Run cli = run({"git", "ls-remote", wanted.url(), "refs/heads/main"}, o);
    ASSERT_EQ(cli.code, 0) << describe(cli);
    ASSERT_EQ(cli.out.substr(0, 40), decoy_tip);

    GitRepo repo(local());
    EXPECT_EQ(repo.remote_head(wanted.url(), "main", local_ok()), wanted_tip);
    EXPECT_EQ(repo.fetch_branch(wanted.url(), "main", local_ok()), wanted_tip);
    EXPECT_EQ(repo.find_commit(decoy_tip), "");

    // Nothing of the host's files reaches libgit2's configuration at all.
    git_config* raw = nullptr;
    ASSERT_EQ(git_config_open_default(&raw), 0);
    const std::unique_ptr<git_config, void (*)(git_config*)> config(raw, git_config_free);
    git_buf value = GIT_BUF_INIT;
    EXPECT_EQ(git_config_get_string_buf(&value, config.get(), ("url." + decoy.url() + ".insteadof").c_str()),
              GIT_ENOTFOUND)
        << value.ptr;
    git_buf_dispose(&value);
}

// ---- cancellation ----

TEST_F(GitRepoTest, CancelledAbortsFetch) {
    TestRepo src(tmp() / "src");
    const std::string sha = src.commit({{"index.html", "x"}});
    GitRepo repo(local());

    int calls = 0;
    RemoteOptions options = local_ok();
    options.cancelled = [&] { return ++calls >= 1; };
    EXPECT_EQ(git_error([&] { repo.remote_head(src.url(), "main", options); }), "ls-remote " + src.url() + ": cancelled");
    EXPECT_EQ(git_error([&] { repo.fetch_branch(src.url(), "main", options); }), "fetch " + src.url() + ": cancelled");

    // The first poll is just before connecting; the second comes from the transfer itself.
    calls = 0;
    options.cancelled = [&] { return ++calls >= 2; };
    EXPECT_EQ(git_error([&] { repo.fetch_branch(src.url(), "main", options); }), "fetch " + src.url() + ": cancelled");
    EXPECT_EQ(calls, 2);
    EXPECT_EQ(repo.find_commit(sha), "");
    EXPECT_EQ(inspect({"for-each-ref"}), "");

    options.cancelled = []() -> bool { throw std::runtime_error("the daemon is shutting down"); };
    EXPECT_EQ(git_error([&] { repo.fetch_branch(src.url(), "main", options); }),
              "fetch " + src.url() + ": checking for cancellation failed: the daemon is shutting down");

    options.cancelled = [] { return false; };
    EXPECT_EQ(repo.fetch_branch(src.url(), "main", options), sha);
}

// ---- remotes that stall ----

// Set when a call outlived kHangDeadline; the stalling tests' `cancelled` returns it, so a hung call
// can still be ended.
std::atomic<bool> g_hung{false};
constexpr auto kHangDeadline = 30s;

// The GitError message of `f`, run on another thread as a watchdog: a call still running after
// kHangDeadline fails the test (no timing is asserted below that), is cancelled, and if even that
// does not end it within 10 s the process aborts rather than hang the suite.
template <typename F>
std::string error_without_hanging(F&& f) {
    auto result = std::async(std::launch::async, [&] { return git_error(f); });
    if (result.wait_for(kHangDeadline) == std::future_status::ready) return result.get();
    ADD_FAILURE() << "the call had not returned after " << kHangDeadline.count() << " s: it hangs";
    g_hung = true;
    if (result.wait_for(10s) != std::future_status::ready) {
        std::fprintf(stderr, "the call ignored cancellation too; aborting instead of hanging\n");
        std::abort();
    }
    return result.get();
}

// Short limits, and the watchdog's cancellation (thread-safe: over SSH the connection's watchdog
// thread calls it too).
RemoteOptions stalling(std::chrono::milliseconds connect, std::chrono::milliseconds io) {
    RemoteOptions o;
    o.timeouts.connect = connect;
    o.timeouts.io = io;
    o.cancelled = [] { return g_hung.load(); };
    return o;
}

// Ends the wait after `after`, the way a superseded run or a shutdown does.
RemoteOptions cancelled_after(std::chrono::milliseconds after) {
    RemoteOptions o;
    o.timeouts.connect = o.timeouts.io = 600s;  // far beyond the watchdog: only cancellation can end it
    const auto at = std::chrono::steady_clock::now() + after;
    o.cancelled = [at] { return g_hung.load() || std::chrono::steady_clock::now() >= at; };
    return o;
}

std::string silent(const std::string& endpoint, const std::string& limit) {
    return "no data from the server " + endpoint + " for " + limit + " (timed out; [git] io_timeout)";
}

TEST_F(GitRepoTest, ServerThatAcceptsAndSaysNothingTimesOut) {
    const StallServer server;
    const std::string endpoint = "127.0.0.1:" + std::to_string(server.port());
    const std::string url = "https://" + endpoint + "/x.git";
    GitRepo repo(local());
    const RemoteOptions options = stalling(30s, 1s);
    EXPECT_EQ(error_without_hanging([&] { repo.remote_head(url, "main", options); }),
              "ls-remote " + url + ": " + silent(endpoint, "1s"));
    EXPECT_EQ(error_without_hanging([&] { repo.fetch_branch(url, "main", options); }),
              "fetch " + url + ": " + silent(endpoint, "1s"));
    EXPECT_EQ(server.accepted(), 2);
}

TEST_F(GitRepoTest, ServerThatStopsMidPackTimesOutAndWritesNothing) {
    TestRepo src(tmp() / "src");
    // Enough bytes that the pack is far longer than what the server sends before it stalls.
    std::string page;
    for (int i = 0; i < 20000; ++i) page += std::to_string(i * 7919 % 100003) + "\n";
    const std::string tip = src.commit({{"index.html", page}});
    const std::string url = serve_https(1024);
    ASSERT_FALSE(url.empty());
    const std::string endpoint = url.substr(8, url.find('/', 8) - 8);

    GitRepo repo(local());
    const RemoteOptions options = stalling(30s, 1s);
    EXPECT_EQ(repo.remote_head(url, "main", options), tip);  // the ref listing is answered in full
    EXPECT_EQ(error_without_hanging([&] { repo.fetch_branch(url, "main", options); }),
              "fetch " + url + ": " + silent(endpoint, "1s"));
    EXPECT_EQ(repo.find_commit(tip), "");
    EXPECT_EQ(inspect({"for-each-ref"}), "");
}

TEST_F(GitRepoTest, CancellationEndsAStalledTransfer) {
    const StallServer server;
    const std::string url = "https://127.0.0.1:" + std::to_string(server.port()) + "/x.git";
    GitRepo repo(local());
    EXPECT_EQ(error_without_hanging([&] { repo.remote_head(url, "main", cancelled_after(300ms)); }),
              "ls-remote " + url + ": cancelled");
    EXPECT_EQ(error_without_hanging([&] { repo.fetch_branch(url, "main", cancelled_after(300ms)); }),
              "fetch " + url + ": cancelled");
}

TEST_F(GitRepoTest, HostThatNeverAnswersTheConnectTimesOut) {
    const FullBacklog host;
    std::string why;
    if (!host.filled(&why)) SITESFS_CANNOT_RUN() << "cannot make a connect() that gets no answer here: " << why;
    const std::string endpoint = "127.0.0.1:" + std::to_string(host.port());
    const std::string url = "https://" + endpoint + "/x.git";
    GitRepo repo(local());
    EXPECT_EQ(error_without_hanging([&] { repo.remote_head(url, "main", stalling(1s, 60s)); }),
              "ls-remote " + url + ": could not connect to " + endpoint +
                  " within 1s (timed out; [git] connect_timeout)");
}

// libssh2 drives the SSH socket itself; the stream's watchdog thread bounds it.
TEST_F(GitRepoTest, SshServerThatSaysNothingTimesOut) {
    const StallServer server;
    const std::string endpoint = "127.0.0.1:" + std::to_string(server.port());
    const std::string url = "ssh://git@" + endpoint + "/x.git";
    GitRepo repo(local());
    EXPECT_EQ(error_without_hanging([&] { repo.remote_head(url, "main", stalling(30s, 1s)); }),
              "ls-remote " + url + ": " + silent(endpoint, "1s"));
}

TEST_F(GitRepoTest, SshServerThatStopsAfterItsBannerTimesOut) {
    const StallServer server("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
    const std::string endpoint = "127.0.0.1:" + std::to_string(server.port());
    const std::string url = "ssh://git@" + endpoint + "/x.git";
    GitRepo repo(local());
    EXPECT_EQ(error_without_hanging([&] { repo.fetch_branch(url, "main", stalling(30s, 1500ms)); }),
              "fetch " + url + ": " + silent(endpoint, "1500ms"));
}

TEST_F(GitRepoTest, CancellationEndsAStalledSshConnection) {
    const StallServer server;
    const std::string url = "ssh://git@127.0.0.1:" + std::to_string(server.port()) + "/x.git";
    GitRepo repo(local());
    EXPECT_EQ(error_without_hanging([&] { repo.remote_head(url, "main", cancelled_after(300ms)); }),
              "ls-remote " + url + ": cancelled");
}

// ---- submodules ----

// Stages gitlinks (path -> commit) on top of what `repo` last committed, commits and pushes them;
// the new commit. (TestRepo::commit adds the work tree, which has no directory for a gitlink.)
std::string commit_gitlinks(TestRepo& repo, const std::map<std::string, std::string>& links) {
    for (const auto& [path, commit] : links)
        repo.git({"update-index", "--add", "--cacheinfo", "160000," + commit + "," + path});
    repo.git({"commit", "-q", "-m", "submodules"});
    repo.git({"push", "-q", "origin", "HEAD"});
    return repo.git({"rev-parse", "HEAD"}).substr(0, 40);
}

std::string gitmodules_section(const std::string& name, const std::string& path, const std::string& url) {
    return "[submodule \"" + name + "\"]\n\tpath = " + path + "\n\turl = " + url + "\n";
}

// A SubmoduleRemote that fetches with `options` and records the URLs it was asked for.
struct RecordingRemote {
    RemoteOptions options = local_ok();
    std::vector<std::string> urls;
    hooks::SubmoduleRemote fn() {
        return [this](const std::string& url, const std::function<void(const RemoteOptions&)>& fetch) {
            urls.push_back(url);
            fetch(options);
        };
    }
};

// tmp()/src (the site) pins tmp()/theme at themes/t, and the theme pins tmp()/lib at vendor/lib.
struct ThemedSite {
    std::string site, theme, lib;  // commits
    std::string site_url, theme_url, lib_url;
};

ThemedSite themed_site(const stdfs::path& tmp, const std::string& theme_url_in_gitmodules,
                       const std::string& extra_gitmodules = "") {
    ThemedSite s;
    TestRepo lib(tmp / "lib");
    s.lib = lib.commit({{"lib.css", "lib"}});
    s.lib_url = lib.url();
    TestRepo theme(tmp / "theme");
    // Relative to the theme's own URL, not the site's.
    theme.commit({{"layouts/index.html", "theme"},
                  {"static/link", "symlink:/etc/passwd"},
                  {"bin/run.sh", "#!/bin/sh\n"},
                  {".gitmodules", gitmodules_section("lib", "vendor/lib", "../../lib/origin.git")}});
    theme.git({"update-index", "--chmod=+x", "bin/run.sh"});
    s.theme = commit_gitlinks(theme, {{"vendor/lib", s.lib}});
    s.theme_url = theme.url();
    TestRepo src(tmp / "src");
    src.commit({{"index.html", "site"},
                {".gitmodules", gitmodules_section("theme", "themes/t", theme_url_in_gitmodules) + extra_gitmodules}});
    s.site = commit_gitlinks(src, {{"themes/t", s.theme}});
    s.site_url = src.url();
    return s;
}

TEST_F(GitRepoTest, SubmodulesAreFetchedAndWritten) {
    const stdfs::path marker = tmp() / "update-ran";
    const ThemedSite s = themed_site(tmp(), "../../theme/origin.git",
                                     "[submodule \"theme\"]\n\tupdate = !touch " + marker.string() + "\n");
    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(s.site_url, "main", local_ok()), s.site);
    EXPECT_EQ(repo.find_commit(s.theme), "");

    RecordingRemote remote;
    hooks::fetch_submodules(repo, s.site, s.site_url, local_ok().policy, remote.fn());
    EXPECT_EQ(remote.urls, (std::vector<std::string>{s.theme_url, s.lib_url}));
    EXPECT_EQ(repo.find_commit(s.theme), s.theme);
    EXPECT_EQ(repo.find_commit(s.lib), s.lib);
    // A ref per submodule commit; the site's own ref is where fetch_branch left it.
    const std::string& first = std::min(s.lib, s.theme);
    const std::string& second = std::max(s.lib, s.theme);
    EXPECT_EQ(inspect({"for-each-ref", "--format=%(refname) %(objectname)"}),
              "refs/sitesfs/followed " + s.site + "\nrefs/sitesfs/modules/" + first + " " + first +
                  "\nrefs/sitesfs/modules/" + second + " " + second + "\n");
    EXPECT_FALSE(stdfs::exists(marker)) << "an update = !command in .gitmodules ran";

    // Everything is here now: nothing more is fetched.
    hooks::fetch_submodules(repo, s.site, s.site_url, local_ok().policy, remote.fn());
    EXPECT_EQ(remote.urls.size(), 2u);

    const TreeReport report = repo.write_tree(s.site, release(), {}, hooks::Submodules::Recursive);
    EXPECT_EQ(slurp(release() / "index.html"), "site");
    EXPECT_EQ(slurp(release() / "themes/t/layouts/index.html"), "theme");
    EXPECT_EQ(slurp(release() / "themes/t/vendor/lib/lib.css"), "lib");
    EXPECT_EQ(slurp(release() / "themes/t/static/link"), "/etc/passwd");
    EXPECT_TRUE(stdfs::is_regular_file(stdfs::symlink_status(release() / "themes/t/static/link")));
    EXPECT_TRUE(has_prefix(report.skipped, "themes/t/static/link: symbolic link")) << ::testing::PrintToString(report.skipped);
    EXPECT_EQ(mode_of(release() / "themes/t"), 0755u);
    EXPECT_EQ(mode_of(release() / "themes/t/vendor/lib/lib.css"), 0644u);
    EXPECT_EQ(mode_of(release() / "themes/t/bin/run.sh"), 0755u);
    EXPECT_FALSE(stdfs::exists(release() / "themes/t/.git"));
    // index.html, both .gitmodules, layouts/index.html, static/link, bin/run.sh, lib.css
    EXPECT_EQ(report.files, 7u);

    // Without the option a submodule is left out as before, even when its commit is here.
    const TreeReport plain = repo.write_tree(s.site, release("plain"), {});
    EXPECT_FALSE(stdfs::exists(release("plain") / "themes/t"));
    EXPECT_EQ(plain.files, 2u);
    EXPECT_TRUE(has_prefix(plain.skipped, "themes/t: submodule (commit " + s.theme.substr(0, 12) + ") is not fetched"))
        << ::testing::PrintToString(plain.skipped);
}

TEST_F(GitRepoTest, SubmoduleWithAbsoluteUrl) {
    const std::string theme_url = "file://" + (tmp() / "theme" / "origin.git").string();
    const ThemedSite s = themed_site(tmp(), theme_url);
    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(s.site_url, "main", local_ok()), s.site);
    RecordingRemote remote;
    hooks::fetch_submodules(repo, s.site, s.site_url, local_ok().policy, remote.fn());
    EXPECT_EQ(remote.urls, (std::vector<std::string>{theme_url, s.lib_url}));
    repo.write_tree(s.site, release(), {}, hooks::Submodules::Recursive);
    EXPECT_EQ(slurp(release() / "themes/t/vendor/lib/lib.css"), "lib");
}

TEST_F(GitRepoTest, WriteTreeNamesASubmoduleThatWasNotFetched) {
    const ThemedSite s = themed_site(tmp(), "../../theme/origin.git");
    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(s.site_url, "main", local_ok()), s.site);
    const std::string error =
        git_error([&] { repo.write_tree(s.site, release(), {}, hooks::Submodules::Recursive); });
    EXPECT_EQ(error, "submodule themes/t: commit " + s.theme + " is not in the repository; its submodules were not fetched");
}

TEST_F(GitRepoTest, SubmoduleWithoutGitmodulesEntry) {
    TestRepo src(tmp() / "src");
    const std::string first = src.commit({{"index.html", "x"}});
    const std::string bare = commit_gitlinks(src, {{"themes/t", first}});
    src.commit({{".gitmodules", gitmodules_section("other", "themes/other", src.url())}});
    const std::string other = commit_gitlinks(src, {{"themes/t", first}});
    src.commit({{".gitmodules", "# no url\n[submodule \"t\"]\n\tpath = themes/t\n"}});
    const std::string no_url = commit_gitlinks(src, {{"themes/t", first}});
    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(src.url(), "main", local_ok()), no_url);
    RecordingRemote remote;
    EXPECT_EQ(git_error([&] { hooks::fetch_submodules(repo, bare, src.url(), local_ok().policy, remote.fn()); }),
              "submodule themes/t: commit " + bare.substr(0, 12) +
                  " has no .gitmodules to say where it comes from; add a [submodule] section with its path and url");
    EXPECT_EQ(git_error([&] { hooks::fetch_submodules(repo, other, src.url(), local_ok().policy, remote.fn()); }),
              "submodule themes/t (commit " + first.substr(0, 12) + ") has no entry in .gitmodules of commit " +
                  other.substr(0, 12) + "; add [submodule \"NAME\"] with path = themes/t and its url");
    EXPECT_EQ(git_error([&] { hooks::fetch_submodules(repo, no_url, src.url(), local_ok().policy, remote.fn()); }),
              ".gitmodules of commit " + no_url.substr(0, 12) +
                  ", line 2: [submodule \"t\"] (submodule themes/t) has no url; add url = URL");
    EXPECT_TRUE(remote.urls.empty());
}

TEST_F(GitRepoTest, GitmodulesThatIsALinkOrTooLargeIsRefused) {
    TestRepo src(tmp() / "src");
    const std::string first = src.commit({{"index.html", "x"}});
    // git add refuses a .gitmodules that is a link.
    const std::string link = push_tree(
        src, "120000 blob " + blob(src, "/etc/passwd") + "\\t.gitmodules\\n160000 commit " + first + "\\tm\\n", "link");
    src.commit({{".gitmodules", gitmodules_section("m", "m", src.url()) + std::string(hooks::kMaxGitmodulesBytes, '#')}});
    const std::string large = commit_gitlinks(src, {{"m", first}});
    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(src.url(), "link", local_ok()), link);
    ASSERT_EQ(repo.fetch_branch(src.url(), "main", local_ok()), large);
    RecordingRemote remote;
    EXPECT_EQ(git_error([&] { hooks::fetch_submodules(repo, link, src.url(), local_ok().policy, remote.fn()); }),
              ".gitmodules in commit " + link + " is not a regular file but a symbolic link");
    const size_t size = gitmodules_section("m", "m", src.url()).size() + hooks::kMaxGitmodulesBytes;
    EXPECT_EQ(git_error([&] { hooks::fetch_submodules(repo, large, src.url(), local_ok().policy, remote.fn()); }),
              ".gitmodules in commit " + large + " has " + std::to_string(size) + " bytes; at most 65536 are read");
    EXPECT_TRUE(remote.urls.empty());
}

TEST_F(GitRepoTest, SubmoduleUrlRefusedByPolicy) {
    const ThemedSite s = themed_site(tmp(), "../../theme/origin.git");
    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(s.site_url, "main", local_ok()), s.site);
    RecordingRemote remote;
    const std::string error = git_error([&] { hooks::fetch_submodules(repo, s.site, s.site_url, {}, remote.fn()); });
    EXPECT_EQ(error, "submodule themes/t (.gitmodules of commit " + s.site.substr(0, 12) + ", line 1): repo '" +
                         s.theme_url + "': local repositories need --allow-local-repos (url = ../../theme/origin.git resolved against " +
                         s.site_url + ")");
    EXPECT_TRUE(remote.urls.empty());
    EXPECT_EQ(repo.find_commit(s.theme), "");
}

TEST_F(GitRepoTest, SubmoduleTransportOutsideTheAllowListIsRefused) {
    TestRepo src(tmp() / "src");
    const std::string first = src.commit({{"index.html", "x"}});
    src.commit({{".gitmodules", gitmodules_section("evil", "m", "ext::sh -c touch% /tmp/pwned")}});
    const std::string sha = commit_gitlinks(src, {{"m", first}});
    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(src.url(), "main", local_ok()), sha);
    RecordingRemote remote;
    const std::string error = git_error([&] { hooks::fetch_submodules(repo, sha, src.url(), local_ok().policy, remote.fn()); });
    EXPECT_TRUE(error.starts_with("submodule m (.gitmodules of commit " + sha.substr(0, 12) + ", line 1): repo 'ext::sh -c"))
        << error;
    EXPECT_TRUE(remote.urls.empty());
}

TEST_F(GitRepoTest, SubmoduleCommitItsRepositoryLacks) {
    TestRepo theme(tmp() / "theme");
    theme.commit({{"a", "1"}});
    TestRepo src(tmp() / "src");
    src.commit({{".gitmodules", gitmodules_section("theme", "t", theme.url())}});
    const std::string absent(40, 'e');
    const std::string sha = commit_gitlinks(src, {{"t", absent}});
    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(src.url(), "main", local_ok()), sha);
    RecordingRemote remote;
    EXPECT_EQ(git_error([&] { hooks::fetch_submodules(repo, sha, src.url(), local_ok().policy, remote.fn()); }),
              "submodule t: commit " + absent + " is not in " + theme.url() +
                  ": asked for it by id and fetched the default branch; push the commit there, or point the submodule "
                  "at a commit that is");
    EXPECT_EQ(remote.urls, std::vector<std::string>{theme.url()});
    // The default branch fetched on the way is not kept under the commit's name.
    EXPECT_EQ(inspect({"for-each-ref", "--format=%(refname)"}), "refs/sitesfs/followed\n");
}

// git upload-pack gives out a commit by id only when one of its refs points at it: by default it
// takes no ids at all (libgit2 then does not ask), with allowTipSHA1InWant it answers "not our
// ref". Either way a submodule pinned below its branch's tip comes with the default branch.
TEST_F(GitRepoTest, SubmoduleCommitBelowTheTipComesWithTheDefaultBranch) {
    TestRepo theme(tmp() / "theme");
    const std::string pinned = theme.commit({{"a", "pinned"}});
    const std::string tip = theme.commit({{"a", "tip"}});
    SshRemote ssh(tmp(), theme.bare());
    ASSERT_EQ(ssh.failure, "");
    const std::string url = ssh.sshd.url();
    TestRepo src(tmp() / "src");
    src.commit({{".gitmodules", gitmodules_section("theme", "t", url)}});
    const std::string sha = commit_gitlinks(src, {{"t", pinned}});

    for (const std::string tip_ids : {"false", "true"}) {
        SCOPED_TRACE("uploadpack.allowTipSHA1InWant=" + tip_ids);
        const Run set = run({"git", "--git-dir=" + theme.bare().string(), "config", "uploadpack.allowTipSHA1InWant", tip_ids});
        ASSERT_EQ(set.code, 0) << describe(set);
        const stdfs::path dir = tmp() / ("local-" + tip_ids + ".git");
        GitRepo repo(dir);
        ASSERT_EQ(repo.fetch_branch(src.url(), "main", local_ok()), sha);
        RecordingRemote remote{ssh.options};
        hooks::fetch_submodules(repo, sha, src.url(), local_ok().policy, remote.fn());
        EXPECT_EQ(remote.urls, std::vector<std::string>{url});
        EXPECT_EQ(repo.find_commit(tip), tip) << "the default branch was not fetched";
        const Run ref = run({"git", "--git-dir=" + dir.string(), "rev-parse", "refs/sitesfs/modules/" + pinned});
        EXPECT_EQ(ref.out, pinned + "\n") << describe(ref);
        repo.write_tree(sha, release(tip_ids), {}, hooks::Submodules::Recursive);
        EXPECT_EQ(slurp(release(tip_ids) / "t" / "a"), "pinned");
    }
}

TEST_F(GitRepoTest, SubmoduleFilesCountAgainstTheLimits) {
    const ThemedSite s = themed_site(tmp(), "../../theme/origin.git");
    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(s.site_url, "main", local_ok()), s.site);
    RecordingRemote remote;
    hooks::fetch_submodules(repo, s.site, s.site_url, local_ok().policy, remote.fn());
    const TreeReport all = repo.write_tree(s.site, release("all"), {}, hooks::Submodules::Recursive);
    uint64_t entries = 0;
    for (auto it = stdfs::recursive_directory_iterator(release("all")); it != stdfs::recursive_directory_iterator(); ++it)
        ++entries;

    TreeLimits exact;
    exact.max_files = entries;
    exact.max_bytes = all.bytes;
    EXPECT_EQ(repo.write_tree(s.site, release("exact"), exact, hooks::Submodules::Recursive).files, all.files);

    // "themes" sorts last: the entry over the limit is in the submodule, while the site's own fit.
    TreeLimits files;
    files.max_files = entries - 1;
    const std::string too_many = git_error([&] { repo.write_tree(s.site, release("files"), files, hooks::Submodules::Recursive); });
    EXPECT_NE(too_many.find("more than " + std::to_string(entries - 1) + " files and directories"), std::string::npos) << too_many;
    EXPECT_NE(too_many.find(", at themes/t/"), std::string::npos) << too_many;

    TreeLimits bytes;
    bytes.max_bytes = all.bytes - 1;
    const std::string too_big = git_error([&] { repo.write_tree(s.site, release("bytes"), bytes, hooks::Submodules::Recursive); });
    EXPECT_NE(too_big.find("more than " + std::to_string(all.bytes - 1) + " bytes"), std::string::npos) << too_big;
    EXPECT_NE(too_big.find(", at themes/t/"), std::string::npos) << too_big;
}

// Each commit of one repository pins the one before it at x: commit k is k submodules deep.
TEST_F(GitRepoTest, SubmodulesNestedTooDeepAreRefused) {
    TestRepo src(tmp() / "src");
    std::vector<std::string> chain{src.commit({{"index.html", "0"}, {".gitmodules", gitmodules_section("x", "x", src.url())}})};
    for (int k = 1; k <= hooks::kMaxSubmoduleDepth + 1; ++k) chain.push_back(commit_gitlinks(src, {{"x", chain.back()}}));
    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(src.url(), "main", local_ok()), chain.back());
    RecordingRemote remote;

    const std::string deepest = chain[hooks::kMaxSubmoduleDepth];
    hooks::fetch_submodules(repo, deepest, src.url(), local_ok().policy, remote.fn());
    repo.write_tree(deepest, release("ok"), {}, hooks::Submodules::Recursive);
    EXPECT_EQ(slurp(release("ok") / "x/x/x/x/x/x/x/x/index.html"), "0");
    EXPECT_TRUE(remote.urls.empty());

    const std::string expected = "submodules nest deeper than 8 levels at x/x/x/x/x/x/x/x/x";
    EXPECT_EQ(git_error([&] { hooks::fetch_submodules(repo, chain.back(), src.url(), local_ok().policy, remote.fn()); }),
              expected);
    EXPECT_EQ(git_error([&] { repo.write_tree(chain.back(), release("deep"), {}, hooks::Submodules::Recursive); }),
              expected);
}

// Two names for one subtree at each of 60 levels: 2^60 paths, which the walk must not visit one by one.
TEST_F(GitRepoTest, GitlinksOfRepeatedSubtreesAreListedQuickly) {
    TestRepo src(tmp() / "src");
    const std::string first = src.commit({{"index.html", "x"}});
    const std::string doubled = "for i in $(seq 60); do t=$(printf \"040000 tree $t\\ta\\n040000 tree $t\\tb\\n\" | git mktree) || exit 1; done && echo $t";
    const std::string plain = push_script_tree(src, "t=$(printf '100644 blob " + blob(src, "leaf") + "\\tf\\n' | git mktree) && " + doubled, "plain");
    const std::string linked = push_script_tree(src, "t=$(printf '160000 commit " + first + "\\tm\\n' | git mktree) && " + doubled, "linked");
    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(src.url(), "plain", local_ok()), plain);
    ASSERT_EQ(repo.fetch_branch(src.url(), "linked", local_ok()), linked);
    EXPECT_TRUE(repo.gitlinks(plain, hooks::kMaxSubmodules).empty());
    const std::vector<hooks::Gitlink> links = repo.gitlinks(linked, hooks::kMaxSubmodules);
    EXPECT_EQ(links.size(), hooks::kMaxSubmodules + 1);
    std::string first_path;
    for (int level = 0; level < 60; ++level) first_path += "a/";
    EXPECT_EQ(links.front().path, first_path + "m");
    EXPECT_EQ(links.front().commit, first);
}

TEST_F(GitRepoTest, MoreSubmodulesThanTheLimitAreRefused) {
    TestRepo src(tmp() / "src");
    const std::string first = src.commit({{"index.html", "x"}});
    std::string lines;
    for (size_t i = 0; i <= hooks::kMaxSubmodules; ++i)
        lines += "160000 commit " + first + "\\tm" + std::to_string(100 + i) + "\\n";
    const std::string over = push_tree(src, lines, "over");
    const std::string at = push_tree(src, lines.substr(lines.find("\\n") + 2), "at");
    GitRepo repo(local());
    ASSERT_EQ(repo.fetch_branch(src.url(), "over", local_ok()), over);
    ASSERT_EQ(repo.fetch_branch(src.url(), "at", local_ok()), at);
    RecordingRemote remote;
    EXPECT_EQ(git_error([&] { hooks::fetch_submodules(repo, over, src.url(), local_ok().policy, remote.fn()); }),
              "more than 64 submodules, nested ones included (at m164); a release holds at most that many");
    // At the limit the count is fine, and the next thing wrong is what is said.
    const std::string error = git_error([&] { hooks::fetch_submodules(repo, at, src.url(), local_ok().policy, remote.fn()); });
    EXPECT_TRUE(error.starts_with("submodule m101: commit " + at.substr(0, 12) + " has no .gitmodules")) << error;
}

TEST(Gitmodules, ReadAsGitReadsThem) {
    const std::string text =
        "\xef\xbb\xbf# comment\r\n"
        "[submodule \"theme\"]\r\n"
        "\tpath = themes/ananke ; a comment\n"
        "\tURL = \"https://example.com/first.git\"\n"
        "\tupdate = !rm -rf /\n"
        "\tbranch = main\n"
        "\tshallow\n"
        "[core]\n"
        "\tbare = true\n"
        "[submodule \"a \\\"b\\\"\"] path = p\\\n"
        "q\\tr  s # a comment\n"
        "  url = \"../x;y.git\"  # a comment\n"
        "[SubModule \"theme\"]\n"
        "\turl = ../theme.git\n";
    const std::vector<hooks::SubmoduleEntry> entries = hooks::parse_gitmodules(text, ".gitmodules");
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].name, "theme");
    EXPECT_EQ(entries[0].path, "themes/ananke");
    EXPECT_EQ(entries[0].url, "../theme.git");
    EXPECT_EQ(entries[0].line, 2);
    EXPECT_EQ(entries[1].name, "a \"b\"");
    EXPECT_EQ(entries[1].path, "pq\tr  s");
    EXPECT_EQ(entries[1].url, "../x;y.git");
    EXPECT_EQ(entries[1].line, 10);
}

TEST(Gitmodules, ErrorsNameTheFileAndLine) {
    const auto error = [](const std::string& text) {
        return git_error([&] { hooks::parse_gitmodules(text, ".gitmodules of commit abc"); });
    };
    EXPECT_EQ(error("[submodule \"a\"]\n\tpath = x\n[submodule \"b\"\n"),
              ".gitmodules of commit abc, line 3: \"NAME\" is followed by ']'; write [submodule \"NAME\"]");
    EXPECT_EQ(error("[submodule \"a\"]\n\turl = a\\qb\n"),
              ".gitmodules of commit abc, line 2: unknown escape '\\q'; write \\\\ for a backslash");
    EXPECT_EQ(error("[submodule \"a\"]\n\turl = \"abc\n"), ".gitmodules of commit abc, line 2: a value has no closing '\"'");
    EXPECT_EQ(error("\n[submodule.theme]\n"),
              ".gitmodules of commit abc, line 2: [submodule.theme] is the old form of a section name; write [submodule \"NAME\"]");
    EXPECT_EQ(error("[submodule \"a\"]\n\tpath\n"), ".gitmodules of commit abc, line 2: path has no value; write path = VALUE");
    EXPECT_EQ(error("[submodule \"a\"]\n\t= x\n"),
              ".gitmodules of commit abc, line 2: '=' cannot start a line; write [submodule \"NAME\"], KEY = VALUE or a # comment");
    EXPECT_EQ(error("[submodule \"a\"\n"), ".gitmodules of commit abc, line 1: \"NAME\" is followed by ']'; write [submodule \"NAME\"]");
    EXPECT_EQ(error("[submodule]\n"), ".gitmodules of commit abc, line 1: [submodule] needs a name; write [submodule \"NAME\"]");
    EXPECT_EQ(error(std::string("[submodule \"a\"]\n\tpath = a") + '\0' + "b\n"),
              ".gitmodules of commit abc, line 2: a NUL byte; .gitmodules is a text file");
}

TEST(SubmoduleUrl, RelativeToTheSuperproject) {
    using hooks::resolve_submodule_url;
    const std::string site = "https://example.com/owner/site.git";
    EXPECT_EQ(resolve_submodule_url("../theme.git", site), "https://example.com/owner/theme.git");
    EXPECT_EQ(resolve_submodule_url("../../other/theme.git", site), "https://example.com/other/theme.git");
    EXPECT_EQ(resolve_submodule_url("./../theme.git/", site + "/"), "https://example.com/owner/theme.git");
    EXPECT_EQ(resolve_submodule_url("./modules/theme", site), "https://example.com/owner/site.git/modules/theme");
    EXPECT_EQ(resolve_submodule_url("../theme.git", "ssh://git@example.com:2222/owner/site.git"),
              "ssh://git@example.com:2222/owner/theme.git");
    EXPECT_EQ(resolve_submodule_url("../theme.git", "git@example.com:owner/site.git"), "git@example.com:owner/theme.git");
    EXPECT_EQ(resolve_submodule_url("../../theme.git", "git@example.com:owner/site.git"), "git@example.com:theme.git");
    EXPECT_EQ(resolve_submodule_url("../theme.git", "/srv/git/site.git"), "/srv/git/theme.git");
    EXPECT_EQ(resolve_submodule_url("../../../theme.git", "/srv/git/site.git"), "/theme.git");
    EXPECT_EQ(resolve_submodule_url("../theme.git", "file:///srv/git/site.git"), "file:///srv/git/theme.git");
    EXPECT_EQ(resolve_submodule_url("../theme", "owner/site"), "https://github.com/owner/theme");
    // Anything else is a URL of its own.
    EXPECT_EQ(resolve_submodule_url("https://other.example/theme.git", site), "https://other.example/theme.git");
    EXPECT_EQ(resolve_submodule_url("gohugoio/theme", site), "gohugoio/theme");
    EXPECT_EQ(resolve_submodule_url("..theme", site), "..theme");

    for (const auto& [url, super] : std::vector<std::pair<std::string, std::string>>{
             {"../../../x.git", site},
             {"../../../x.git", "git@example.com:owner/site.git"},
             {"../../../../x.git", "/srv/git/site.git"},
             {"../../../../x.git", "file:///srv/git/site.git"}}) {
        EXPECT_EQ(git_error([&] { resolve_submodule_url(url, super); }),
                  "'" + url + "' climbs above the top of " + super + " (each ../ takes off one part of its path)");
    }
}

}  // namespace
}  // namespace sitesfs::it
