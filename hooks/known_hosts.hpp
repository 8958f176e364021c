// sitesfs's own known-hosts store: one pinned host key per host:port, under the state dir
// (STATE/known_hosts), checked in libgit2's certificate callback against the SHA-256 of the raw
// key. libgit2's own lookup in $HOME/.ssh/known_hosts is never used.
#pragma once

#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

namespace sitesfs::hooks {

enum class HostKeyPolicy {
    AcceptNew,  // trust on first use: an unknown host's key is recorded (default)
    Strict,     // the host must already be pinned (config file or NixOS module)
};

struct HostKeyError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class KnownHosts {
public:
    // `file` holds lines "HOST:PORT SHA256:BASE64" (OpenSSH's fingerprint form); `pins` (from the
    // config) are added to it and win over the file. The file is created 0600 on first record.
    KnownHosts(std::filesystem::path file, HostKeyPolicy policy, std::map<std::string, std::string> pins = {});

    // Checks the key a server presented (`sha256` is the raw 32-byte digest libgit2 gives in
    // git_cert_hostkey::hash_sha256). Returns normally when it is the pinned key, or records it
    // under accept-new. Throws HostKeyError: a changed key names both fingerprints ("host key of
    // git.example.com:22 changed: pinned SHA256:abc..., offered SHA256:def...; if the change is
    // expected, remove the line from STATE/known_hosts"); strict mode with no pin says how to pin.
    void check(const std::string& host, int port, const unsigned char sha256[32]);

    // "SHA256:" + unpadded base64, as `ssh-keygen -lf` prints it.
    static std::string fingerprint(const unsigned char sha256[32]);

private:
    std::filesystem::path file_;
    HostKeyPolicy policy_;
    std::map<std::string, std::string> pins_;
    std::mutex mu_;
};

}  // namespace sitesfs::hooks
