// P1, P2, P3, P6, E1: what the mount costs a reader, a stat walk, a writer, and in memory. Reads
// and stats are compared with tmpfs holding the very bytes the mount serves (copied out of it), a
// write at a large store with the same write at a small one, both in this process, A B A B. P3 and
// P6 also run on the etcd backend, and E1 sets its write against a bare put to the same etcd.
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
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "hooks/proxy_config.hpp"
#include "hooks/site_rules.hpp"
#include "store/etcd/client.hpp"
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

// Where a section's daemons keep their sites. Importing is slow (the file store makes every site
// durable on its own, etcd commits one txn a site: 10 000 sites take a minute or more) and P3 and
// P6 want the same count by default, so each count is imported once and every section gets it.
class Backend {
public:
    virtual ~Backend() = default;
    // Of the row ids: "" (the file store) or " etcd".
    virtual std::string suffix() const = 0;
    // Gives a daemon with state dir `state` (not yet there) `count` sites; returns the daemon's
    // arguments besides --no-reconcile. Sites may carry a previous section's writes.
    virtual std::vector<std::string> provide(int count, const stdfs::path& state) = 0;
};

// The file store: every section gets a copy of a seed state dir (the state holds no absolute
// paths; P3 changes its copy).
class FileBackend : public Backend {
public:
    explicit FileBackend(const Options& options) : dir_(options, "seeds") {}
    std::string suffix() const override { return ""; }
    std::vector<std::string> provide(int count, const stdfs::path& state) override {
        const stdfs::path seed = dir_.path() / ("state-" + std::to_string(count));
        if (!stdfs::exists(seed)) import_sites(seed, count, repo_of);
        must_run({"cp", "-a", seed.string(), state.string()});
        return {};
    }

private:
    TempDir dir_;
};

// etcd: each count under a prefix of its own in one cluster, so two daemons of different counts
// run side by side; each daemon a host named after its state dir.
class EtcdBackend : public Backend {
public:
    explicit EtcdBackend(const Options& options) : etcd_(options), dir_(options, "etcd-configs") {}
    std::string suffix() const override { return " etcd"; }
    std::vector<std::string> provide(int count, const stdfs::path& state) override {
        const std::string prefix = "/bench/" + std::to_string(count) + "/";
        if (imported_.insert(count).second) {
            const stdfs::path config = write_config("import-" + std::to_string(count), prefix);
            import_sites(dir_.path() / ("import-" + std::to_string(count)), count, repo_of, {"--config", config.string()});
        }
        stdfs::create_directories(state);
        return {"--config", write_config(state.filename().string(), prefix).string()};
    }
    const Etcd& etcd() const { return etcd_; }

private:
    stdfs::path write_config(const std::string& host, const std::string& prefix) const {
        const stdfs::path config = dir_.path() / (host + ".toml");
        std::ofstream(config) << etcd_.store_toml(host, prefix);
        return config;
    }

    Etcd etcd_;
    TempDir dir_;
    std::set<int> imported_;
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

// Two reports of every site that `listed` holds files of, relative to the root: not listed,
// opened by name. A poller's re-read has to reach sitesfs, so on the read-write mount they are
// read with direct I/O (docs/filesystem.md, "Waiting for a change").
std::vector<std::string> report_files(const std::vector<std::string>& listed) {
    std::set<std::string> sites;
    for (const auto& f : listed)
        if (auto site = stdfs::path(f).parent_path(); !site.empty()) sites.insert(site.string());
    std::vector<std::string> out;
    for (const auto& site : sites)
        for (const char* report : {"status", "log"}) out.push_back(site + "/" + report);
    return out;
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

void mount_tmpfs(const stdfs::path& dir) {
    stdfs::create_directories(dir);
    must_run({"mount", "-t", "tmpfs", "-o", "mode=0755", "sitesfs-bench", dir.string()});
}

// A tmpfs on `dir` holding a copy of the tree below `from`.
void tmpfs_copy(const stdfs::path& from, const stdfs::path& dir) {
    mount_tmpfs(dir);
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

void read_benchmarks(const Options& o, Report& report, Backend& backend) {
    TempDir tmp(o, "read");
    const stdfs::path state = tmp.path() / "state", mnt = tmp.path() / "mnt", tree = tmp.path() / "tmpfs",
                      cold_tree = tmp.path() / "tmpfs-cold", reports_tree = tmp.path() / "tmpfs-reports";
    backend.provide(o.read_sites, state);
    // Declared after `tmp`: a daemon stops before its mountpoint is removed.
    std::optional<Daemon> daemon;

    daemon.emplace(state, mnt, std::vector<std::string>{"--no-reconcile"});
    const std::vector<std::string> files = listed_files(mnt), reports = report_files(files);
    tmpfs_copy(mnt, tree);
    // A tmpfs of their own: the copy of the listed tree is what P2 walks.
    mount_tmpfs(reports_tree);
    for (const auto& f : reports) {
        stdfs::create_directories((reports_tree / f).parent_path());
        stdfs::copy_file(mnt / f, reports_tree / f);
    }
    daemon.reset();
    const std::vector<std::string> on_mount = below(mnt, files), on_tmpfs = below(tree, files),
                                   on_cold_tmpfs = below(cold_tree, files), reports_on_mount = below(mnt, reports),
                                   reports_on_tmpfs = below(reports_tree, reports);
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

            read_all(reports_on_mount);
            const auto [ours, floor] = alternate(
                o.runs, [&] { return time_it([&] { read_all(reports_on_mount); }); },
                [&] { return time_it([&] { read_all(reports_on_tmpfs); }); });
            const double r = static_cast<double>(reports.size());
            report.add({"P1 reports" + mode.suffix, "read every site's status and log, warm (open, read to EOF, close)",
                        format_seconds(ours.median()), format_seconds(floor.median()), ours.median() / floor.median(),
                        "(reported)", true,
                        printf_text("%zu files; %s vs %s a file.", reports.size(), format_seconds(ours.median() / r).c_str(),
                                    format_seconds(floor.median() / r).c_str())});

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

// Runs of `a` and of `b` alternating (`runs` each), every run a batch of writes; every write of a
// side pooled, since the p50 and p99 are over writes, not runs.
std::pair<Samples, Samples> alternate_batches(int runs, const std::function<Samples()>& a, const std::function<Samples()>& b) {
    std::pair<Samples, Samples> all;
    const auto append = [](Samples& to, const Samples& run) {
        to.values.insert(to.values.end(), run.values.begin(), run.values.end());
        return run.median();
    };
    alternate(runs, [&] { return append(all.first, a()); }, [&] { return append(all.second, b()); });
    return all;
}

// The first writes of a fresh mount pay one-time costs (the root's lookup, the daemon's threads
// starting, a first connection to etcd) that are not what P3 and E1 compare.
void warm_up(BranchWriter& writer, const Options& o) { writer.run(std::min(o.writes, 10)); }

void write_benchmark(const Options& o, Report& report, Backend& backend) {
    TempDir tmp(o, "write");
    const auto small_args = backend.provide(o.write_small, tmp.path() / "state-small");
    const auto large_args = backend.provide(o.write_large, tmp.path() / "state-large");
    // --no-reconcile: a deploy started by a write would compete with the writes being timed.
    const auto args = [](std::vector<std::string> a) {
        a.push_back("--no-reconcile");
        return a;
    };
    Daemon small(tmp.path() / "state-small", tmp.path() / "mnt-small", args(small_args));
    Daemon large(tmp.path() / "state-large", tmp.path() / "mnt-large", args(large_args));
    BranchWriter at_small(tmp.path() / "mnt-small", o.write_small), at_large(tmp.path() / "mnt-large", o.write_large);
    warm_up(at_small, o);
    warm_up(at_large, o);

    const auto [large_writes, small_writes] =
        alternate_batches(o.runs, [&] { return at_large.run(o.writes); }, [&] { return at_small.run(o.writes); });
    const double p50_large = large_writes.median(), p50_small = small_writes.median(), ratio = p50_large / p50_small;
    report.add(Row{
        .id = "P3" + backend.suffix(),
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

// E1: what the mount adds to etcd's own commit: the P3 write against a bare put of a record's size.
void etcd_write_benchmark(const Options& o, Report& report, EtcdBackend& backend) {
    TempDir tmp(o, "etcd-write");
    auto args = backend.provide(o.write_small, tmp.path() / "state");
    args.push_back("--no-reconcile");
    Daemon daemon(tmp.path() / "state", tmp.path() / "mnt", args);
    BranchWriter mount(tmp.path() / "mnt", o.write_small);
    warm_up(mount, o);

    const auto client = etcd::Client::connect({.endpoints = backend.etcd().endpoints()});
    // As large as what the mount's txn puts: the site's record, as it is in etcd now.
    const auto record = client->range({.key = "/bench/" + std::to_string(o.write_small) + "/sites/" + site_name(0)});
    if (const auto* e = std::get_if<etcd::Error>(&record)) throw std::runtime_error("etcd range: " + e->message);
    const auto& kvs = std::get<etcd::RangeResponse>(record).kvs;
    if (kvs.empty()) throw std::runtime_error("no record of " + site_name(0) + " in etcd: did the import go elsewhere?");
    const size_t bytes = kvs.front().value.size();
    // Each bare put is followed by a txn of the mount's shape (guarded by the key's mod_revision, a
    // read on failure) to the same key, timed apart: that splits a miss between etcd and the mount.
    int put = 0;
    Samples txns;
    std::map<std::string, int64_t> mod_of;
    const auto check = [](const auto& result, const char* what) {
        if (const auto* e = std::get_if<etcd::Error>(&result)) throw std::runtime_error(std::string(what) + ": " + e->message);
        return std::get<0>(result);
    };
    const auto bare = [&] {
        Samples s;
        for (int i = 0; i < o.writes; ++i, ++put) {
            // A changing value, as every mount write changes one; keys round-robin like the sites.
            const std::string key = "/bench-bare/" + site_name(put % o.write_small);
            const std::string value(bytes, static_cast<char>('a' + put % 26));
            auto start = SteadyClock::now();
            const auto r = client->put(key, value);
            s.values.push_back(seconds_since(start));
            mod_of[key] = check(r, "etcd put");
            etcd::TxnRequest txn;
            txn.compare.push_back({key, etcd::Compare::Target::ModRevision, etcd::Compare::Result::Equal, mod_of[key], {}});
            txn.success.push_back({etcd::Op::Kind::Put, key, value, {}, 0});
            txn.failure.push_back({etcd::Op::Kind::Range, key, {}, {}, 0});
            start = SteadyClock::now();
            const auto t = client->txn(txn);
            txns.values.push_back(seconds_since(start));
            if (!check(t, "etcd txn").succeeded) throw std::runtime_error("etcd txn: the guard failed on " + key);
        }
        return s;
    };
    bare();  // the client's connection, made by its first call
    txns.values.clear();

    const auto [ours, base] = alternate_batches(o.runs, [&] { return mount.run(o.writes); }, bare);
    const double ratio = ours.median() / base.median();
    report.add(Row{
        .id = "E1",
        .what = "one committed branch write through the mount on etcd vs a bare put to the cluster, p50",
        .measured = format_seconds(ours.median()),
        .baseline = format_seconds(base.median()),
        .ratio = ratio,
        .target = "<= 1.5",
        .met = ratio <= 1.5,
        .note = printf_text("3-member etcd on loopback, %d sites; p50 of %zu writes a side (%d runs of %d, "
                            "alternating); bare put of %zu bytes (the site's record); p99 %s vs %s. A bare txn of "
                            "the mount's shape (mod_revision guard, put, read on failure), after each put: p50 %s, "
                            "p99 %s.",
                            o.write_small, ours.values.size(), o.runs, o.writes, bytes,
                            format_seconds(ours.quantile(0.99)).c_str(), format_seconds(base.quantile(0.99)).c_str(),
                            format_seconds(txns.median()).c_str(), format_seconds(txns.quantile(0.99)).c_str())});
}

void memory_benchmark(const Options& o, Report& report, Backend& backend) {
    TempDir tmp(o, "memory");
    auto args = backend.provide(o.memory_sites, tmp.path() / "state");
    args.push_back("--no-reconcile");
    Daemon daemon(tmp.path() / "state", tmp.path() / "mnt", args);
    // Every node looked up and read once, so the inode table holds all of them.
    // Before any lookup: the store's share, apart from the inode table's.
    const double store_rss = memory_of(daemon.pid()).first;
    const std::vector<std::string> files = listed_files(tmp.path() / "mnt");
    read_all(below(tmp.path() / "mnt", files));
    const auto [rss, hwm] = memory_of(daemon.pid());
    constexpr double kTarget = 64.0 * 1024 * 1024;
    report.add(Row{.id = "P6 memory" + backend.suffix(),
                   .what = "daemon resident memory (VmRSS) with every node looked up and read",
                   .measured = format_mib(rss),
                   .baseline = "",
                   .ratio = std::nullopt,
                   .target = "<= 64 MiB",
                   .met = rss <= kTarget,
                   .note = printf_text("%d sites, %zu files read once; peak (VmHWM) %s, %s once mounted, before "
                                       "any lookup. No releases exist (--no-reconcile, nothing deployed), so this is "
                                       "the store and the inode table.",
                                       o.memory_sites, files.size(), format_mib(hwm).c_str(),
                                       format_mib(store_rss).c_str())});
}

void render_benchmark(const Options& o, Report& report) {
    // Every site with rules files of a typical size and a 404 page; one in four a single-page
    // app, one in three with a www name that redirects.
    hooks::SiteRules rules;
    rules.redirects = hooks::parse_redirects("/old /new 301\n/blog/:year/:slug /posts/:year/:slug 302\n"
                                             "/docs/* /handbook/:splat 301\n/app/* /index.html 200\n");
    rules.headers = hooks::parse_headers("/*\n  X-Frame-Options: DENY\n  Referrer-Policy: same-origin\n"
                                         "/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n");
    std::vector<hooks::ProxySite> sites;
    sites.reserve(static_cast<size_t>(o.memory_sites));
    for (int i = 0; i < o.memory_sites; ++i) {
        hooks::ProxySite s{.site = site_name(i),
                           .domains = {site_domain(i)},
                           .root = "/var/lib/sites/" + site_name(i) + "/current",
                           .commit = printf_text("%040x", i)};
        s.routing = i % 4 == 0 ? hooks::Routing::spa : hooks::Routing::static_site;
        if (i % 3 == 0) {
            s.domains.push_back("www." + site_domain(i));
            s.redirect_aliases = true;
        }
        s.not_found_page = true;
        s.rules = rules;
        sites.push_back(std::move(s));
    }
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
                   .note = printf_text("%d sites, each with 4 redirect and 2 header rules and a 404 page (one in four "
                                       "a single-page app, one in three with a redirecting www name), %zu bytes "
                                       "rendered; median of %d after a warm-up, slowest %s.",
                                       o.memory_sites, bytes, kRenders,
                                       format_seconds(renders.quantile(1.0)).c_str())});
}

}  // namespace

void run_fs_benchmarks(const Options& options, Report& report) {
    if (options.wants("P1") || options.wants("P2") || (options.on("file") && (options.wants("P3") || options.wants("P6")))) {
        FileBackend files(options);
        if (options.wants("P1") || options.wants("P2")) read_benchmarks(options, report, files);
        if (options.on("file")) {
            if (options.wants("P3")) write_benchmark(options, report, files);
            if (options.wants("P6")) memory_benchmark(options, report, files);
        }
    }
    if (options.wants("P6")) render_benchmark(options, report);
    if (options.wants("E1") || (options.on("etcd") && (options.wants("P3") || options.wants("P6")))) {
        EtcdBackend etcd(options);
        if (options.wants("E1")) etcd_write_benchmark(options, report, etcd);
        if (options.on("etcd")) {
            if (options.wants("P3")) write_benchmark(options, report, etcd);
            if (options.wants("P6")) memory_benchmark(options, report, etcd);
        }
    }
}

}  // namespace sitesfs::bench
