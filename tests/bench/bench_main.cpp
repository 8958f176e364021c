// sitesfs-bench: measures sitesfs against its baselines (tmpfs, a git-CLI reconcile loop, the Caddy
// floor) in one run and writes docs/benchmarks.md. See `sitesfs-bench --help`.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>

#include "tests/bench/bench.hpp"

namespace {

using sitesfs::bench::Options;

constexpr const char* kUsage = R"(Usage: sitesfs-bench [options]

Runs the benchmarks P1..P6, E1, E2, B1 (docs/benchmarks.md explains each), prints a table, and
with --out writes the markdown report. Needs root, /dev/fuse, caddy, git, etcd, hugo and bwrap.

  --smoke            tiny sizes: proves every section runs (CI); the figures mean nothing
  --runs N           runs per side of every comparison (default 5)
  --only P1,P4       run only these targets (P1..P6, E1, E2, B1)
  --backends B       P3 and P6 on these stores: file, etcd or file,etcd (default both)
  --out FILE         write the markdown report to FILE
  --work DIR         where temporary trees go (default /tmp)
  --read-sites N     P1/P2 tree size (default 2000)
  --write-sites S,L  P3 small and large stores (default 10,10000)
  --writes N         P3 writes per run (default 200)
  --deploy-sites N   P4 initial deploy (default 200)
  --poll-sites N     P4 no-op poll tick (default 1000)
  --deploys N        P5 deploys per side (default 50)
  --memory-sites N   P6 (default 10000)
  --cluster-deploys N  E2 deploys (default 50)
  --build-pages N    B1's larger Hugo site (default 1000)
)";

int number(const char* text, const char* flag) {
    char* end = nullptr;
    const long v = std::strtol(text, &end, 10);
    if (!*text || *end || v <= 0 || v > 1000000) throw std::invalid_argument(std::string(flag) + " needs a positive number");
    return static_cast<int>(v);
}

// A comma-separated list, each item one of `known`.
std::set<std::string> items(const std::string& list, const std::set<std::string>& known, const char* flag) {
    std::set<std::string> out;
    for (size_t start = 0; start <= list.size();) {
        const size_t end = std::min(list.find(',', start), list.size());
        const std::string item = list.substr(start, end - start);
        if (!known.contains(item)) {
            std::string names;
            for (const auto& k : known) names += (names.empty() ? "" : ", ") + k;
            throw std::invalid_argument(std::string(flag) + " takes " + names + ", not '" + item + "'");
        }
        out.insert(item);
        start = end + 1;
    }
    return out;
}

// `command` is how to reproduce the run: scripts/bench and the options that change the figures.
Options parse(int argc, char** argv, std::string& command) {
    Options o;
    command = "scripts/bench";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        }
        if (a != "--out" && a != "--work") command += " " + a;
        if (a == "--smoke") {
            o.smoke = true;
            continue;
        }
        if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value (or is unknown; see --help)");
        const char* v = argv[++i];
        if (a != "--out" && a != "--work") command += std::string(" ") + v;
        if (a == "--runs") o.runs = number(v, "--runs");
        else if (a == "--read-sites") o.read_sites = number(v, "--read-sites");
        else if (a == "--writes") o.writes = number(v, "--writes");
        else if (a == "--deploy-sites") o.deploy_sites = number(v, "--deploy-sites");
        else if (a == "--poll-sites") o.poll_sites = number(v, "--poll-sites");
        else if (a == "--deploys") o.deploys = number(v, "--deploys");
        else if (a == "--memory-sites") o.memory_sites = number(v, "--memory-sites");
        else if (a == "--cluster-deploys") o.cluster_deploys = number(v, "--cluster-deploys");
        else if (a == "--build-pages") o.build_pages = number(v, "--build-pages");
        else if (a == "--out") o.out = v;
        else if (a == "--work") o.work = v;
        else if (a == "--write-sites") {
            const std::string s = v;
            const auto comma = s.find(',');
            if (comma == std::string::npos) throw std::invalid_argument("--write-sites needs SMALL,LARGE");
            o.write_small = number(s.substr(0, comma).c_str(), "--write-sites");
            o.write_large = number(s.substr(comma + 1).c_str(), "--write-sites");
        } else if (a == "--only") {
            o.only = items(v, {"P1", "P2", "P3", "P4", "P5", "P6", "E1", "E2", "B1"}, "--only");
        } else if (a == "--backends") {
            o.backends = items(v, {"file", "etcd"}, "--backends");
        } else {
            throw std::invalid_argument("unknown option " + a + " (see --help)");
        }
    }
    if (o.smoke) {
        o.runs = std::min(o.runs, 2);
        o.read_sites = 20;
        o.write_small = 5;
        o.write_large = 50;
        o.writes = 10;
        o.deploy_sites = 4;
        o.poll_sites = 5;
        o.deploys = 3;
        o.memory_sites = 50;
        o.cluster_deploys = 3;
    }
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    std::string command;
    Options options;
    try {
        options = parse(argc, argv, command);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sitesfs-bench: %s\n", e.what());
        return 2;
    }
    if (::geteuid() != 0) {
        std::fprintf(stderr, "sitesfs-bench: run it as root (it mounts tmpfs and FUSE file systems)\n");
        return 2;
    }
    sitesfs::bench::Report report;
    int failed = 0;
    const auto section = [&](const char* name, void (*run)(const Options&, sitesfs::bench::Report&)) {
        try {
            run(options, report);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "sitesfs-bench: %s: %s\n", name, e.what());
            ++failed;
        }
    };
    if (options.wants("P1") || options.wants("P2") || options.wants("P3") || options.wants("P6") || options.wants("E1"))
        section("filesystem (P1, P2, P3, P6, E1)", sitesfs::bench::run_fs_benchmarks);
    if (options.wants("P4") || options.wants("P5") || options.wants("E2"))
        section("deploy (P4, P5, E2)", sitesfs::bench::run_deploy_benchmarks);
    if (options.wants("B1")) section("build (B1)", sitesfs::bench::run_build_benchmarks);
    std::printf("\n%s", report.table().c_str());
    if (!options.out.empty()) {
        std::ofstream out(options.out);
        out << report.markdown(options, command);
        if (!out) {
            std::fprintf(stderr, "sitesfs-bench: cannot write %s\n", options.out.c_str());
            return 1;
        }
        std::printf("report: %s\n", options.out.c_str());
    }
    // Missing a target is a finding for the report, not a failure; a section that could not run is.
    return failed ? 1 : 0;
}
