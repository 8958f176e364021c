// What every benchmark section shares: timing, A/B alternation, the report, temp dirs, a daemon.
#include "tests/bench/bench.hpp"

#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/integration/mount_fixture.hpp"
#include "tests/support/etcd.hpp"

namespace sitesfs::bench {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

Seconds seconds_since(SteadyClock::time_point start) {
    return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

Seconds time_it(const std::function<void()>& f) {
    const auto start = SteadyClock::now();
    f();
    return seconds_since(start);
}

double Samples::median() const { return quantile(0.5); }

double Samples::quantile(double q) const {
    if (values.empty()) return std::nan("");
    std::vector<double> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    const double rank = std::ceil(q * static_cast<double>(sorted.size()));
    const size_t index = static_cast<size_t>(std::clamp(rank, 1.0, static_cast<double>(sorted.size()))) - 1;
    return sorted[index];
}

std::pair<Samples, Samples> alternate(int runs, const std::function<double()>& a, const std::function<double()>& b) {
    std::pair<Samples, Samples> out;
    for (int i = 0; i < runs; ++i) {
        out.first.values.push_back(a());
        out.second.values.push_back(b());
    }
    return out;
}

std::string format_seconds(double s) {
    char buf[64];
    if (s >= 1.0) std::snprintf(buf, sizeof buf, "%.2f s", s);
    else if (s >= 1e-3) std::snprintf(buf, sizeof buf, "%.1f ms", s * 1e3);
    else std::snprintf(buf, sizeof buf, "%.0f µs", s * 1e6);
    return buf;
}

std::string format_ratio(double r) {
    char buf[32];
    std::snprintf(buf, sizeof buf, r < 0.1 ? "%.3f" : "%.2f", r);
    return buf;
}

std::string format_mib(double bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024.0));
    return buf;
}

namespace {

// One line of the terminal table: id, sitesfs, baseline, ratio, goal, verdict.
std::string table_line(const std::string& id, const std::string& measured, const std::string& baseline,
                       const std::string& ratio, const std::string& target, const std::string& verdict) {
    char line[512];
    std::snprintf(line, sizeof line, "%-15s %-12s %-12s %-8s %-10s %s\n", id.c_str(), measured.c_str(),
                  baseline.c_str(), ratio.c_str(), target.c_str(), verdict.c_str());
    return line;
}

std::string table_line(const Row& r) {
    return table_line(r.id, r.measured, r.baseline, r.ratio ? format_ratio(*r.ratio) : "-", r.target,
                      r.met ? "met" : "MISSED");
}

}  // namespace

void Report::add(Row row) {
    std::fputs(table_line(row).c_str(), stdout);
    std::fflush(stdout);
    rows_.push_back(std::move(row));
}

std::string Report::table() const {
    std::string out = table_line("target", "sitesfs", "baseline", "ratio", "goal", "");
    for (const Row& r : rows_) out += table_line(r);
    return out;
}

namespace {

std::string first_line_of(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string machine() {
    utsname u{};
    ::uname(&u);
    std::string cpu;
    std::ifstream info("/proc/cpuinfo");
    for (std::string line; std::getline(info, line);)
        if (line.starts_with("model name")) {
            cpu = line.substr(line.find(':') + 2);
            break;
        }
    std::string os;
    std::ifstream release("/etc/os-release");
    for (std::string line; std::getline(release, line);)
        if (line.starts_with("PRETTY_NAME=")) os = line.substr(13, line.size() - 14);
    const auto caddy = it::run({"caddy", "version"});
    const auto git = it::run({"git", "--version"});
    return os + ", Linux " + u.release + ", " + std::to_string(std::thread::hardware_concurrency()) + " CPUs (" + cpu +
           "), " + std::to_string(sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGE_SIZE) / (1024L * 1024 * 1024)) +
           " GiB; caddy " + first_line_of(caddy.out) + "; " + first_line_of(git.out);
}

std::string today() {
    const std::time_t now = std::time(nullptr);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
    return buf;
}

// How each target is measured and what its baseline does; printed for the targets that ran.
constexpr std::pair<const char*, const char*> kMethods[] = {
    {"P1", "Every listed file of every site (not `wait`, not `.metrics`) is opened, read to EOF and closed by "
           "the benchmark process, like one `cat` of all; the file list is taken once beforehand. Baseline: "
           "a tmpfs holding a copy of the same tree, read the same way. Warm: after one untimed pass. Cold: "
           "the first pass after a fresh mount (for tmpfs: after a fresh mount and copy). `ro` rows use a "
           "read-only mount (`-o ro`), as monitoring does."},
    {"P2", "A walk of the whole tree: opendir/readdir of every directory and fstatat of every entry, like "
           "`find -printf`, warm, against the same tmpfs copy."},
    {"P3", "One committed write (open O_TRUNC, write, close; the value commits, fsynced, in the write() that ends its line) to `branch` of a "
           "site picked round-robin, with `--no-reconcile` so no deploy runs. p50 over all writes of a "
           "store with many sites against the same at a store with few sites. `etcd` rows: the same with "
           "`[store] backend = \"etcd\"`, each store under its own prefix of a 3-member etcd on loopback that "
           "the benchmark starts (sites imported with `sitesfs --import`, one txn a site)."},
    {"P4", "Deploy: sites declared in the state dir (imported), from the daemon's start until "
           "`.metrics` counts every site `live` through a real Caddy (validated, reloaded, health-checked). "
           "Baseline: tests/bench/git_cli_loop.sh, what the seed tool does with the git CLI (`git clone "
           "--depth 1` per site, then one Caddyfile and one `caddy reload`). Tick: every site live, no "
           "remote change; sitesfs's `sitesfs_poll_tick_seconds` against the loop's `git fetch --depth 1` + "
           "`git reset --hard` per site. Each site has its own local bare repo."},
    {"P5", "Write a commit id into `SITE/commit`, then GET through Caddy with the site's Host header until the "
           "new body arrives. Floor, alternated with it: checkout of the same tree with the git CLI, "
           "`caddy validate`, `caddy reload`, GET until the new body."},
    {"P6", "Resident memory (VmRSS) of the daemon serving many sites with no releases, after every listed file "
           "was read once (so every inode is in its table). Render: the Caddy config for that many sites, "
           "median of 20 renders in this process. The `etcd` row: the same with the sites in etcd (render does "
           "not depend on the store)."},
    {"E1", "The P3 write to a site of the small store on the etcd backend (one txn guarded by the site's "
           "revision, committed by the 3-member cluster before the write() returns) against a bare "
           "etcd::Client::put from the benchmark process of a value as large as that site's record in etcd, to "
           "the same cluster; runs of writes alternating, p50 over all writes of each side."},
    {"E2", "Two sitesfs hosts on one 3-member etcd, each with its own mount, state dir, data dir and Caddy, one "
           "site placed on both: write a commit id into `SITE/commit` on host A, then GET through B's Caddy "
           "(and A's, polled alternately in the same loop) until the new body arrives; every commit exists "
           "in the repo beforehand, as in P5. The next round starts once `wait` on A says both hosts settled. "
           "Baseline: the same write served by A's own Caddy."},
    {"B1", "A Hugo site committed to a local repository and fetched into a bare one as a deploy does; then "
           "what the build and stage steps do for it, timed together: the tree written into a scratch dir "
           "(GitRepo::write_tree), handed to nobody, `hugo --minify --destination {out}` run in bubblewrap "
           "(run_build), and the output copied into a release (copy_build_output). Baseline, alternated with it: "
           "the same `hugo` command run directly, as root, on a checkout of the same tree. `page`: a one-page "
           "site, where the fixed costs show; `blog`: a site of --build-pages posts of five paragraphs each; `blog "
           "tmpfs`: the same with the scratch dir on a tmpfs, as `[build] dir` on one puts it (the release still "
           "goes to disk)."},
};

// Why a target is missed, and what would close it: the mechanism behind the figure, found by
// profiling (strace -c and perf of the daemon during the run). Printed for rows that missed.
constexpr std::pair<const char*, const char*> kMisses[] = {
    {"P1 warm", "A read-write mount sends OPEN and RELEASE to the daemon for every open, and the read-write "
                "fields, which are all a site lists, are read with direct I/O on this mount (a cached read is cut "
                "or padded at the size their writers give the inode: docs/filesystem.md, Caching, says what was "
                "tried), which adds two READs a file: 4 round trips a file, each about 20 µs on this machine "
                "against 4-7 µs for a whole tmpfs open+read+close. The opens cannot be dropped on this mount: "
                "writers need their own handle (a verdict per write() with direct I/O, O_TRUNC), and answering ENOSYS "
                "to OPEN switches the whole connection to opens the daemon never sees. The read-only mount does "
                "exactly that (0 requests a warm pass; its row meets the target), so monitoring that reads "
                "everything should use it (docs/filesystem.md). What would close it on the read-write mount: "
                "opens that the kernel resolves per file (FUSE passthrough, or a per-inode no-open flag), which "
                "need libfuse 3.16+ and are not in Debian 12."},
    {"P1 cold", "A first read costs LOOKUP, OPEN, READ and RELEASE per file (read-only: LOOKUP and READ), each a "
                "round trip that wakes a daemon thread; perf puts about half of the daemon's samples in the "
                "scheduler's task switch and under 5% in sitesfs's own code. tmpfs has no cold state at all (its "
                "dentries and pages are the files), so its cold pass is its warm pass. A shell glob such as "
                "`cat /sites/*/*` lists every directory first and READDIRPLUS then answers the lookups, which "
                "takes the LOOKUP out. What would close it: fewer round trips per file (the same passthrough or "
                "no-open support as for warm reads, and pushing a file's bytes with the entry), or batching "
                "requests per wake-up in the FUSE loop."},
    {"P4 deploy", "Caddy and file creation. perf during a deploy: in one profile about 75% of the CPU went to "
                  "caddy processes (each batch runs `caddy validate` and `caddy reload`, and the server "
                  "re-provisions every site) and the rest to sitesfs, half of that in the kernel; in another, "
                  "right after a previous run's data was deleted, ext4's inode allocator (recently_deleted, "
                  "find_inode_bit) took 40% of sitesfs's CPU (a deploy creates ~28 files a site: bare repo, pack, "
                  "release, state). Group commit already cut the reloads from 200 to ~14 a deploy; at 200 sites "
                  "one validate costs ~50-90 ms and one reload ~70-100 ms. The baseline clones with `git clone "
                  "--depth 1` from a local path in 30-75 ms a site here, not the 115 ms the target was set from, "
                  "so 0.1 asks for under ~5 ms a site including Caddy. What would close it: validating through "
                  "the running Caddy's admin API instead of a new `caddy` process per batch, a short gathering "
                  "delay when many runs are in flight (fewer, larger batches), and fewer files a site (the bare "
                  "repo's template files and FETCH_HEAD are never used)."},
    {"E1",
           "Not etcd's txn: a bare txn of the mount's shape (mod_revision guard, put, read on failure) from "
           "the benchmark process takes about 0.1 ms more than the bare put (1.7 vs 1.6 ms p50 on a quiet "
           "machine), so the gap is the mount's path around one synchronous gRPC call made on the FUSE "
           "thread. perf during E1 on a quiet machine: about 5 FUSE requests a write (open with O_TRUNC, "
           "write, flush, release), and the daemon's CPU spread over the kernel's syscall and interrupt paths "
           "(a quarter of its samples), gRPC, protobuf and malloc, with sitesfs's own code (validating, "
           "rendering the record, applying it to the cache, composing what readers see) a small part. On a "
           "quiet machine the ratio sits at the line: 1.46 and 1.50 in two runs a minute apart; with "
           "compilers sharing the 2 CPUs it reaches 1.6-1.9. What would close it: fewer round trips a write "
           "(the kernel's open and flush cannot be skipped on a read-write mount) or an asynchronous etcd "
           "client that does not wake a completion-queue thread per call."},
    {"B1 page",
           "A fixed cost per build: bwrap's namespaces and mounts, the scratch dir made and handed to the build "
           "user, about 20-25 ms against a one-page Hugo run of about 115 ms on this machine."},
    {"B1 blog",
           "Files are made twice more than Hugo alone makes them: the commit's tree is written into the scratch "
           "dir for the build, and the build's output is copied into the release, on this VM's disk several "
           "hundred microseconds a file; run directly, Hugo reads a checkout and writes its output once. The "
           "copy is what keeps an untrusted build's links, FIFOs, ACLs and open files out of the web root "
           "(renaming the output in place would keep inodes the build made, which another build as the same "
           "user could still hold open). What would close it: the scratch dir on a tmpfs, so that the tree and "
           "the output go to memory and the release to disk once, as Hugo alone does, at the price of a build's "
           "files counting against memory: `[build] dir` on a tmpfs, the `blog tmpfs` row."},
    {"P6 memory etcd",
           "The etcd store's daemon holds about 10 MiB more than the file store's with 10,000 sites: gRPC's "
           "and protobuf's libraries and threads (with 10 sites: 23.8 against 19.5 MiB) and the view's index "
           "of sites and domain claims (about 2.5 MiB, heaptrack). Both keep the same records and the same "
           "inode table. History: 115.3 MiB with 80,001 files before the store kept each record once; 75.2 "
           "MiB with 110,001 before the list was applied page by page and a record's fields became an array "
           "indexed by the schema instead of a map keyed by name; 58.9 MiB after. What would close a miss: "
           "the view's per-site index kept in the published records rather than in maps of its own."},
};

}  // namespace

std::string Report::markdown(const Options& o, const std::string& command) const {
    std::ostringstream out;
    out << "# Benchmarks\n\n"
        << "Generated by `" << command << "` on " << today() << ".\n\n"
        << "Machine: " << machine() << ".\n\n"
        << "Every ratio is the median of sitesfs's runs over the median of the baseline's runs, measured in the same "
           "process run, alternating sitesfs and baseline (" << o.runs << " runs each unless a row says otherwise). "
           "Rows without a baseline are absolute targets. How each figure is taken, and what each baseline does, is "
           "described below the table and in `tests/bench/`.\n\n";
    if (o.smoke) out << "**Smoke run: tiny sizes, the figures mean nothing.**\n\n";
    out << "| target | measured | sitesfs | baseline | ratio | goal | |\n|---|---|---|---|---|---|---|\n";
    for (const Row& r : rows_)
        out << "| " << r.id << " | " << r.what << " | " << r.measured << " | " << (r.baseline.empty() ? "—" : r.baseline)
            << " | " << (r.ratio ? format_ratio(*r.ratio) : "—") << " | " << r.target << " | " << (r.met ? "met" : "**missed**")
            << " |\n";
    out << "\nSizes: P1/P2 " << o.read_sites << " sites; P3 " << o.write_small << " vs " << o.write_large << " sites, "
        << o.writes << " writes a run; P4 " << o.deploy_sites << " sites deployed, " << o.poll_sites
        << " sites polled; P5 " << o.deploys << " deploys a side; P6 " << o.memory_sites << " sites; E2 "
        << o.cluster_deploys << " deploys.\n\n";
    out << "## How each figure is taken\n\n";
    for (const auto& [id, method] : kMethods) {
        const bool ran = std::any_of(rows_.begin(), rows_.end(), [id = std::string(id)](const Row& r) { return r.id.starts_with(id); });
        if (ran) out << "- **" << id << "**: " << method << "\n";
    }
    out << "\n";
    bool misses = false;
    for (const auto& [id, why] : kMisses) {
        const bool missed = std::any_of(rows_.begin(), rows_.end(), [id = std::string(id)](const Row& r) {
            return !r.met && (r.id == id || r.id.starts_with(id + " "));
        });
        if (!missed) continue;
        if (!misses) out << "## Missed targets: why, and what would close them\n\n";
        misses = true;
        out << "- **" << id << "**: " << why << "\n";
    }
    if (misses) out << "\n";
    bool notes = false;
    for (const Row& r : rows_) {
        if (r.note.empty()) continue;
        if (!notes) out << "## Notes\n\n";
        notes = true;
        out << "- **" << r.id << "**: " << r.note << "\n";
    }
    return out.str();
}

TempDir::TempDir(const Options& options, const std::string& label) {
    const stdfs::path base = options.work.empty() ? stdfs::path("/tmp") : options.work;
    std::string pattern = (base / ("sitesfs-bench-" + label + "-XXXXXX")).string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
    path_ = pattern;
}

TempDir::~TempDir() {
    std::vector<std::string> ours;
    for (const auto& p : it::mount_points())
        if (p.starts_with(path_.string() + "/")) ours.push_back(p);
    std::sort(ours.rbegin(), ours.rend());
    for (const auto& p : ours) {
        it::run({"umount", p}, {.timeout = 10s});
        if (it::is_mounted(p)) it::run({"umount", "-l", p}, {.timeout = 10s});
    }
    std::error_code ec;
    stdfs::remove_all(path_, ec);
    if (ec) std::fprintf(stderr, "bench: cannot remove %s: %s\n", path_.c_str(), ec.message().c_str());
}

Daemon::Daemon(const stdfs::path& state_dir, const stdfs::path& mountpoint, const std::vector<std::string>& args,
               const std::vector<std::string>& env)
    : mountpoint_(mountpoint), log_(mountpoint.parent_path() / (mountpoint.filename().string() + ".log")) {
    std::vector<std::string> argv{SITESFS_BINARY, "-f", "--state-dir", state_dir.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(mountpoint.string());
    std::error_code ec;
    stdfs::create_directories(mountpoint, ec);
    pid_ = it::spawn_logged(argv, log_, env);
    if (pid_ < 0) throw std::runtime_error("cannot start " + argv[0]);
    const auto deadline = SteadyClock::now() + 30s;
    for (;;) {
        int status;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("sitesfs exited before mounting: " + it::wait_status_text(status) + "\n" +
                                     it::slurp(log_));
        }
        if (it::mount_answers(mountpoint_)) return;
        if (SteadyClock::now() > deadline) {
            stop();
            throw std::runtime_error("sitesfs did not mount within 30 s:\n" + it::slurp(log_));
        }
        std::this_thread::sleep_for(5ms);
    }
}

Daemon::~Daemon() { stop(); }

void Daemon::stop() {
    if (pid_ > 0) it::terminate_child(pid_, 10s);
    pid_ = -1;
    for (int layer = 0; layer < 4 && it::is_mounted(mountpoint_); ++layer)
        it::run({"fusermount3", "-u", "-z", mountpoint_.string()}, {.timeout = 10s});
}

std::string site_name(int i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "s%05d", i);
    return buf;
}

std::string site_domain(int i) { return site_name(i) + ".bench.test"; }

void import_sites(const stdfs::path& state_dir, int count, const std::function<std::string(int)>& repo_of,
                  const std::vector<std::string>& args) {
    const stdfs::path seed = state_dir.parent_path() / (state_dir.filename().string() + "-seed.toml");
    {
        std::ofstream out(seed);
        for (int i = 0; i < count; ++i)
            out << "[sites." << site_name(i) << "]\ndomain = \"" << site_domain(i) << "\"\nrepo = \"" << repo_of(i)
                << "\"\nbranch = \"main\"\n";
    }
    std::vector<std::string> argv{SITESFS_BINARY, "--state-dir", state_dir.string(), "--allow-local-repos"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--import", seed.string()});
    must_run(argv);
    stdfs::remove(seed);
}

Etcd::Etcd(const Options& options) : dir_(options, "etcd") {
    if (!stdfs::exists("/usr/bin/etcd") || !stdfs::exists("/usr/bin/etcdctl"))
        throw std::runtime_error("etcd-server/etcd-client not installed (scripts/install-deps)");
    cluster_ = std::make_unique<it::EtcdCluster>(dir_.path(), it::EtcdCluster::Options{});
    std::string why;
    if (!cluster_->start(&why)) throw std::runtime_error(why);
}

// Here, where EtcdCluster is complete. The members stop before their data dir goes (member order).
Etcd::~Etcd() = default;

std::vector<std::string> Etcd::endpoints() const { return cluster_->endpoints(); }

std::string Etcd::store_toml(const std::string& host, const std::string& prefix) const {
    std::string endpoints;
    for (const auto& e : cluster_->endpoints()) endpoints += (endpoints.empty() ? "\"" : ", \"") + e + "\"";
    return "[store]\nbackend = \"etcd\"\nendpoints = [" + endpoints + "]\nprefix = \"" + prefix + "\"\nhost = \"" +
           host + "\"\n";
}

std::pair<double, double> memory_of(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    double rss = 0, hwm = 0;
    for (std::string line; std::getline(status, line);) {
        if (line.starts_with("VmRSS:")) rss = std::stod(line.substr(6)) * 1024;
        if (line.starts_with("VmHWM:")) hwm = std::stod(line.substr(6)) * 1024;
    }
    return {rss, hwm};
}

std::string must_run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                     std::chrono::seconds timeout) {
    const it::Run r = it::run(argv, {.timeout = timeout, .env = env});
    if (r.code != 0) {
        std::string cmd;
        for (const auto& a : argv) cmd += a + " ";
        throw std::runtime_error(cmd + "failed: " + it::describe(r));
    }
    return r.out;
}

}  // namespace sitesfs::bench
