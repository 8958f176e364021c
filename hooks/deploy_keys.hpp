// Deploy keys: resolving a site's deploy_key_ref (PROVIDER:NAME) to the private key, held only in
// process memory for the duration of one git operation and wiped afterwards. Never written to a
// file (tmpfs included), never logged, never in argv or the environment of any process.
#pragma once

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sitesfs::hooks {

// Why a ref could not be resolved, for `status`: "deploy key file:blog: /run/secrets/blog is
// readable by group or others (chmod 600 it)", "deploy key cmd:blog: dota exited 1: not found".
// Never contains key material.
struct KeyError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct KeyProviders {
    // file:NAME reads keys_dir/NAME. Empty: the file provider is not configured.
    std::filesystem::path keys_dir;
    // cmd:NAME runs command + {NAME}; its stdout is the key. Empty: not configured.
    std::vector<std::string> command;
    std::chrono::milliseconds command_timeout{10000};
};

// Bytes that are zeroed (explicit_bzero) when destroyed or moved from; not copyable.
class SecretBuffer {
public:
    SecretBuffer() = default;
    explicit SecretBuffer(std::string bytes);
    ~SecretBuffer();
    SecretBuffer(SecretBuffer&& other) noexcept;
    SecretBuffer& operator=(SecretBuffer&& other) noexcept;
    SecretBuffer(const SecretBuffer&) = delete;
    SecretBuffer& operator=(const SecretBuffer&) = delete;

    const char* c_str() const { return bytes_.c_str(); }
    size_t size() const { return bytes_.size(); }
    bool empty() const { return bytes_.empty(); }
    std::string_view view() const { return bytes_; }
    // Drops trailing line ends (zeroed first).
    void trim_newline();

private:
    void wipe();
    std::string bytes_;
};

// Resolves "file:NAME" or "cmd:NAME" (already validated by the schema). file: NAME may not
// contain '/' or be "." / "..", the file is opened with O_NOFOLLOW relative to the keys dir (no
// symlink out), must be a regular file not readable by group or others, at most 64 KiB.
// cmd: argv run directly (no shell), NAME as its last argument, stdin /dev/null, a timeout, exit 0
// required, stdout read into locked memory; its stderr never holds the key, so its last lines are
// logged and, on failure, shown in the error. The result must look like a private key
// ("-----BEGIN ... PRIVATE KEY-----"), and not be of a type that cannot log in: DSA, FIDO (sk-) and,
// with a libssh2 older than 1.11, RSA (OpenSSH, PEM and PKCS#8 files are read that far; a type not
// recognised is left to libssh2).
// Throws KeyError.
SecretBuffer resolve_deploy_key(const KeyProviders& providers, std::string_view ref);

// Any other secret by the same providers and rules, with no check of its form and its trailing
// newline dropped: the etcd password ([store] password_ref). `what` names it in errors.
SecretBuffer resolve_secret(const KeyProviders& providers, std::string_view ref, std::string_view what);

}  // namespace sitesfs::hooks
