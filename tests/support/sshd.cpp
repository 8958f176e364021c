#include "tests/support/sshd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "tests/integration/mount_fixture.hpp"
#include "tests/support/caddy.hpp"

namespace sitesfs::it {

namespace {

constexpr char kUser[] = "sitesfs-git";

void must(const Run& r, const std::string& what) {
    if (r.code != 0) throw std::runtime_error(what + ": " + describe(r));
}

// useradd takes /etc/passwd's lock, so tests creating the user at the same time are safe; the
// loser fails with "already exists", which is what it wanted.
void ensure_user() {
    if (getpwnam(kUser)) return;
    // The password field "*" instead of useradd's "!": with UsePAM no, sshd refuses public-key
    // logins to accounts whose password is locked with '!'. git-shell as the login shell means a
    // key without a forced command could still only run git's transport commands.
    const Run r =
        run({"useradd", "--system", "--create-home", "--shell", "/usr/bin/git-shell", "--password", "*", kUser});
    if (!getpwnam(kUser))
        throw std::runtime_error(std::string("cannot create the user ") + kUser + ": " + describe(r));
}

// git-upload-pack runs as user() on repositories that root owns (tests make and push them as
// root), which git refuses as "dubious ownership" unless the user's own config trusts them.
// Written once, by rename, so a test starting in parallel never reads half a file.
void trust_repos_of_others() {
    const passwd* pw = getpwnam(kUser);
    if (!pw) throw std::runtime_error(std::string("no user ") + kUser);
    const std::filesystem::path home = pw->pw_dir, config = home / ".gitconfig";
    const std::string text = "[safe]\n\tdirectory = *\n";
    if (slurp(config) == text) return;
    std::filesystem::create_directories(home);
    const auto temp = home / (".gitconfig.tmp." + std::to_string(::getpid()));
    spit(temp, text);
    std::filesystem::permissions(temp, std::filesystem::perms(0644));
    std::filesystem::rename(temp, config);
}

// user() reads the authorized keys (sshd opens them with the user's uid) and the repo, so every
// directory above them must be searchable by others; mkdtemp made the test's dir 0700.
void make_traversable(const std::filesystem::path& p) {
    for (auto d = p; d != d.root_path() && !d.empty(); d = d.parent_path()) {
        struct stat st;
        if (::stat(d.c_str(), &st) != 0) throw std::runtime_error("stat " + d.string() + ": " + std::strerror(errno));
        if (S_ISDIR(st.st_mode) && !(st.st_mode & S_IXOTH) && ::chmod(d.c_str(), (st.st_mode & 07777) | S_IXOTH) != 0)
            throw std::runtime_error("chmod o+x " + d.string() + ": " + std::strerror(errno));
    }
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
}

}  // namespace

SshServer::SshServer(const std::filesystem::path& dir) : dir_(std::filesystem::absolute(dir)), port_(free_port()) {
    ensure_user();
    trust_repos_of_others();
    std::filesystem::create_directories(dir_ / "clients");
    make_traversable(dir_);
    // sshd's privilege separation chroot; no init system made it here.
    std::filesystem::create_directories("/run/sshd");
    std::filesystem::permissions("/run/sshd", std::filesystem::perms(0755));
    rotate_host_key();
    write_authorized_keys();
}

SshServer::~SshServer() { stop(); }

bool SshServer::start(std::string* why) {
    // A second start() (say after rotate_host_key()) replaces the running sshd.
    stop();
    const auto pid_file = dir_ / "sshd.pid";
    const auto fail = [&](const std::string& what) {
        if (why) *why = what + "; sshd.log ends with:\n" + tail_lines(slurp(log_file()), 20);
        stop();
        return false;
    };
    // free_port()'s port can be taken before sshd binds it; then sshd exits and another port is
    // tried.
    for (int attempt = 0;; ++attempt) {
        write_config();
        // A pid file left by an earlier start would look like this sshd is up.
        std::filesystem::remove(pid_file);
        // The log is appended to across starts; only this start's part says why it failed.
        const size_t log_start = slurp(log_file()).size();
        pid_ = spawn_logged({"/usr/sbin/sshd", "-D", "-e", "-f", (dir_ / "sshd_config").string()}, log_file());
        if (pid_ < 0) return fail("cannot start sshd: " + std::string(std::strerror(errno)));
        std::optional<int> exited;
        // The pid file as well as the port: sshd writes it once it listens, and something else
        // may be listening on a port free_port() handed out.
        const bool up = eventually(
            [&] {
                if ((exited = wait_child(pid_, Ms(0)))) return true;
                return std::filesystem::exists(pid_file) && port_accepts(port_);
            },
            10s);
        if (exited) {
            pid_ = -1;
            if (attempt < 3 && slurp(log_file()).find("Cannot bind any address", log_start) != std::string::npos) {
                port_ = free_port();
                continue;
            }
            return fail("sshd exited (" + wait_status_text(*exited) + ") before serving port " + std::to_string(port_));
        }
        if (!up) return fail("sshd did not accept connections on port " + std::to_string(port_) + " within 10 s");
        return true;
    }
}

void SshServer::stop() {
    if (pid_ > 0) terminate_child(pid_);
    pid_ = -1;
}

std::string SshServer::host_key_fingerprint() const {
    const Run r = run({"ssh-keygen", "-l", "-f", (dir_ / "host_ed25519.pub").string()});
    must(r, "ssh-keygen -l");
    // "256 SHA256:... comment (ED25519)"
    const auto start = r.out.find(' ');
    const auto end = r.out.find(' ', start + 1);
    if (start == std::string::npos || end == std::string::npos)
        throw std::runtime_error("unexpected ssh-keygen -l output: " + r.out);
    return r.out.substr(start + 1, end - start - 1);
}

void SshServer::rotate_host_key() {
    const auto key = dir_ / "host_ed25519";
    // ssh-keygen asks before overwriting, and stdin is /dev/null.
    std::filesystem::remove(key);
    std::filesystem::remove(key.string() + ".pub");
    must(run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sitesfs-test-host", "-f", key.string()}),
         "ssh-keygen (host key)");
}

void SshServer::serve_repo(const std::filesystem::path& bare) {
    const auto repo = std::filesystem::absolute(bare);
    // It goes into a single-quoted forced command.
    if (repo.string().find_first_of("'\"\\\n") != std::string::npos)
        throw std::runtime_error("cannot serve a repo whose path has quotes: " + repo.string());
    must(run({"git", "config", "--file", (repo / "config").string(), "core.sharedRepository", "all"}),
         "git config core.sharedRepository");
    must(run({"chmod", "-R", "a+rX", repo.string()}), "chmod -R a+rX " + repo.string());
    make_traversable(repo.parent_path());
    repo_ = repo;
    write_authorized_keys();
}

std::string SshServer::add_client_key(const std::string& name, const std::string& type) {
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
        throw std::runtime_error("bad client key name: " + name);
    const auto key = dir_ / "clients" / name;
    std::filesystem::remove(key);
    std::filesystem::remove(key.string() + ".pub");
    must(run({"ssh-keygen", "-q", "-t", type, "-N", "", "-C", name, "-f", key.string()}),
         "ssh-keygen (client key)");
    client_keys_.push_back(trimmed(slurp(key.string() + ".pub")));
    write_authorized_keys();
    return slurp(key);
}

std::string SshServer::user() const { return kUser; }

std::string SshServer::url() const {
    return "ssh://" + user() + "@127.0.0.1:" + std::to_string(port_) + repo_.string();
}

std::filesystem::path SshServer::log_file() const { return dir_ / "sshd.log"; }

// sshd reads the file at every login, so changes need no restart. Before serve_repo() there is
// nothing a key could fetch, so no key is authorized.
void SshServer::write_authorized_keys() const {
    std::string text;
    if (!repo_.empty())
        for (const auto& key : client_keys_)
            text += "restrict,command=\"git-upload-pack '" + repo_.string() + "'\" " + key + "\n";
    const auto file = dir_ / "authorized_keys";
    spit(file, text);
    std::filesystem::permissions(file, std::filesystem::perms(0644));
}

void SshServer::write_config() const {
    spit(dir_ / "sshd_config",
         "ListenAddress 127.0.0.1:" + std::to_string(port_) + "\n" +
             "HostKey " + (dir_ / "host_ed25519").string() + "\n" +
             "PidFile " + (dir_ / "sshd.pid").string() + "\n" +
             "AuthorizedKeysFile " + (dir_ / "authorized_keys").string() + "\n" +
             // The test's dir is root's and group/other-searchable only; StrictModes would refuse it.
             "StrictModes no\n"
             "UsePAM no\n"
             "AuthenticationMethods publickey\n"
             "PasswordAuthentication no\n"
             "KbdInteractiveAuthentication no\n"
             "PermitRootLogin no\n"
             "AllowUsers " + std::string(kUser) + "\n"
             "PrintMotd no\n"
             // "Accepted publickey" / "Failed publickey" lines in the log for failing tests.
             "LogLevel VERBOSE\n");
}

}  // namespace sitesfs::it
