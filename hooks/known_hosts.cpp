#include "hooks/known_hosts.hpp"

#include "common/files.hpp"
#include "schemas/validators.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace sitesfs::hooks {

namespace {

namespace stdfs = std::filesystem;

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kPrefix = "SHA256:";
// 32 bytes are 256 bits: 42 full sextets and 4 bits in a 43rd, with no '=' padding.
constexpr size_t kDigestChars = 43;


bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// A host goes into the file as one token, so it cannot hold whitespace, '#' or control bytes;
// libgit2 passes the URL's host, which never has them for a URL it could connect to.
bool is_host(std::string_view host) {
    return !host.empty() && host.size() <= 255 &&
           std::none_of(host.begin(), host.end(),
                        [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == '#' || c == 0x7f; });
}

// Only the canonical spelling is accepted (the unused low bits of the last character are zero),
// so two fingerprints are the same key exactly when the strings are equal.
bool is_fingerprint(std::string_view fp) {
    if (!fp.starts_with(kPrefix)) return false;
    const std::string_view digest = fp.substr(kPrefix.size());
    if (digest.size() != kDigestChars) return false;
    for (size_t i = 0; i < digest.size(); ++i) {
        const char* at = std::strchr(kBase64, digest[i]);
        if (digest[i] == '\0' || at == nullptr) return false;
        if (i + 1 == digest.size() && ((at - kBase64) & 0x3) != 0) return false;
    }
    return true;
}

// "HOST:PORT" with the host lower-cased; nullopt when it is not that. The port is after the last
// ':' so that IPv6 hosts keep theirs.
std::optional<std::string> host_port_key(std::string_view text) {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const std::string_view host = text.substr(0, colon), port = text.substr(colon + 1);
    if (!is_host(host) || port.empty() || port.size() > 5 || port.front() == '0' ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(std::string(port)) > 65535)
        return std::nullopt;
    return ascii_lower(host) + ":" + std::string(port);
}

struct Entry {
    std::string fingerprint;
    int line = 0;
};

// host:port -> pinned key, from the file's text.
std::map<std::string, Entry> parse(const stdfs::path& file, const std::string& text) {
    std::map<std::string, Entry> entries;
    int number = 0;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string_view line(text.data() + start, end - start);
        start = end + 1;
        ++number;
        line = line.substr(0, line.find('#'));
        std::vector<std::string_view> tokens;
        for (size_t i = 0; i < line.size();) {
            if (is_space(line[i])) {
                ++i;
                continue;
            }
            size_t j = i;
            while (j < line.size() && !is_space(line[j])) ++j;
            tokens.push_back(line.substr(i, j - i));
            i = j;
        }
        if (tokens.empty()) continue;
        const auto where = file.string() + ":" + std::to_string(number) + ": ";
        const auto key = tokens.size() == 2 ? host_port_key(tokens[0]) : std::nullopt;
        if (!key || !is_fingerprint(tokens[1]))
            throw HostKeyError(where + "expected \"HOST:PORT SHA256:BASE64\", got \"" + std::string(line) + "\"");
        const auto [it, inserted] = entries.try_emplace(*key, Entry{std::string(tokens[1]), number});
        if (!inserted && it->second.fingerprint != tokens[1])
            throw HostKeyError(where + *key + " is already pinned to another key on line " +
                               std::to_string(it->second.line));
    }
    return entries;
}

}  // namespace

KnownHosts::KnownHosts(std::filesystem::path file, HostKeyPolicy policy, std::map<std::string, std::string> pins)
    : file_(std::move(file)), policy_(policy) {
    for (auto& [host_port, fp] : pins) {
        const auto key = host_port_key(host_port);
        if (!key) throw HostKeyError("host key pin \"" + host_port + "\": expected HOST:PORT");
        if (!is_fingerprint(fp))
            throw HostKeyError("host key pin for " + host_port +
                               ": expected SHA256:BASE64 (as ssh-keygen -l prints it), got \"" + fp + "\"");
        const auto [it, inserted] = pins_.try_emplace(*key, fp);
        if (!inserted && it->second != fp)
            throw HostKeyError("host key pins for " + *key + " disagree: " + it->second + " and " + fp);
    }
}

void KnownHosts::check(const std::string& host, int port, const unsigned char sha256[32]) {
    if (!is_host(host) || port < 1 || port > 65535)
        throw HostKeyError("cannot check the host key of \"" + host + "\" port " + std::to_string(port) +
                           ": not a host name and port");
    const std::string key = ascii_lower(host) + ":" + std::to_string(port);
    const std::string offered = fingerprint(sha256);

    if (const auto pin = pins_.find(key); pin != pins_.end()) {
        if (pin->second == offered) return;
        throw HostKeyError("host key of " + key + " changed: pinned " + pin->second + " (in the config), offered " +
                           offered + "; if the change is expected, update the pin in [ssh.pins]");
    }
    // The file holds what accept-new trusted on first use; strict trusts only what an operator
    // pinned, so it neither reads nor writes the file.
    if (policy_ == HostKeyPolicy::Strict)
        throw HostKeyError("host key of " + key + " is not pinned and [ssh] host_key_policy is strict; pin it with \"" +
                           key + "\" = \"" + offered + "\" in [ssh.pins] once you have checked that " + offered +
                           " is the server's key (ssh-keygen -lf on the server's host key)");

    const std::lock_guard lock(mu_);
    // Read on every check: the operator may have removed a line, and nothing is cached that
    // could be older than the file.
    std::optional<std::string> text;
    try {
        text = read_file(file_);
    } catch (const FileError& e) {
        throw HostKeyError(e.what());
    }
    const auto entries = text ? parse(file_, *text) : std::map<std::string, Entry>{};
    if (const auto it = entries.find(key); it != entries.end()) {
        if (it->second.fingerprint == offered) return;
        throw HostKeyError("host key of " + key + " changed: pinned " + it->second.fingerprint + ", offered " +
                           offered + "; if the change is expected, remove the line from " + file_.string());
    }

    std::string updated = text.value_or("");
    if (!updated.empty() && updated.back() != '\n') updated += '\n';
    updated += key + " " + offered + "\n";
    // A crash leaves the old file or the new one, never a torn line that fails every later check.
    try {
        replace_file(file_, updated, 0600);
    } catch (const FileError& e) {
        throw HostKeyError("cannot record a host key in " + file_.string() + ": " + e.what());
    }
    spdlog::info("recorded the host key of {} ({}) in {}", key, offered, file_.string());
}

std::string KnownHosts::fingerprint(const unsigned char sha256[32]) {
    std::string out(kPrefix);
    out.reserve(kPrefix.size() + kDigestChars);
    for (size_t i = 0; i < 32; i += 3) {
        const size_t n = std::min<size_t>(3, 32 - i);
        uint32_t bits = static_cast<uint32_t>(sha256[i]) << 16;
        if (n > 1) bits |= static_cast<uint32_t>(sha256[i + 1]) << 8;
        if (n > 2) bits |= sha256[i + 2];
        // n bytes fill n + 1 characters; the rest would be '=' padding, which OpenSSH leaves out.
        for (size_t c = 0; c <= n; ++c) out += kBase64[(bits >> (18 - 6 * c)) & 0x3f];
    }
    return out;
}

}  // namespace sitesfs::hooks
