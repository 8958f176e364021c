// The benchmark harness: every figure is a ratio against a baseline measured in the same run,
// alternating A B A B, the median of several runs (the machines are shared and noisy). Absolute
// targets (memory, render time) are reported as measured. Sections live in files named after
// what they measure (fs_bench.cpp, deploy_bench.cpp); this is what they share.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sitesfs::it {
class EtcdCluster;
}

namespace sitesfs::bench {

namespace stdfs = std::filesystem;

struct Options {
    bool smoke = false;      // tiny sizes: proves every section runs end to end, figures mean nothing
    int runs = 5;            // A/B pairs per comparison (the median is reported)
    int read_sites = 2000;   // P1, P2
    int write_small = 10;    // P3: sites in the small store
    int write_large = 10000; // P3: sites in the large store
    int writes = 200;        // P3: writes per run
    int deploy_sites = 200;  // P4: initial deploy
    int poll_sites = 1000;   // P4: no-op poll tick
    int deploys = 50;        // P5: write -> live, per side
    int memory_sites = 10000;  // P6
    int cluster_deploys = 50;  // E2: write on one host -> served by the other
    int build_pages = 1000;    // B1: the larger Hugo site
    std::set<std::string> only;      // P1..P6, E1, E2, B1; empty: all
    std::set<std::string> backends;  // P3, P6 on "file" and/or "etcd"; empty: both
    stdfs::path out;             // markdown report; empty: not written
    stdfs::path work;            // where temp dirs go (default /tmp)
    bool wants(const std::string& id) const { return only.empty() || only.contains(id); }
    bool on(const std::string& backend) const { return backends.empty() || backends.contains(backend); }
};

// Seconds of wall time, for durations measured by the sections.
using Seconds = double;
Seconds seconds_since(std::chrono::steady_clock::time_point start);
// Times f() once.
Seconds time_it(const std::function<void()>& f);

struct Samples {
    std::vector<double> values;
    double median() const;
    double quantile(double q) const;  // nearest rank, q in [0, 1]
};

// Runs a(), b(), a(), b() ... `runs` times each; every call returns one measurement (seconds or any
// unit, the same for both). Returns {samples of a, samples of b}.
std::pair<Samples, Samples> alternate(int runs, const std::function<double()>& a, const std::function<double()>& b);

// One line of the report.
struct Row {
    std::string id;        // "P1 warm"
    std::string what;      // what was measured, in words
    std::string measured;  // sitesfs's figure, with unit ("412 ms", "38.1 MiB")
    std::string baseline;  // the baseline's figure with unit, or "" for an absolute target
    std::optional<double> ratio;  // measured / baseline (ratio of medians); nullopt: absolute target
    std::string target;    // "<= 2.0", "<= 64 MiB"
    bool met = false;
    std::string note;      // a finding, the profile for a miss, or "" (goes into the report)
};

class Report {
public:
    void add(Row row);
    const std::vector<Row>& rows() const { return rows_; }
    // A fixed-width table for the terminal.
    std::string table() const;
    // The whole docs/benchmarks.md: the table, notes, machine, date, and `command` to reproduce.
    std::string markdown(const Options& options, const std::string& command) const;

private:
    std::vector<Row> rows_;
};

// "412 ms", "1.23 s", "85 µs"
std::string format_seconds(double s);
std::string format_ratio(double r);  // "1.42"
std::string format_mib(double bytes);  // "38.1 MiB"

// A temporary directory (under Options::work), removed with everything in it, mounts below it
// unmounted first, when this goes out of scope.
class TempDir {
public:
    TempDir(const Options& options, const std::string& label);
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const stdfs::path& path() const { return path_; }

private:
    stdfs::path path_;
};

// A sitesfs daemon serving `mountpoint` in the foreground: started with
// sitesfs -f --state-dir STATE ARGS... MOUNTPOINT, ready once the mount answers. Stopped with
// SIGTERM (then SIGKILL) and the mount cleared by the destructor. Throws std::runtime_error with
// the daemon's log when it does not come up within 30 s.
class Daemon {
public:
    Daemon(const stdfs::path& state_dir, const stdfs::path& mountpoint, const std::vector<std::string>& args,
           const std::vector<std::string>& env = {});
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;
    pid_t pid() const { return pid_; }
    const stdfs::path& log() const { return log_; }
    void stop();

private:
    stdfs::path mountpoint_, log_;
    pid_t pid_ = -1;
};

// Writes a seed tool sites.toml with `count` sites named s00000, s00001, ..., domain
// sNNNNN.bench.test, the given repo (a function of the index) and branch main, and imports it into
// `state_dir` with `sitesfs --import` (`args` added: `--config C` imports into C's [store]).
// Throws on failure.
void import_sites(const stdfs::path& state_dir, int count, const std::function<std::string(int)>& repo_of,
                  const std::vector<std::string>& args = {});
std::string site_name(int i);    // "s00042"
std::string site_domain(int i);  // "s00042.bench.test"

// A 3-member etcd cluster of this run's own on loopback (tests/support/etcd.hpp), its data in a
// temp dir; every member stopped and the dir removed when this goes.
class Etcd {
public:
    explicit Etcd(const Options& options);
    ~Etcd();
    Etcd(const Etcd&) = delete;
    Etcd& operator=(const Etcd&) = delete;
    std::vector<std::string> endpoints() const;
    // The [store] section of a sitesfs config: this cluster, keys under `prefix`, host `host`.
    std::string store_toml(const std::string& host, const std::string& prefix) const;

private:
    TempDir dir_;
    std::unique_ptr<it::EtcdCluster> cluster_;
};

// Resident and peak memory of a process in bytes (VmRSS, VmHWM from /proc/PID/status).
std::pair<double, double> memory_of(pid_t pid);

// Runs argv, throws std::runtime_error with its output when it fails. Returns stdout.
std::string must_run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                     std::chrono::seconds timeout = std::chrono::seconds(600));

// The sections. Each adds its rows; a section that cannot run (a missing tool) throws.
void run_fs_benchmarks(const Options& options, Report& report);      // P1, P2, P3, P6, E1
void run_deploy_benchmarks(const Options& options, Report& report);  // P4, P5, E2
void run_build_benchmarks(const Options& options, Report& report);   // B1

}  // namespace sitesfs::bench
