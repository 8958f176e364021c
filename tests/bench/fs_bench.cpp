// P1, P2, P3, P6: what the mount costs a reader, a stat walk, a writer, and in memory. Reads and
// stats are compared with tmpfs holding the very bytes the mount serves (copied out of it), a
// write at a large store with the same write at a small one, both in this process, A B A B.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "hooks/proxy_config.hpp"
#include "tests/bench/bench.hpp"

namespace sitesfs::bench {

namespace {

using SteadyClock = std::chrono::steady_clock;

std::runtime_error sys_error(const std::string& what, const std::string& path) {
    return std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

std::string repo_of(int i) { return "https://github.com/example/" + site_name(i); }

__attribute__((format(printf, 1, 2))) std::string printf_text(const char* format, ...) {
    char buf[1024];
    va_list args;
    va_start(args, format);
    std::vsnprintf(buf, sizeof buf, format, args);
    va_end(args);
    return buf;
}

// Importing is slow (the store makes every site durable on its own: 10 000 sites take a minute
// or more on a disk) and P3 and P6 want the same count by default, so each count is imported once
// and every section gets a copy of it (the state holds no absolute paths; P3 changes its copy).
class Seeds {
public:
    explicit Seeds(const Options& options) : dir_(options, "seeds") {}
    void copy_to(int count, const stdfs::path& state) {
        const stdfs::path seed = dir_.path() / ("state-" + std::to_string(count));
        if (!stdfs::exists(seed)) import_sites(seed, count, repo_of);
        must_run({"cp", "-a", seed.string(), state.string()});
    }

private:
    TempDir dir_;
};

// The regular files readdir lists below `root`, relative to it. `wait` and `.metrics` are not
// listed, so they are never read: `wait` blocks, `.metrics` is rendered on every read.
std::vector<std::string> listed_files(const stdfs::path& root) {
    std::vector<std::string> files;
    for (const auto& entry : stdfs::recursive_directory_iterator(root))
        if (entry.is_regular_file()) files.push_back(stdfs::relative(entry.path(), root).string());
    if (files.empty())
        throw std::runtime_error("no files listed below " + root.string() + ": did the import make no sites?");
    return files;
}

std::vector<std::string> below(const stdfs::path& root, const std::vector<std::string>& files) {
    std::vector<std::string> out;
    out.reserve(files.size());
    for (const auto& f : files) out.push_back((root / f).string());
    return out;
}

// What `cat` of all of them does: open, read to EOF, close, one file after the other. Returns the
// bytes read.
uint64_t read_all(const std::vector<std::string>& paths) {
    static char buf[64 * 1024];
    uint64_t total = 0;
    for (const auto& p : paths) {
        const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw sys_error("open", p);
        for (;;) {
            const ssize_t n = ::read(fd, buf, sizeof buf);
            if (n == 0) break;
            if (n < 0) {
                const auto e = sys_error("read", p);
                ::close(fd);
                throw e;
            }
            total += static_cast<uint64_t>(n);
        }
        if (::close(fd) != 0) throw sys_error("close", p);
    }
    return total;
}

// What `find -printf` does: readdir every directory and fstatat every entry without following
// links, descending into directories. Takes ownership of `dir_fd`; returns the entries seen.
size_t stat_walk(int dir_fd, const std::string& where) {
    DIR* dir = ::fdopendir(dir_fd);
    if (!dir) {
        const auto e = sys_error("fdopendir", where);
        ::close(dir_fd);
        throw e;
    }
    size_t entries = 0;
    try {
        while (const dirent* d = ::readdir(dir)) {
            if (!std::strcmp(d->d_name, ".") || !std::strcmp(d->d_name, "..")) continue;
            struct stat st {};
            if (::fstatat(::dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                throw sys_error("fstatat", where + "/" + d->d_name);
            ++entries;
            if (!S_ISDIR(st.st_mode)) continue;
            const int sub = ::openat(::dirfd(dir), d->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sub < 0) throw sys_error("openat", where + "/" + d->d_name);
            entries += stat_walk(sub, where + "/" + d->d_name);
        }
    } catch (...) {
        ::closedir(dir);
        throw;
    }
    ::closedir(dir);
    return entries;
}

size_t stat_walk(const stdfs::path& root) {
    const int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw sys_error("open", root.string());
    return stat_walk(fd, root.string());
}

// A tmpfs on `dir` holding a copy of the tree below `from`.
void tmpfs_copy(const stdfs::path& from, const stdfs::path& dir) {
    stdfs::create_directories(dir);
    must_run({"mount", "-t", "tmpfs", "-o", "mode=0755", "sitesfs-bench", dir.string()});
    must_run({"cp", "-r", (from / ".").string(), dir.string()});
}

Row ratio_row(std::string id, std::string what, const Samples& measured, const Samples& baseline, double target,
              std::string note) {
    const double ratio = measured.median() / baseline.median();
    return Row{.id = std::move(id),
               .what = std::move(what),
               .measured = format_seconds(measured.median()),
               .baseline = format_seconds(baseline.median()),
               .ratio = ratio,
               .target = printf_text("<= %.1f", target),
               .met = ratio <= target,
               .note = std::move(note)};
}

// P1 and P2 on one mode of the mount (read-write, or `-o ro`), against the same tmpfs tree.
struct ReadMode {
    std::string suffix;  // of the row ids: "" or " ro"
    std::vector<std::string> args;
};

void read_benchmarks(const Options& o, Report& report, Seeds& seeds) {
    TempDir tmp(o, "read");
    const stdfs::path state = tmp.path() / "state", mnt = tmp.path() / "mnt", tree = tmp.path() / "tmpfs",
                      cold_tree = tmp.path() / "tmpfs-cold";
    seeds.copy_to(o.read_sites, state);
    // Declared after `tmp`: a daemon stops before its mountpoint is removed.
    std::optional<Daemon> daemon;

    daemon.emplace(state, mnt, std::vector<std::string>{"--no-reconcile"});
    const std::vector<std::string> files = listed_files(mnt);
    tmpfs_copy(mnt, tree);
    daemon.reset();
    const std::vector<std::string> on_mount = below(mnt, files), on_tmpfs = below(tree, files),
                                   on_cold_tmpfs = below(cold_tree, files);
    const double n = static_cast<double>(files.size());

    for (const ReadMode& mode : {ReadMode{"", {"--no-reconcile"}}, ReadMode{" ro", {"--no-reconcile", "-o", "ro"}}}) {
        daemon.emplace(state, mnt, mode.args);
        // Untimed first passes: fill the caches a warm figure is about, and prove the trees equal.
        const uint64_t bytes = read_all(on_mount);
        if (const uint64_t copied = read_all(on_tmpfs); copied != bytes)
            throw std::runtime_error(printf_text("the tmpfs copy holds %llu bytes, the mount%s serves %llu: the tree "
                                                 "changed while it was copied (is something writing to the state?)",
                                                 static_cast<unsigned long long>(copied), mode.suffix.c_str(),
                                                 static_cast<unsigned long long>(bytes)));
        const auto per_file = [&](const Samples& s) { return format_seconds(s.median() / n); };

        if (o.wants("P1")) {
            const auto [mounted, base] = alternate(
                o.runs, [&] { return time_it([&] { read_all(on_mount); }); },
                [&] { return time_it([&] { read_all(on_tmpfs); }); });
            report.add(ratio_row("P1 warm" + mode.suffix, "read every listed file, warm (open, read to EOF, close)",
                                 mounted, base, 2.0,
                                 printf_text("%d sites, %zu files, %llu bytes a pass; %s vs %s a file.", o.read_sites,
                                             files.size(), static_cast<unsigned long long>(bytes),
                                             per_file(mounted).c_str(), per_file(base).c_str())));

            // A fresh daemon (and with it a fresh kernel inode and page cache) per run. tmpfs has
            // no cold state to return to: its first pass after a fresh mount and copy is the floor.
            const auto [cold, cold_base] = alternate(
                o.runs,
                [&] {
                    daemon.reset();
                    daemon.emplace(state, mnt, mode.args);
                    return time_it([&] { read_all(on_mount); });
                },
                [&] {
                    if (stdfs::exists(cold_tree)) must_run({"umount", cold_tree.string()});
                    tmpfs_copy(tree, cold_tree);
                    return time_it([&] { read_all(on_cold_tmpfs); });
                });
            report.add(ratio_row("P1 cold" + mode.suffix, "read every listed file, first pass after mount", cold,
                                 cold_base, 6.0,
                                 printf_text("%zu files; a fresh daemon each run (start not timed) vs a fresh tmpfs "
                                             "and copy; %s vs %s a file.",
                                             files.size(), per_file(cold).c_str(), per_file(cold_base).c_str())));
            must_run({"umount", cold_tree.string()});
            stdfs::remove(cold_tree);
        }
        if (o.wants("P2")) {
            // Its own untimed walks first: the daemon may be the one the last cold run started.
            const size_t entries = stat_walk(mnt);
            if (const size_t copied = stat_walk(tree); copied != entries)
                throw std::runtime_error(printf_text("the mount%s lists %zu entries, its tmpfs copy %zu: cp -r missed "
                                                     "some (see the files below %s)",
                                                     mode.suffix.c_str(), entries, copied, tree.c_str()));
            const auto [mounted, base] = alternate(
                o.runs, [&] { return time_it([&] { stat_walk(mnt); }); },
                [&] { return time_it([&] { stat_walk(tree); }); });
            report.add(ratio_row("P2 warm" + mode.suffix, "stat walk of the tree, warm (readdir, fstatat each entry)",
                                 mounted, base, 2.0,
                                 printf_text("%zu entries (%d site dirs); %s vs %s an entry.", entries, o.read_sites,
                                             format_seconds(mounted.median() / static_cast<double>(entries)).c_str(),
                                             format_seconds(base.median() / static_cast<double>(entries)).c_str())));
        }
        daemon.reset();
    }
}

// One side of P3: a store of `sites` sites behind its own mount, written round-robin.
class BranchWriter {
public:
    BranchWriter(const stdfs::path& mnt, int sites) : mnt_(mnt), sites_(sites) {}

    // One committed write: open(O_TRUNC), write the value and its newline, close (the commit).
    // Each round over the sites flips every branch, so every write changes a value.
    Seconds write_next() {
        const int site = written_ % sites_;
        const std::string value = (written_ / sites_) % 2 == 0 ? "dev\n" : "main\n";
        const std::string path = (mnt_ / site_name(site) / "branch").string();
        ++written_;
        const auto start = SteadyClock::now();
        const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd < 0) throw sys_error("open for writing", path);
        if (const ssize_t n = ::write(fd, value.data(), value.size()); n != static_cast<ssize_t>(value.size())) {
            const std::string what = "write '" + value.substr(0, value.size() - 1) + "' to";
            const auto e = n < 0 ? sys_error(what, path)
                                 : std::runtime_error(what + " " + path + ": only " + std::to_string(n) + " of " +
                                                      std::to_string(value.size()) + " bytes taken");
            ::close(fd);
            throw e;
        }
        if (::close(fd) != 0) throw sys_error("close (commit)", path);
        return seconds_since(start);
    }

    Samples run(int writes) {
        Samples s;
        for (int i = 0; i < writes; ++i) s.values.push_back(write_next());
        return s;
    }

private:
    stdfs::path mnt_;
    int sites_;
    int written_ = 0;
};

void write_benchmark(const Options& o, Report& report, Seeds& seeds) {
    TempDir tmp(o, "write");
    seeds.copy_to(o.write_small, tmp.path() / "state-small");
    seeds.copy_to(o.write_large, tmp.path() / "state-large");
    // --no-reconcile: a deploy started by a write would compete with the writes being timed.
    Daemon small(tmp.path() / "state-small", tmp.path() / "mnt-small", {"--no-reconcile"});
    Daemon large(tmp.path() / "state-large", tmp.path() / "mnt-large", {"--no-reconcile"});
    BranchWriter at_small(tmp.path() / "mnt-small", o.write_small), at_large(tmp.path() / "mnt-large", o.write_large);
    // The first writes of a fresh mount pay one-time costs (the root's lookup, the daemon's
    // threads starting) that are not what P3 compares.
    at_small.run(std::min(o.writes, 10));
    at_large.run(std::min(o.writes, 10));

    Samples large_writes, small_writes;
    const auto append = [](Samples& all, const Samples& run) {
        all.values.insert(all.values.end(), run.values.begin(), run.values.end());
        return run.median();
    };
    alternate(
        o.runs, [&] { return append(large_writes, at_large.run(o.writes)); },
        [&] { return append(small_writes, at_small.run(o.writes)); });
    const double p50_large = large_writes.median(), p50_small = small_writes.median(), ratio = p50_large / p50_small;
    report.add(Row{
        .id = "P3",
        .what = "one committed branch write (open O_TRUNC, write, close), p50",
        .measured = format_seconds(p50_large),
        .baseline = format_seconds(p50_small),
        .ratio = ratio,
        .target = "<= 1.5",
        .met = ratio <= 1.5,
        .note = printf_text("%d sites vs %d; p50 of %zu writes a side (%d runs of %d, alternating, round-robin over "
                            "the sites); p99 %s vs %s.",
                            o.write_large, o.write_small, large_writes.values.size(), o.runs, o.writes,
                            format_seconds(large_writes.quantile(0.99)).c_str(),
                            format_seconds(small_writes.quantile(0.99)).c_str())});
}

void memory_benchmark(const Options& o, Report& report, Seeds& seeds) {
    TempDir tmp(o, "memory");
    seeds.copy_to(o.memory_sites, tmp.path() / "state");
    Daemon daemon(tmp.path() / "state", tmp.path() / "mnt", {"--no-reconcile"});
    // Every node looked up and read once, so the inode table holds all of them.
    const std::vector<std::string> files = listed_files(tmp.path() / "mnt");
    read_all(below(tmp.path() / "mnt", files));
    const auto [rss, hwm] = memory_of(daemon.pid());
    constexpr double kTarget = 64.0 * 1024 * 1024;
    report.add(Row{.id = "P6 memory",
                   .what = "daemon resident memory (VmRSS) with every node looked up and read",
                   .measured = format_mib(rss),
                   .baseline = "",
                   .ratio = std::nullopt,
                   .target = "<= 64 MiB",
                   .met = rss <= kTarget,
                   .note = printf_text("%d sites, %zu files read once; peak (VmHWM) %s. No releases exist "
                                       "(--no-reconcile, nothing deployed), so this is the store and the inode table.",
                                       o.memory_sites, files.size(), format_mib(hwm).c_str())});
}

void render_benchmark(const Options& o, Report& report) {
    std::vector<hooks::ProxySite> sites;
    sites.reserve(static_cast<size_t>(o.memory_sites));
    for (int i = 0; i < o.memory_sites; ++i)
        sites.push_back({.site = site_name(i),
                         .domains = {site_domain(i)},
                         .root = "/var/lib/sites/" + site_name(i) + "/current",
                         .commit = printf_text("%040x", i)});
    const auto proxy = hooks::make_caddy_config(hooks::ProxyOptions{});
    const size_t bytes = proxy->render(sites).size();  // warm-up: allocator, code paths
    Samples renders;
    constexpr int kRenders = 20;
    for (int i = 0; i < kRenders; ++i) renders.values.push_back(time_it([&] { proxy->render(sites); }));
    report.add(Row{.id = "P6 render",
                   .what = "render the Caddy config for every site, median",
                   .measured = format_seconds(renders.median()),
                   .baseline = "",
                   .ratio = std::nullopt,
                   .target = "<= 20 ms",
                   .met = renders.median() <= 0.020,
                   .note = printf_text("%d sites, %zu bytes rendered; median of %d after a warm-up, slowest %s.",
                                       o.memory_sites, bytes, kRenders,
                                       format_seconds(renders.quantile(1.0)).c_str())});
}

}  // namespace

void run_fs_benchmarks(const Options& options, Report& report) {
    Seeds seeds(options);
    if (options.wants("P1") || options.wants("P2")) read_benchmarks(options, report, seeds);
    if (options.wants("P3")) write_benchmark(options, report, seeds);
    if (options.wants("P6")) {
        memory_benchmark(options, report, seeds);
        render_benchmark(options, report);
    }
}

}  // namespace sitesfs::bench
