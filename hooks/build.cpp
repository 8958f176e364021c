#include "hooks/build.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>

#include "common/hex.hpp"
#include "common/text.hpp"

namespace sitesfs::hooks {

namespace stdfs = std::filesystem;

namespace {

// Length-prefixed, so that no two different configs give the same text.
void add(std::string& text, std::string_view item) { text.append(std::to_string(item.size())).append(":").append(item); }

std::string sha256_hex(const std::string& text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed");
    return hex_lower(digest, size);
}

std::string replace_all(std::string s, std::string_view from, const std::string& to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
    return s;
}

void make_owned_dir(const stdfs::path& dir, uid_t uid, gid_t gid) {
    if (::mkdir(dir.c_str(), 0700) != 0) throw release_os_error("creating", dir.string());
    // chown before chmod: the mode is exact whatever the umask, and nobody else ever reads it.
    if (::chown(dir.c_str(), uid, gid) != 0 || ::chmod(dir.c_str(), 0700) != 0) throw release_os_error("handing over", dir.string());
}

class OutputCopier {
public:
    OutputCopier(const TreeLimits& limits, TreeReport& report) : writer_(limits, report), report_(report) {}

    void copy_dir(int from, int to, const std::string& prefix, int depth) {
        writer_.check_depth(depth, prefix);
        // fdopendir takes the fd it is given; the caller's stays open for the openat calls below.
        const int listing = ::dup(from);
        if (listing < 0) throw release_os_error("reading", prefix.empty() ? "the output" : prefix);
        const std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(listing), ::closedir);
        if (!dir) {
            ::close(listing);
            throw release_os_error("reading", prefix.empty() ? "the output" : prefix);
        }
        while (const dirent* entry = ::readdir(dir.get())) {
            const std::string name = entry->d_name;
            if (name == "." || name == "..") continue;
            copy_entry(from, to, name, prefix.empty() ? shown_name(name) : prefix + "/" + shown_name(name), depth);
        }
    }

private:
    void copy_entry(int from, int to, const std::string& name, const std::string& path, int depth) {
        if (ReleaseWriter::is_dot_git(name)) {
            report_.skipped.push_back(path + ": .git is never written");
            return;
        }
        struct stat st{};
        if (::fstatat(from, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) throw release_os_error("reading", path);
        if (S_ISDIR(st.st_mode)) {
            const Fd source(::openat(from, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!source.valid()) throw release_os_error("opening directory", path);
            const Fd target = writer_.make_dir(to, name, path);
            copy_dir(source.get(), target.get(), path, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            copy_file(from, to, name, path, st);
        } else {
            report_.skipped.push_back(path + (S_ISLNK(st.st_mode) ? ": symbolic link left out (a release holds no links)"
                                                                  : ": not a regular file or directory, left out"));
        }
    }

    void copy_file(int from, int to, const std::string& name, const std::string& path, const struct stat& listed) {
        // O_NONBLOCK: were it swapped for a FIFO since the fstatat, the open must not hang.
        const Fd source(::openat(from, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
        struct stat st{};
        if (!source.valid() || ::fstat(source.get(), &st) != 0) throw release_os_error("reading", path);
        if (!S_ISREG(st.st_mode) || st.st_ino != listed.st_ino || st.st_dev != listed.st_dev)
            throw ReleaseError(path + " changed while it was copied");
        Fd target = writer_.make_file(to, name, path, (st.st_mode & 0111) ? 0755 : 0644, static_cast<uint64_t>(st.st_size));
        char buf[64 * 1024];
        uint64_t copied = 0;
        for (;;) {
            const ssize_t n = ::read(source.get(), buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw release_os_error("reading", path);
            if (n == 0) break;
            // Only what fstat counted against the cap is copied: a file may not grow past it.
            const uint64_t take = std::min<uint64_t>(static_cast<uint64_t>(n), static_cast<uint64_t>(st.st_size) - copied);
            ReleaseWriter::write_all(target.get(), {buf, static_cast<size_t>(take)}, path);
            copied += take;
            if (copied == static_cast<uint64_t>(st.st_size)) break;
        }
        writer_.close_file(target, copied, path);
    }

    ReleaseWriter writer_;
    TreeReport& report_;
};

}  // namespace

std::optional<std::string> release_name(const std::string& commit, const SiteRecord& site, const BuildConfig& build) {
    const std::string& builder_name = site.field("build").value;
    const bool submodules = site.field("submodules").value == "recursive";
    if (builder_name.empty() && !submodules) return commit;
    std::string made_by;
    add(made_by, submodules ? "submodules" : "");
    if (!builder_name.empty()) {
        const auto it = build.builders.find(builder_name);
        if (it == build.builders.end()) return std::nullopt;
        const Builder& b = it->second;
        add(made_by, b.name);
        for (const auto& arg : b.command) add(made_by, arg);
        add(made_by, b.network ? "network" : "");
        for (const auto& [name, value] : b.env) add(made_by, name + "=" + value);
    }
    return commit + "-" + sha256_hex(made_by).substr(0, 12);
}

void ensure_build_root(const stdfs::path& dir) {
    const bool made = ::mkdir(dir.c_str(), 0755) == 0;
    if (!made && errno != EEXIST) throw release_os_error("creating [build] dir", dir.string());
    struct stat st{};
    if (::lstat(dir.c_str(), &st) != 0) throw release_os_error("reading [build] dir", dir.string());
    if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 022) != 0)
        throw ReleaseError("[build] dir " + dir.string() + " is not a directory of uid " + std::to_string(::geteuid()) +
                           " that no one else may write to; remove it or name another");
    // The build user walks through it to its scratch dir, whatever the daemon's umask made it.
    if ((st.st_mode & 0755) != 0755 && ::chmod(dir.c_str(), 0755) != 0) throw release_os_error("chmod 0755", dir.string());
}

std::optional<BuildSlots::Slot> BuildSlots::acquire(const std::function<bool()>& cancelled) {
    std::unique_lock lock(mu_);
    while (free_ == 0) {
        if (cancelled()) return std::nullopt;
        freed_.wait_for(lock, std::chrono::milliseconds(200));
    }
    --free_;
    return Slot(*this);
}

void BuildSlots::release() {
    {
        std::lock_guard lock(mu_);
        ++free_;
    }
    freed_.notify_one();
}

BuildDir::BuildDir(stdfs::path dir, uid_t uid, gid_t gid) : dir_(std::move(dir)), uid_(uid), gid_(gid) {
    std::error_code ec;
    stdfs::remove_all(dir_, ec);
    make_owned_dir(dir_, uid_, gid_);
    make_owned_dir(out(), uid_, gid_);
}

BuildDir::~BuildDir() {
    std::error_code ec;
    stdfs::remove_all(dir_, ec);
}

void BuildDir::hand_over() const {
    // The daemon wrote src() a moment ago and the build has not started: nothing in it is a link
    // yet, and nobody else can change it meanwhile.
    const auto give = [&](const stdfs::path& p) {
        if (::lchown(p.c_str(), uid_, gid_) != 0) throw release_os_error("handing over", p.string());
    };
    give(src());
    std::error_code ec;
    for (auto it = stdfs::recursive_directory_iterator(src(), ec); !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec))
        give(it->path());
    if (ec) throw ReleaseError("handing over " + src().string() + ": " + ec.message());
}

SandboxResult run_build(const Builder& builder, const BuildConfig& build, const BuildDir& dir,
                        std::function<bool()> cancelled) {
    // The build sees its dir as /build: its messages name /build/src/..., not the data dir.
    const stdfs::path inside = "/build";
    SandboxSpec spec;
    for (const auto& arg : builder.command)
        spec.argv.push_back(replace_all(replace_all(arg, "{src}", (inside / "src").string()), "{out}", (inside / "out").string()));
    spec.work = dir.dir();
    spec.work_inside = inside;
    spec.cwd = inside / "src";
    spec.network = builder.network;
    spec.env = builder.env;
    spec.uid = build.uid.value_or(0);
    spec.gid = build.gid;
    spec.limits = builder.limits;
    spec.cancelled = std::move(cancelled);
    return run_sandboxed(spec);
}

std::string build_log_text(const std::string& builder, const std::string& release, const SandboxResult& result,
                           std::chrono::milliseconds took) {
    std::string log = valid_utf8(utf8_tail(result.output, kBuildLogBytes));
    if (!log.empty() && log.back() != '\n') log += '\n';
    const std::string outcome = result.ok() ? "ok" : result.summary();
    // The release, not just the commit: it names the builder too, so a rebuild after the builder changed reads apart.
    return log + "sitesfs: " + builder + " for release " + release + ": " + outcome + " in " + duration_text(took);
}

void add_build_notes(std::string& log, std::string_view what, const std::vector<std::string>& notes) {
    constexpr size_t kShown = 20;
    for (size_t i = 0; i < notes.size() && i < kShown; ++i) log.append("\nsitesfs: ").append(what).append(": ").append(notes[i]);
    if (notes.size() > kShown)
        log.append("\nsitesfs: ").append(what).append(": ").append(std::to_string(notes.size() - kShown)).append(" more");
}

TreeReport copy_build_output(const stdfs::path& from, const stdfs::path& to, const TreeLimits& limits) {
    TreeReport report;
    const Fd source(::open(from.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!source.valid())
        throw ReleaseError(errno == ENOTDIR || errno == ELOOP ? "the build replaced its output dir with something else"
                                                              : "opening the build's output: " + std::string(std::strerror(errno)));
    if (::mkdir(to.c_str(), 0755) != 0 || ::chmod(to.c_str(), 0755) != 0) throw release_os_error("creating", to.string());
    const Fd target(::open(to.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!target.valid()) throw release_os_error("opening", to.string());
    OutputCopier(limits, report).copy_dir(source.get(), target.get(), "", 0);
    return report;
}

}  // namespace sitesfs::hooks
