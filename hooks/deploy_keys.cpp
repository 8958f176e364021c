#include "hooks/deploy_keys.hpp"

#include "hooks/command.hpp"
#include "common/fd.hpp"
#include "common/text.hpp"

#include <fcntl.h>
#include <libssh2.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>


namespace sitesfs::hooks {

namespace {

namespace stdfs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

// An OpenSSH RSA-4096 key is about 3.4 KiB; anything far bigger is not a key.
constexpr size_t kMaxKey = 64 * 1024;
// stderr of the key command is only kept for the log and the error message: its last 4 KiB, since
// a program says why it failed at the end.
constexpr size_t kMaxStderr = 4096;
constexpr size_t kMaxLoggedLines = 20;
constexpr size_t kMaxLineBytes = 300;
// The error message shows the last lines, on one line (a status file shows an error on one line).
constexpr size_t kShownLines = 5;
constexpr size_t kMaxShownBytes = 400;
constexpr std::string_view kCut = "…";

// explicit_bzero cannot be optimised away. The whole capacity, not just size(): bytes past size()
// (a string shortened with resize, or the SSO buffer of a moved-from string) may still hold key
// material. munlock undoes the best-effort mlock of KeyScratch; on memory that was never locked it
// is a no-op.
void wipe_string(std::string& s) {
    if (s.capacity() == 0) return;
    explicit_bzero(s.data(), s.capacity());
    munlock(s.data(), s.capacity());
    s.clear();
}

// The buffer a key is read into: allocated once at its maximum size so it never reallocates (a
// reallocation would leave an unwiped copy on the heap), locked in RAM when the limit allows, and
// wiped unless handed over to a SecretBuffer.
class KeyScratch {
public:
    KeyScratch() {
        bytes_.resize(kMaxKey + 1);
        // Best effort: without CAP_IPC_LOCK the RLIMIT_MEMLOCK may be too small, and a key that
        // could in theory reach swap is still better than no key.
        mlock(bytes_.data(), bytes_.capacity());
    }
    ~KeyScratch() { wipe_string(bytes_); }
    KeyScratch(const KeyScratch&) = delete;
    KeyScratch& operator=(const KeyScratch&) = delete;

    char* tail() { return bytes_.data() + used_; }
    // One byte more than kMaxKey fits, so overflowing input is detected rather than cut.
    size_t room() const { return bytes_.size() - used_; }
    void advance(size_t n) { used_ += n; }
    size_t used() const { return used_; }
    bool too_big() const { return used_ > kMaxKey; }
    std::string_view view() const { return {bytes_.data(), used_}; }

    // Shrinking keeps the allocation, and moving a heap string hands over its pointer: the key
    // bytes stay in this one buffer.
    SecretBuffer release() {
        bytes_.resize(used_);
        return SecretBuffer(std::move(bytes_));
    }

private:
    std::string bytes_;
    size_t used_ = 0;
};

bool looks_like_private_key(std::string_view bytes) {
    return bytes.find("-----BEGIN ") != std::string_view::npos &&
           bytes.find("PRIVATE KEY-----") != std::string_view::npos;
}

// What is being resolved, for messages and for the checks only a private key needs.
struct SecretRef {
    std::string_view text;  // PROVIDER:NAME
    std::string_view what;  // "deploy key", "etcd password"
    bool private_key = true;
};

[[noreturn]] void fail(const SecretRef& ref, const std::string& why) {
    throw KeyError(std::string(ref.what) + " " + std::string(ref.text) + ": " + why);
}

// ---- key types ----
// libssh2 decides whether it can read a key, but some keys it reads can never log in anywhere
// that matters; those are refused before connecting, with the reason, instead of ending as "the
// server refused deploy key". Only the public header of a key is decoded: the type comes first,
// the secret part after it is never decoded or copied.

enum class KeyType { other, rsa, dsa, security_key };

// Decodes base64 a byte at a time, on demand. Stops at the first byte that is not base64 or
// whitespace ('=' padding, the "-----END" line).
class Base64Reader {
public:
    explicit Base64Reader(std::string_view text) : text_(text) {}
    // A group is 3 bytes; the last one read may reach a little past what was asked for.
    ~Base64Reader() { explicit_bzero(group_.data(), group_.size()); }
    Base64Reader(const Base64Reader&) = delete;
    Base64Reader& operator=(const Base64Reader&) = delete;

    bool next(unsigned char& out) {
        if (used_ == have_ && !refill()) return false;
        out = group_[used_++];
        return true;
    }
    bool read(unsigned char* out, size_t n) {
        for (size_t i = 0; i < n; ++i)
            if (!next(out[i])) return false;
        return true;
    }
    bool skip(size_t n) {
        unsigned char ignored;
        for (size_t i = 0; i < n; ++i)
            if (!next(ignored)) return false;
        return true;
    }
    // SSH wire format: big-endian.
    bool u32(uint32_t& out) {
        std::array<unsigned char, 4> b;
        if (!read(b.data(), b.size())) return false;
        out = uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3];
        return true;
    }

private:
    static int value(char c) {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    }
    bool refill() {
        uint32_t bits = 0;
        size_t chars = 0;
        while (chars < 4 && pos_ < text_.size()) {
            const char c = text_[pos_++];
            if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
            const int v = value(c);
            if (v < 0) {
                pos_ = text_.size();
                break;
            }
            bits = bits << 6 | static_cast<uint32_t>(v);
            ++chars;
        }
        if (chars < 2) return false;
        bits <<= 6 * (4 - chars);
        group_ = {static_cast<unsigned char>(bits >> 16), static_cast<unsigned char>(bits >> 8),
                  static_cast<unsigned char>(bits)};
        have_ = chars - 1;
        used_ = 0;
        return true;
    }

    std::string_view text_;
    size_t pos_ = 0;
    std::array<unsigned char, 3> group_{};
    size_t have_ = 0;
    size_t used_ = 0;
};

// "openssh-key-v1\0", string ciphername, string kdfname, string kdfoptions, uint32 nkeys, then
// the first public key as a string whose first field is its type. All of it is stored in the
// clear, also in a key encrypted with a passphrase.
KeyType openssh_key_type(std::string_view body) {
    Base64Reader in(body);
    static constexpr char kMagic[] = "openssh-key-v1";  // with its NUL, as in the file
    std::array<unsigned char, sizeof kMagic> magic;
    if (!in.read(magic.data(), magic.size()) || std::memcmp(magic.data(), kMagic, sizeof kMagic) != 0)
        return KeyType::other;
    // Bounds that no real key comes near, so a damaged length cannot make us decode the secret part.
    constexpr uint32_t kMaxField = 1024;
    uint32_t n = 0;
    for (int field = 0; field < 3; ++field)
        if (!in.u32(n) || n > kMaxField || !in.skip(n)) return KeyType::other;
    if (!in.u32(n) || n == 0) return KeyType::other;  // number of keys
    if (!in.u32(n)) return KeyType::other;            // length of the first public key
    std::array<char, 64> type;
    uint32_t len = 0;
    if (!in.u32(len) || len > type.size() || !in.read(reinterpret_cast<unsigned char*>(type.data()), len))
        return KeyType::other;
    const std::string_view name(type.data(), len);
    if (name == "ssh-rsa") return KeyType::rsa;
    if (name == "ssh-dss") return KeyType::dsa;
    if (name.starts_with("sk-")) return KeyType::security_key;
    return KeyType::other;
}

// A DER tag and length.
bool der_header(Base64Reader& in, unsigned char tag, size_t& len) {
    unsigned char b = 0;
    if (!in.next(b) || b != tag || !in.next(b)) return false;
    if (b < 0x80) {
        len = b;
        return true;
    }
    const size_t bytes = b & 0x7f;
    if (bytes == 0 || bytes > 4) return false;
    len = 0;
    for (size_t i = 0; i < bytes; ++i) {
        if (!in.next(b)) return false;
        len = len << 8 | b;
    }
    return true;
}

// PKCS#8 PrivateKeyInfo: SEQUENCE { INTEGER version, SEQUENCE { OBJECT IDENTIFIER algorithm, ... },
// OCTET STRING key }. (An EncryptedPrivateKeyInfo names only its cipher: its type stays unknown.)
KeyType pkcs8_key_type(std::string_view body) {
    Base64Reader in(body);
    size_t len = 0;
    if (!der_header(in, 0x30, len)) return KeyType::other;
    if (!der_header(in, 0x02, len) || len > 8 || !in.skip(len)) return KeyType::other;
    if (!der_header(in, 0x30, len)) return KeyType::other;
    std::array<unsigned char, 16> oid;
    if (!der_header(in, 0x06, len) || len > oid.size() || !in.read(oid.data(), len)) return KeyType::other;
    const std::basic_string_view<unsigned char> algorithm(oid.data(), len);
    static constexpr unsigned char kRsaEncryption[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
    static constexpr unsigned char kRsassaPss[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a};
    static constexpr unsigned char kDsa[] = {0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01};
    if (algorithm == std::basic_string_view<unsigned char>(kRsaEncryption, sizeof kRsaEncryption) ||
        algorithm == std::basic_string_view<unsigned char>(kRsassaPss, sizeof kRsassaPss))
        return KeyType::rsa;
    if (algorithm == std::basic_string_view<unsigned char>(kDsa, sizeof kDsa)) return KeyType::dsa;
    return KeyType::other;
}

// The type of the first PEM block ("-----BEGIN LABEL-----").
KeyType key_type(std::string_view key) {
    constexpr std::string_view kBegin = "-----BEGIN ";
    const size_t begin = key.find(kBegin);
    if (begin == std::string_view::npos) return KeyType::other;
    const size_t label_start = begin + kBegin.size();
    const size_t label_end = key.find("-----", label_start);
    if (label_end == std::string_view::npos) return KeyType::other;
    const std::string_view label = key.substr(label_start, label_end - label_start);
    const std::string_view body = key.substr(label_end + 5);
    if (label == "RSA PRIVATE KEY") return KeyType::rsa;
    if (label == "DSA PRIVATE KEY") return KeyType::dsa;
    if (label == "OPENSSH PRIVATE KEY") return openssh_key_type(body);
    if (label == "PRIVATE KEY") return pkcs8_key_type(body);
    return KeyType::other;
}

[[noreturn]] void refuse_type(const SecretRef& ref, const std::string& why) {
    throw KeyError(std::string(ref.what) + " " + std::string(ref.text) + " is " + why +
                   ": make an ed25519 key (ssh-keygen -t ed25519) and use that");
}

// Keys of any other type (ed25519, ECDSA, and whatever is not recognised) are left to libssh2.
void refuse_unusable_type(const SecretRef& ref, const SecretBuffer& key) {
    switch (key_type({key.c_str(), key.size()})) {
    case KeyType::rsa:
        // libssh2 1.11 signs RSA logins with rsa-sha2-256/512 when the server offers them; older
        // ones only with ssh-rsa, whatever the server accepts.
        if (libssh2_version(0x010b00) == nullptr)
            refuse_type(ref, std::string("an RSA key; this sitesfs's libssh2 (") + libssh2_version(0) +
                                 ") can only sign RSA logins with SHA-1 (ssh-rsa), which OpenSSH 8.8+ and GitHub refuse");
        return;
    case KeyType::dsa:
        refuse_type(ref, "a DSA key; OpenSSH 7.0+ and GitHub refuse DSA (ssh-dss) logins");
    case KeyType::security_key:
        refuse_type(ref, "a FIDO security key (sk-...), which needs its hardware token at every login; "
                         "sitesfs has no token to ask");
    case KeyType::other:
        return;
    }
}

std::string errno_text(int err) { return strerror(err); }

// Taken before the message is built: the allocations building it may clobber errno.
std::string errno_text() { return errno_text(errno); }

SecretBuffer from_file(const KeyProviders& providers, const SecretRef& ref, std::string_view name) {
    if (providers.keys_dir.empty()) fail(ref, "no keys directory is configured ([keys] dir)");
    if (name.find('/') != std::string_view::npos || name == "." || name == "..")
        fail(ref, "the name may not contain '/' or be '.' or '..'");

    const stdfs::path file = providers.keys_dir / std::string(name);
    // The directory itself may be a link (systemd credentials, agenix's /run/agenix); only what is
    // inside it must be a plain file.
    const Fd dir(open(providers.keys_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0) {
        const std::string why = errno_text();
        fail(ref, "cannot open the keys directory " + providers.keys_dir.string() + ": " + why);
    }
    // O_NONBLOCK: opening a FIFO planted under the key's name must not hang the deploy.
    const Fd fd(openat(dir.get(), std::string(name).c_str(),
                       O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (fd.get() < 0) {
        const int err = errno;
        if (err == ELOOP)
            fail(ref, file.string() + " is a symbolic link; sitesfs only reads regular files inside the keys dir");
        if (err == ENOENT) fail(ref, file.string() + " does not exist");
        fail(ref, "cannot open " + file.string() + ": " + errno_text(err));
    }
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) {
        const std::string why = errno_text();
        fail(ref, "cannot stat " + file.string() + ": " + why);
    }
    if (!S_ISREG(st.st_mode)) fail(ref, file.string() + " is not a regular file");
    if ((st.st_mode & 044) != 0) fail(ref, file.string() + " is readable by group or others (chmod 600 it)");
    if ((st.st_mode & 077) != 0) fail(ref, file.string() + " is accessible by group or others (chmod 600 it)");
    if (static_cast<unsigned long long>(st.st_size) > kMaxKey)
        fail(ref, file.string() + " is larger than 64 KiB, too big to be a deploy key");

    KeyScratch key;
    for (;;) {
        const ssize_t n = read(fd.get(), key.tail(), key.room());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const std::string why = errno_text();
            fail(ref, "cannot read " + file.string() + ": " + why);
        }
        if (n == 0) break;
        key.advance(static_cast<size_t>(n));
        if (key.too_big()) fail(ref, file.string() + " is larger than 64 KiB, too big to be a deploy key");
    }
    if (key.used() == 0) fail(ref, file.string() + " is empty");
    if (ref.private_key && !looks_like_private_key(key.view())) fail(ref, file.string() + " does not look like a private key");
    return key.release();
}

// The command's stderr split into lines, without control characters (it goes into the log and a
// status file) and without empty lines.
std::vector<std::string> stderr_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::string line;
    const auto flush = [&] {
        while (!line.empty() && line.back() == ' ') line.pop_back();
        if (!line.empty()) lines.push_back(std::move(line));
        line.clear();
    };
    for (const char c : text) {
        if (c == '\n') flush();
        else if (c == '\t') line += ' ';
        else if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) line += c;
    }
    flush();
    return lines;
}

// ": LINE / LINE / ..." of the last kShownLines lines, at most kMaxShownBytes of them (cut in
// front, where the cut is marked); "" when there are none.
std::string shown_stderr(const std::vector<std::string>& lines) {
    if (lines.empty()) return "";
    std::string joined;
    for (size_t i = lines.size() - std::min(lines.size(), kShownLines); i < lines.size(); ++i) {
        if (!joined.empty()) joined += " / ";
        joined += lines[i];
    }
    if (joined.size() > kMaxShownBytes)
        joined = std::string(kCut) + std::string(utf8_tail(joined, kMaxShownBytes - kCut.size()));
    return ": " + joined;
}

// The key command's process group, killed and reaped however resolving ends.
class SpawnedCommand {
public:
    SpawnedCommand() = default;
    ~SpawnedCommand() { finish(); }
    SpawnedCommand(const SpawnedCommand&) = delete;
    SpawnedCommand& operator=(const SpawnedCommand&) = delete;

    // Kills what is left of the group (also after a clean exit: nothing the command started should
    // outlive it) and reaps the leader; its wait status, nullopt if that is lost (SIGCHLD ignored).
    std::optional<int> finish() {
        if (pid <= 0) return std::nullopt;
        kill(-pid, SIGKILL);
        int status = 0;
        pid_t rc;
        while ((rc = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
        }
        pid = -1;
        if (rc < 0) return std::nullopt;
        return status;
    }

    pid_t pid = -1;
    Fd out, err;
};

// Fills `cmd` in place: it owns a process that must not be copied around half-made.
void spawn_key_command(const SecretRef& ref, const std::vector<std::string>& argv, SpawnedCommand& cmd) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0) fail(ref, "pipe: " + errno_text());
    cmd.out = Fd(out[0]);
    Fd out_w(out[1]);
    if (pipe2(err, O_CLOEXEC) != 0) fail(ref, "pipe: " + errno_text());
    cmd.err = Fd(err[0]);
    Fd err_w(err[1]);

    // Its own process group, so the timeout also reaches whatever it started (gpg, a helper).
    const int rc = spawn_in_own_group(argv, out_w.get(), err_w.get(), cmd.pid);
    if (rc != 0) {
        cmd.pid = -1;
        fail(ref, "cannot run " + argv[0] + ": " + errno_text(rc));
    }
}

SecretBuffer from_command(const KeyProviders& providers, const SecretRef& ref, std::string_view name) {
    if (providers.command.empty()) fail(ref, "no key command is configured ([keys] command)");
    std::vector<std::string> argv = providers.command;
    argv.emplace_back(name);
    const std::string& program = argv[0];

    KeyScratch key;
    SpawnedCommand cmd;
    spawn_key_command(ref, argv, cmd);
    const auto deadline = SteadyClock::now() + providers.command_timeout;
    std::string err_text;
    bool err_cut = false;
    bool timed_out = false;
    char err_buf[1024];

    // Both pipes are drained together: a command that fills one while we block on the other
    // would otherwise stall until the deadline.
    while (cmd.out.get() >= 0 || cmd.err.get() >= 0) {
        pollfd fds[2] = {{cmd.out.get(), POLLIN, 0}, {cmd.err.get(), POLLIN, 0}};
        const int ready = poll(fds, 2, remaining_ms(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) fail(ref, "poll: " + errno_text());
        // remaining_ms waits 2^30 ms (12 days) at most at a time; a longer timeout waits again.
        if (ready == 0 && remaining_ms(deadline) > 0) continue;
        if (ready == 0) {
            timed_out = true;
            break;
        }
        if (fds[0].revents != 0) {
            const ssize_t n = read(cmd.out.get(), key.tail(), key.room());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) cmd.out.reset();
            else key.advance(static_cast<size_t>(n));
            // Stop reading rather than buffer without bound; the exit check below reports it.
            if (key.too_big()) break;
        }
        if (fds[1].revents != 0) {
            const ssize_t n = read(cmd.err.get(), err_buf, sizeof err_buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                cmd.err.reset();
            } else {
                err_text.append(err_buf, static_cast<size_t>(n));
                if (err_text.size() > kMaxStderr) {
                    err_text.erase(0, err_text.size() - utf8_tail(err_text, kMaxStderr).size());
                    err_cut = true;
                }
            }
        }
    }
    cmd.out.reset();
    cmd.err.reset();

    // The leader may have closed its output and still be running. WNOWAIT leaves it a zombie, so
    // its pid (the group id) cannot be reused before finish() kills the group.
    siginfo_t info{};
    for (;;) {
        if (timed_out || key.too_big()) break;
        info.si_pid = 0;
        const int rc = waitid(P_PID, static_cast<id_t>(cmd.pid), &info, WEXITED | WNOHANG | WNOWAIT);
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0 || info.si_pid != 0) break;
        if (remaining_ms(deadline) == 0) {
            timed_out = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const std::optional<int> reaped = cmd.finish();

    std::vector<std::string> lines = stderr_lines(err_text);
    // The first line kept may be the end of a longer one.
    if (err_cut && !lines.empty()) lines.front().insert(0, kCut);
    for (size_t i = lines.size() - std::min(lines.size(), kMaxLoggedLines); i < lines.size(); ++i)
        spdlog::warn("{} {}: {}", ref.what, ref.text, lines[i].substr(0, kMaxLineBytes));
    const std::string why = shown_stderr(lines);

    if (timed_out)
        fail(ref, program + " timed out after " + duration_text(providers.command_timeout) + " (killed)" + why);
    if (key.too_big()) fail(ref, program + " printed more than 64 KiB, too big to be a deploy key");
    if (!reaped) fail(ref, "the exit status of " + program + " was lost; cannot tell whether it succeeded");
    const int status = *reaped;
    if (WIFSIGNALED(status))
        fail(ref, program + " was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
                      strsignal(WTERMSIG(status)) + ")" + why);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail(ref, program + " exited " + std::to_string(WEXITSTATUS(status)) + why);
    if (key.used() == 0) fail(ref, program + " printed nothing on stdout" + why);
    if (ref.private_key && !looks_like_private_key(key.view()))
        fail(ref, "the output of " + program + " does not look like a private key");
    return key.release();
}

}  // namespace

SecretBuffer::SecretBuffer(std::string bytes) : bytes_(std::move(bytes)) {
    // A short string is copied out of its SSO buffer by the move, so the parameter still holds it.
    wipe_string(bytes);
}

SecretBuffer::~SecretBuffer() { wipe(); }

SecretBuffer::SecretBuffer(SecretBuffer&& other) noexcept : bytes_(std::move(other.bytes_)) { other.wipe(); }

SecretBuffer& SecretBuffer::operator=(SecretBuffer&& other) noexcept {
    if (this != &other) {
        wipe();
        bytes_ = std::move(other.bytes_);
        // libstdc++ may hand our old (already wiped) buffer to `other`, or leave a copied SSO
        // string behind in it; either way it is wiped now.
        other.wipe();
    }
    return *this;
}

void SecretBuffer::wipe() { wipe_string(bytes_); }

void SecretBuffer::trim_newline() {
    while (!bytes_.empty() && (bytes_.back() == '\n' || bytes_.back() == '\r')) {
        bytes_.back() = '\0';
        bytes_.pop_back();
    }
}

namespace {

SecretBuffer resolve(const KeyProviders& providers, const SecretRef& secret) {
    const std::string_view ref = secret.text;
    const size_t colon = ref.find(':');
    if (colon == std::string_view::npos) fail(secret, "expected PROVIDER:NAME (file:NAME or cmd:NAME)");
    const std::string_view provider = ref.substr(0, colon);
    const std::string_view name = ref.substr(colon + 1);
    if (provider != "file" && provider != "cmd")
        fail(secret, "unknown key provider '" + std::string(provider) + "' (file or cmd)");
    if (name.empty()) fail(secret, "the name is empty");
    // A NUL would silently cut the name short in openat or argv.
    if (name.find('\0') != std::string_view::npos) fail(secret, "the name contains a NUL byte");
    return provider == "file" ? from_file(providers, secret, name) : from_command(providers, secret, name);
}

}  // namespace

SecretBuffer resolve_deploy_key(const KeyProviders& providers, std::string_view ref) {
    const SecretRef secret{ref, "deploy key", true};
    SecretBuffer key = resolve(providers, secret);
    refuse_unusable_type(secret, key);
    return key;
}

SecretBuffer resolve_secret(const KeyProviders& providers, std::string_view ref, std::string_view what) {
    SecretBuffer secret = resolve(providers, SecretRef{ref, what, false});
    // A file or a command's output ends with a newline that is not part of the password.
    secret.trim_newline();
    return secret;
}

}  // namespace sitesfs::hooks
