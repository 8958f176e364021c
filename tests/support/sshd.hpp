// A real OpenSSH sshd (Debian's package) for one test, serving one bare repository read-only
// to the system user user() through forced `git-upload-pack` commands: the way a git host
// serves a deploy key. Runs as root on 127.0.0.1 with its own config, host key and authorized
// keys in the test's dir; stopped by the destructor, also when the test fails.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace sitesfs::it {

class SshServer {
public:
    // `dir` is a directory the test owns (it must exist). Creates the system user user() if it
    // does not exist yet (left in place: other tests use it too) and a new ed25519 host key.
    explicit SshServer(const std::filesystem::path& dir);
    ~SshServer();
    SshServer(const SshServer&) = delete;
    SshServer& operator=(const SshServer&) = delete;

    // `sshd -D -e` in the background; returns once it accepts connections on port(), or false
    // with `why` filled (sshd's log tail included).
    bool start(std::string* why);
    void stop();

    int port() const { return port_; }
    // "SHA256:..." of the current host key, as `ssh-keygen -lf` prints it.
    std::string host_key_fingerprint() const;
    // A new host key; sshd reads host keys when it starts, so it takes effect at the next start().
    void rotate_host_key();

    // Makes `bare` readable by user() (a+rX on the repo, o+x on the directories above it) and
    // points every client key's forced command at it. Pushes to it stay readable: the repo is
    // set to core.sharedRepository=all.
    void serve_repo(const std::filesystem::path& bare);
    // A new key pair (`ssh-keygen -t TYPE`) in DIR/clients/NAME that may fetch the served repo (and
    // do nothing else: `restrict`). Returns the private key's text (OpenSSH format).
    std::string add_client_key(const std::string& name, const std::string& type = "ed25519");

    std::string user() const;
    // ssh://USER@127.0.0.1:PORT/path/to/bare.git
    std::string url() const;
    std::filesystem::path log_file() const;

private:
    void write_authorized_keys() const;
    void write_config() const;

    std::filesystem::path dir_;
    std::filesystem::path repo_;
    std::vector<std::string> client_keys_;  // public key lines
    int port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace sitesfs::it
