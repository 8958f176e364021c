// P4, P5 and E2: deploying through sitesfs against what the seed tool does with the git CLI (P4),
// one write -> live against the least any deploy through Caddy has to do (P5), and one write on a
// host -> live on another host on the same etcd (E2). Every section has a
// Caddy of its own (tests/support/caddy.hpp) and every site its own bare repository on disk.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hooks/http_probe.hpp"
#include "tests/bench/bench.hpp"
#include "tests/integration/mount_fixture.hpp"
#include "tests/support/caddy.hpp"
#include "tests/support/git.hpp"

namespace sitesfs::bench {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

const stdfs::path kLoop = stdfs::path(SITESFS_SOURCE_DIR) / "tests/bench/git_cli_loop.sh";
const std::string kIndexBody = "<!doctype html><title>bench</title><h1>bench site</h1>\n";

// A Caddy of one section's own, so the sites one section leaves behind never weigh on the next
// section's reloads. Stopped before its directory goes (members go in reverse order).
class Proxy {
public:
    // `extra_import`: a file in the proxy's dir that the main config imports besides sites.conf
    // (P5's floor serves its site from it, so sitesfs's reloads and the floor's load the same config).
    Proxy(const Options& options, const std::string& label, const std::string& extra_import = "")
        : dir_(options, label), caddy_(dir_.path()) {
        if (!extra_import.empty()) {
            // An empty imported file fails to load; a comment is enough.
            it::spit(file(extra_import), "# nothing yet\n");
            it::spit(caddy_.main_config(),
                     it::slurp(caddy_.main_config()) + "\nimport " + file(extra_import).string() + "\n");
        }
        std::string why;
        if (!caddy_.start(&why)) throw std::runtime_error(why);
    }
    const it::CaddyServer& caddy() const { return caddy_; }
    stdfs::path file(const std::string& name) const { return dir_.path() / name; }
    // Serving no site, as before a first deploy.
    void reset() const {
        it::spit(caddy_.sites_file(), "# no sites yet\n");
        must_run(caddy_.reload_command(), caddy_.env());
    }
    // Config loads Caddy's admin API has taken so far: one per reload, whoever ran it.
    int loads() const {
        const std::string log = it::slurp(caddy_.log_file());
        int n = 0;
        for (size_t at = log.find("\"uri\":\"/load\""); at != std::string::npos; at = log.find("\"uri\":\"/load\"", at + 1)) ++n;
        return n;
    }

private:
    TempDir dir_;
    it::CaddyServer caddy_;
};

// One small site, copied per site: every site fetches from a remote of its own, as on a real host.
class SiteRepos {
public:
    SiteRepos(const Options& options, int count) : dir_(options, "repos") {
        it::TestRepo repo(dir_.path() / "template");
        const std::string sha = repo.commit({{"index.html", kIndexBody},
                                             {"style.css", "body { font-family: sans-serif; margin: 2em; }\n"},
                                             {"app.js", "document.querySelector('h1').title = 'bench';\n"},
                                             {"about.html", "<!doctype html><title>about</title><p>about</p>\n"}});
        if (sha.empty()) throw std::runtime_error("git failed making the site repository (the failure is printed above)");
        for (int i = 0; i < count; ++i) {
            const stdfs::path to = dir_.path() / "sites" / (site_name(i) + ".git");
            stdfs::create_directories(to);
            stdfs::copy(repo.bare(), to, stdfs::copy_options::recursive | stdfs::copy_options::copy_symlinks);
            urls_.push_back("file://" + to.string());
        }
    }
    const std::string& url(int i) const { return urls_.at(static_cast<size_t>(i)); }
    // The git-CLI loop's site list: "NAME ADDRESS REPO" a line, in domain order like the seed tool's blocks.
    void write_list(const stdfs::path& file, int count, int port) const {
        std::string text;
        for (int i = 0; i < count; ++i)
            text += site_name(i) + " http://" + site_domain(i) + ":" + std::to_string(port) + " " + url(i) + "\n";
        it::spit(file, text);
    }

private:
    TempDir dir_;
    std::vector<std::string> urls_;
};

// What the git-CLI loop and the floor run with: Caddy's HOME and nothing from the host's git config.
std::vector<std::string> tool_env(const it::CaddyServer& caddy) {
    auto env = caddy.env();
    env.insert(env.end(), {"GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C"});
    return env;
}

// The value of one sample in Prometheus text (`name` with its labels), -1 when it is not there.
double metric(const std::string& text, const std::string& name) {
    const size_t at = text.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
}

const std::string kLive = "sitesfs_sites{state=\"live\"}";
const std::string kFailed = "sitesfs_sites{state=\"failed\"}";
const std::string kDeployed = "sitesfs_reconciles_total{outcome=\"deployed\"}";
const std::string kTicks = "sitesfs_poll_ticks_total";
const std::string kTickSeconds = "sitesfs_poll_tick_seconds";

[[noreturn]] void daemon_failed(const Daemon& daemon, const std::string& what) {
    throw std::runtime_error(what + "\nsitesfs's log ends with:\n" + it::tail_lines(it::slurp(daemon.log()), 40));
}

// dur_ms of every run in a deploy.log, in order.
std::vector<double> run_ms(const stdfs::path& deploy_log) {
    std::vector<double> out;
    for (const auto& line : it::split_lines(it::slurp(deploy_log)))
        if (const size_t at = line.find("\"dur_ms\":"); at != std::string::npos) out.push_back(std::stod(line.substr(at + 9)));
    return out;
}

// Milliseconds between consecutive "deployed" lines of a daemon log (its lines start with
// YYYY-MM-DDTHH:MM:SS.mmm): how often a site is done. While runs queue for the proxy, that is
// what one site's proxy steps cost.
std::vector<double> deployed_gaps_ms(const stdfs::path& daemon_log) {
    std::vector<double> out;
    double previous = -1;
    for (const auto& line : it::split_lines(it::slurp(daemon_log))) {
        if (line.size() < 23 || line[10] != 'T' || line.find(": deployed ") == std::string::npos) continue;
        const double ms = ((std::stod(line.substr(11, 2)) * 60 + std::stod(line.substr(14, 2))) * 60 +
                           std::stod(line.substr(17, 6))) * 1000;
        if (previous >= 0 && ms >= previous) out.push_back(ms - previous);
        previous = ms;
    }
    return out;
}

// A state dir (sites imported), data dir and mountpoint under `dir`, configured alike for every
// deploy section: command reloads of the section's Caddy, local repos, and the default number of
// workers, since the default is what people run. `store_toml`: a [store] section (etcd), which the
// import goes to as well; a host that joins a store another host imported into imports 0 sites.
class Instance {
public:
    Instance(const stdfs::path& dir, const it::CaddyServer& caddy, int sites, const std::function<std::string(int)>& repo_of,
             std::string store_toml = "")
        : dir_(dir), caddy_(caddy), store_(std::move(store_toml)) {
        stdfs::create_directories(state());
        std::vector<std::string> args;
        if (!store_.empty()) {
            it::spit(dir_ / "store.toml", store_);
            args = {"--config", (dir_ / "store.toml").string()};
        }
        if (sites > 0) import_sites(state(), sites, repo_of, args);
    }
    stdfs::path state() const { return dir_ / "state"; }
    stdfs::path mnt() const { return dir_ / "mnt"; }
    stdfs::path deploy_log() const { return state() / "deploy.log"; }

    // `poll_interval` in seconds, as TOML; "0" never polls.
    std::unique_ptr<Daemon> start(const std::string& poll_interval) const {
        std::string reload;
        for (const auto& a : caddy_.reload_command()) reload += (reload.empty() ? "\"" : ", \"") + a + "\"";
        const stdfs::path config = dir_ / "sitesfs.toml";
        it::spit(config, "data_dir = \"" + (dir_ / "data").string() + "\"\n"
                         "allow_local_repos = true\n"
                         "[proxy]\n"
                         "file = \"" + caddy_.sites_file().string() + "\"\n"
                         "main_config = \"" + caddy_.main_config().string() + "\"\n"
                         "scheme = \"http\"\n"
                         "port = " + std::to_string(caddy_.port()) + "\n"
                         "[reload]\n"
                         "mode = \"command\"\n"
                         "command = [" + reload + "]\n"
                         "[health]\n"
                         "address = \"" + caddy_.address() + "\"\n"
                         "[reconcile]\n"
                         "poll_interval = " + poll_interval + "\n" + store_);
        return std::make_unique<Daemon>(state(), mnt(), std::vector<std::string>{"--config", config.string()}, caddy_.env());
    }

    // Polls .metrics until `count` sites are live and returns that .metrics. Throws with the
    // daemon's log when a site fails, the daemon dies, or `limit` passes.
    std::string wait_live(const Daemon& daemon, int count, std::chrono::seconds limit) const {
        const auto deadline = SteadyClock::now() + limit;
        for (;;) {
            const std::string m = it::slurp(mnt() / ".metrics");
            if (metric(m, kLive) == count) return m;
            if (metric(m, kFailed) > 0)
                daemon_failed(daemon, "a site failed to deploy; deploy.log ends with:\n" +
                                          it::tail_lines(it::slurp(deploy_log()), 5));
            if (!it::process_alive(daemon.pid())) daemon_failed(daemon, "sitesfs exited");
            if (SteadyClock::now() > deadline)
                daemon_failed(daemon, std::to_string(count) + " sites were not live within " +
                                          std::to_string(limit.count()) + " s; .metrics:\n" + m);
            std::this_thread::sleep_for(20ms);
        }
    }

    // Throws with the daemon's log unless `wait` of the first site says every host it is placed on
    // settled live at `sha`: a run must be over (health check and all) before anything else is
    // timed, or the next write supersedes it.
    void settled(const Daemon& daemon, const std::string& sha, const std::string& what) const {
        if (const std::string s = it::slurp(mnt() / site_name(0) / "wait"); s != "live " + sha + "\n")
            daemon_failed(daemon, what + " settled as: " + s);
    }

private:
    stdfs::path dir_;
    const it::CaddyServer& caddy_;
    std::string store_;
};

// One GET of the site through Caddy: whether it answers 200 with `body` (and, when `commit` is
// given, that X-Deployed-Commit). `last` receives the answer when it does not.
bool answers(const it::CaddyServer& caddy, const std::string& host, const std::string& body, std::string& last,
             const std::string& commit = "") {
    const hooks::ProbeResult r = hooks::http_get(caddy.address(), host, "/", 2000ms);
    const auto header = r.headers.find("x-deployed-commit");
    const std::string served = header == r.headers.end() ? "none" : header->second;
    if (r.error.empty() && r.status == 200 && r.body == body && (commit.empty() || served == commit)) return true;
    last = r.error.empty() ? std::to_string(r.status) + " commit " + served + " " + r.body.substr(0, 200) : r.error;
    return false;
}

// Polls the site through Caddy until it answers (see answers()) or `limit` passes.
bool serves(const it::CaddyServer& caddy, const std::string& host, const std::string& body, Seconds limit,
            std::string& last, const std::string& commit = "") {
    const auto start = SteadyClock::now();
    for (;;) {
        if (answers(caddy, host, body, last, commit)) return true;
        if (seconds_since(start) > limit) return false;
        std::this_thread::sleep_for(1ms);
    }
}

// A site's repo with `count` commits after its first, each changing index.html to the body at the
// same index; made before any site is, so every deploy finds its commit already fetched, as the
// P5 floor's checkout does.
struct Versions {
    std::vector<std::string> shas, bodies;
};
Versions make_versions(it::TestRepo& repo, int count, const std::string& label) {
    Versions v;
    if (repo.commit({{"index.html", kIndexBody}, {"style.css", "body { margin: 2em; }\n"}}).empty())
        throw std::runtime_error("git failed making the " + label + " repository (the failure is printed above)");
    for (int i = 0; i < count; ++i) {
        v.bodies.push_back("<!doctype html><title>bench</title><h1>" + label + " deploy " + std::to_string(i + 1) + "</h1>\n");
        v.shas.push_back(repo.commit({{"index.html", v.bodies.back()}}));
        if (v.shas.back().empty()) throw std::runtime_error("git failed committing " + label + "'s deploys (the failure is printed above)");
    }
    return v;
}

// Writes `text` into `file` on the daemon's mount as one open(O_TRUNC), write, close.
void write_file(const Daemon& daemon, const stdfs::path& file, const std::string& text) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) daemon_failed(daemon, "open " + file.string() + ": " + std::strerror(errno));
    const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    const int write_errno = errno;
    if (::close(fd) != 0 || !written)
        daemon_failed(daemon, "writing " + file.string() + ": " + std::strerror(written ? errno : write_errno));
}

// The Caddy block sitesfs and the seed tool write for a site.
std::string caddy_block(const std::string& address, const stdfs::path& root, const std::string& commit) {
    return address + " {\n\troot * " + root.string() + "\n\tfile_server\n\theader {\n\t\tX-Deployed-Commit " + commit +
           "\n\t\t-Server\n\t}\n}\n";
}

// The daemon stopped (SIGSTOP) while the baseline runs, so its poll ticks do not share the two
// cores with it; continued when this goes, also on an exception (a stopped daemon ignores SIGTERM).
class Paused {
public:
    explicit Paused(pid_t pid) : pid_(pid) { ::kill(pid_, SIGSTOP); }
    ~Paused() { ::kill(pid_, SIGCONT); }
    Paused(const Paused&) = delete;
    Paused& operator=(const Paused&) = delete;

private:
    pid_t pid_;
};

std::string per_site(const Samples& s, int sites) { return format_seconds(s.median() / sites) + "/site"; }

std::string list(const Samples& s) {
    std::string out;
    for (double v : s.values) out += (out.empty() ? "" : ", ") + format_seconds(v);
    return out;
}

std::string milliseconds(double ms) { return format_seconds(ms / 1000.0); }

std::string whole(double count) { return std::to_string(static_cast<long>(count)); }

void p4_deploy(const Options& options, Report& report, const SiteRepos& repos) {
    const int n = options.deploy_sites;
    const Proxy proxy(options, "p4-deploy");
    const it::CaddyServer& caddy = proxy.caddy();
    const stdfs::path list_file = proxy.file("sites.list");
    repos.write_list(list_file, n, caddy.port());
    const auto repo_of = [&](int i) { return repos.url(i); };
    const auto limit = std::chrono::seconds(120 + 2 * n);

    Samples reloads, deployed, run_median, gap_median;
    double validate_at_n = 0, reload_at_n = 0;
    const auto sitesfs = [&] {
        TempDir run(options, "p4-sitesfs");
        const Instance instance(run.path(), caddy, n, repo_of);
        proxy.reset();
        const int loads = proxy.loads();
        // Nothing polls: the startup convergence alone deploys every site.
        const auto start = SteadyClock::now();
        const auto daemon = instance.start("0");
        const std::string m = instance.wait_live(*daemon, n, limit);
        const Seconds took = seconds_since(start);
        reloads.values.push_back(proxy.loads() - loads);
        deployed.values.push_back(metric(m, kDeployed));
        run_median.values.push_back(Samples{run_ms(instance.deploy_log())}.median());
        gap_median.values.push_back(Samples{deployed_gaps_ms(daemon->log())}.median());
        // What one validate and one reload cost once every site is in the config, for the note.
        validate_at_n = time_it([&] {
            must_run({"caddy", "validate", "--config", caddy.main_config().string(), "--adapter", "caddyfile"}, caddy.env());
        });
        auto force = caddy.reload_command();
        force.push_back("--force");
        reload_at_n = time_it([&] { must_run(force, caddy.env()); });
        return took;
    };
    const auto git_loop = [&] {
        TempDir run(options, "p4-git");
        proxy.reset();
        std::vector<std::string> argv{"bash", kLoop.string(), "deploy", list_file.string(), (run.path() / "clones").string(),
                                      caddy.sites_file().string()};
        for (const auto& a : caddy.reload_command()) argv.push_back(a);
        const Seconds took = time_it([&] { must_run(argv, tool_env(caddy)); });
        // The loop checks nothing; one site asked through Caddy proves it produced a working config.
        std::string last;
        if (!serves(caddy, site_domain(n - 1), kIndexBody, 10, last))
            throw std::runtime_error("the git CLI loop's Caddy config does not serve " + site_domain(n - 1) + ": " + last);
        return took;
    };
    const auto [ours, loop] = alternate(options.runs, sitesfs, git_loop);

    const double ratio = ours.median() / loop.median();
    report.add({"P4 deploy", "initial deploy of " + std::to_string(n) + " sites from local bare repos, until all are live",
                format_seconds(ours.median()), format_seconds(loop.median()), ratio, "<= 0.1", ratio <= 0.1,
                "sitesfs " + per_site(ours, n) + " (" + list(ours) + "), " + whole(reloads.median()) +
                    " Caddy reloads and " + whole(deployed.median()) + " deployed runs a deploy, median run " +
                    milliseconds(run_median.median()) + " in deploy.log (queue wait included), one site done every " + milliseconds(gap_median.median()) +
                    " (median gap between the daemon's `deployed` lines); git CLI loop " +
                    per_site(loop, n) + " (" + list(loop) + "), 1 reload. At " + std::to_string(n) +
                    " sites one caddy validate takes " + format_seconds(validate_at_n) + ", one forced reload " +
                    format_seconds(reload_at_n) + "."});
}

void p4_tick(const Options& options, Report& report, const SiteRepos& repos) {
    const int m = options.poll_sites;
    const Proxy proxy(options, "p4-tick");
    const it::CaddyServer& caddy = proxy.caddy();
    TempDir work(options, "p4-tick-work");
    const stdfs::path list_file = work.path() / "sites.list";
    repos.write_list(list_file, m, caddy.port());
    const stdfs::path clones = work.path() / "clones";
    // The loop's clones, made once; its reload is `true`, as the loop's Caddy is not what is timed here.
    must_run({"bash", kLoop.string(), "deploy", list_file.string(), clones.string(), (work.path() / "loop.conf").string(), "true"},
             tool_env(caddy));

    const Instance instance(work.path() / "sitesfs", caddy, m, [&](int i) { return repos.url(i); });
    const auto limit = std::chrono::seconds(120 + 2 * m);
    Seconds setup = 0;
    {
        const auto start = SteadyClock::now();
        const auto daemon = instance.start("0");
        instance.wait_live(*daemon, m, limit);
        setup = seconds_since(start);
    }
    // Everything is converged on disk: this start deploys nothing, and every tick finds no change.
    const auto daemon = instance.start("2");
    const double deployed_before = metric(instance.wait_live(*daemon, m, 60s), kDeployed);

    double ticks_seen = metric(it::slurp(instance.mnt() / ".metrics"), kTicks);
    const auto next_tick = [&] {
        const auto deadline = SteadyClock::now() + 120s;
        for (;;) {
            std::this_thread::sleep_for(50ms);
            const std::string text = it::slurp(instance.mnt() / ".metrics");
            if (!it::process_alive(daemon->pid())) daemon_failed(*daemon, "sitesfs exited");
            if (const double ticks = metric(text, kTicks); ticks > ticks_seen) {
                ticks_seen = ticks;
                if (metric(text, kLive) != m) daemon_failed(*daemon, "a site left `live` during a no-op tick:\n" + text);
                return metric(text, kTickSeconds);
            }
            if (SteadyClock::now() > deadline) daemon_failed(*daemon, "no poll tick ended within 120 s:\n" + text);
        }
    };
    const auto [ours, loop] = alternate(
        options.runs,
        [&] {
            // The first tick to end may have begun before the daemon was continued (or, on the first
            // call, before every site was live); the next one began after.
            next_tick();
            return next_tick();
        },
        [&] {
            const Paused paused(daemon->pid());
            return time_it([&] { must_run({"bash", kLoop.string(), "tick", list_file.string(), clones.string()}, tool_env(caddy)); });
        });
    const double deployed_during = metric(it::slurp(instance.mnt() / ".metrics"), kDeployed) - deployed_before;

    const double ratio = ours.median() / loop.median();
    report.add({"P4 tick", "no-op poll tick over " + std::to_string(m) + " live sites (no remote change)",
                format_seconds(ours.median()), format_seconds(loop.median()), ratio, "<= 0.05", ratio <= 0.05,
                "sitesfs " + per_site(ours, m) + " (" + list(ours) + "; poll_interval 2 s, " +
                    whole(deployed_during) + " deploys during the ticks), git CLI loop " +
                    per_site(loop, m) + " (" + list(loop) + "). The daemon is stopped (SIGSTOP) while the loop runs. "
                    "Deploying the " + std::to_string(m) + " sites beforehand took sitesfs " + format_seconds(setup) + "."});
}

void p5(const Options& options, Report& report) {
    const int deploys = options.deploys;
    const Proxy proxy(options, "p5", "floor.conf");
    const it::CaddyServer& caddy = proxy.caddy();
    TempDir work(options, "p5-work");
    it::TestRepo repo(work.path() / "git");
    const auto [shas, bodies] = make_versions(repo, deploys, "P5");

    const Instance instance(work.path() / "sitesfs", caddy, 1, [&](int) { return repo.url(); });
    const auto daemon = instance.start("0");
    instance.wait_live(*daemon, 1, 120s);
    const size_t runs_before = run_ms(instance.deploy_log()).size();
    const stdfs::path commit_file = instance.mnt() / site_name(0) / "commit";

    const std::string floor_host = "floor.bench.test";
    const stdfs::path floor_dir = work.path() / "floor";
    const std::vector<std::string> validate{"caddy", "validate", "--config", caddy.main_config().string(), "--adapter", "caddyfile"};
    int next_ours = 0, next_floor = 0;
    Samples header_seconds;
    const auto sitesfs = [&] {
        const size_t i = static_cast<size_t>(next_ours++);
        const auto start = SteadyClock::now();
        write_file(*daemon, commit_file, shas[i] + "\n");
        std::string last;
        const auto not_served = [&](const std::string& what) {
            daemon_failed(*daemon, "deploy " + std::to_string(i + 1) + ": " + what + " not served within 60 s (Caddy answers " +
                                       last + "); status:\n" + it::slurp(instance.mnt() / site_name(0) / "status"));
        };
        // The files change when `current` is switched; the header only with the reload that follows.
        if (!serves(caddy, site_domain(0), bodies[i], 60, last)) not_served("the new body");
        const Seconds body = seconds_since(start);
        if (!serves(caddy, site_domain(0), bodies[i], 60, last, shas[i])) not_served("the new commit header");
        header_seconds.values.push_back(seconds_since(start));
        instance.settled(*daemon, shas[i], "deploy " + std::to_string(i + 1));
        return body;
    };
    const auto floor = [&] {
        const size_t i = static_cast<size_t>(next_floor++);
        const stdfs::path dir = floor_dir / std::to_string(i);
        auto env = tool_env(caddy);
        // A fresh index per checkout: the bare repo's own must not make git skip files it thinks are there.
        env.push_back("GIT_INDEX_FILE=" + (floor_dir / ("index-" + std::to_string(i))).string());
        const auto start = SteadyClock::now();
        stdfs::create_directories(dir);
        must_run({"git", "--git-dir=" + repo.bare().string(), "--work-tree=" + dir.string(), "checkout", "-f", shas[i], "--", "."}, env);
        it::spit(proxy.file("floor.conf"),
                 caddy_block("http://" + floor_host + ":" + std::to_string(caddy.port()), dir, shas[i]));
        must_run(validate, caddy.env());
        must_run(caddy.reload_command(), caddy.env());
        std::string last;
        if (!serves(caddy, floor_host, bodies[i], 60, last))
            throw std::runtime_error("the floor's deploy " + std::to_string(i + 1) + " not served within 60 s: " + last);
        return seconds_since(start);
    };
    const auto [ours, base] = alternate(deploys, sitesfs, floor);

    auto runs = run_ms(instance.deploy_log());
    runs.erase(runs.begin(), runs.begin() + static_cast<std::ptrdiff_t>(runs_before));
    const Samples daemon_runs{runs};
    const std::string note = "sitesfs p50 " + format_seconds(ours.median()) + ", p99 " + format_seconds(ours.quantile(0.99)) +
                             " until the new body (it is served from the moment `current` is switched, before the "
                             "reload), p50 " + format_seconds(header_seconds.median()) + ", p99 " +
                             format_seconds(header_seconds.quantile(0.99)) + " until its X-Deployed-Commit header too "
                             "(after the reload); floor (checkout + caddy validate + caddy reload + GET) p50 " + format_seconds(base.median()) +
                             ", p99 " + format_seconds(base.quantile(0.99)) + "; " + std::to_string(deploys) +
                             " deploys a side, alternating. The daemon logged " + std::to_string(runs.size()) +
                             " runs, median " + milliseconds(daemon_runs.median()) + " (deploy.log dur_ms, run start to health check).";
    const std::string what = "write SITE/commit -> the new body through Caddy";
    const double p50 = ours.median() / base.median();
    report.add({"P5 p50", what + ", median", format_seconds(ours.median()), format_seconds(base.median()), p50, "<= 1.5",
                p50 <= 1.5, note});
    report.add({"P5 p99", what + ", 99th percentile", format_seconds(ours.quantile(0.99)),
                format_seconds(base.quantile(0.99)), ours.quantile(0.99) / base.quantile(0.99), "(reported)", true, ""});
}

// E2: how long a write on one host takes to be served by another, through etcd; the same write
// served by the host that took it is the baseline, both timed from one write.
void e2(const Options& options, Report& report) {
    const int deploys = options.cluster_deploys;
    const Etcd etcd(options);
    const Proxy proxy_a(options, "e2-a"), proxy_b(options, "e2-b");
    TempDir work(options, "e2-work");
    it::TestRepo repo(work.path() / "git");
    const auto [shas, bodies] = make_versions(repo, deploys, "E2");
    const auto url = [&](int) { return repo.url(); };
    const std::string prefix = "/sitesfs/";
    const Instance a(work.path() / "a", proxy_a.caddy(), 1, url, etcd.store_toml("a", prefix));
    const Instance b(work.path() / "b", proxy_b.caddy(), 0, url, etcd.store_toml("b", prefix));
    const auto daemon_a = a.start("0");
    const auto daemon_b = b.start("0");
    a.wait_live(*daemon_a, 1, 120s);
    b.wait_live(*daemon_b, 1, 120s);
    const stdfs::path commit_file = a.mnt() / site_name(0) / "commit";

    Samples on_a, on_b;
    for (int i = 0; i < deploys; ++i) {
        const size_t v = static_cast<size_t>(i);
        const auto start = SteadyClock::now();
        write_file(*daemon_a, commit_file, shas[v] + "\n");
        // Both Caddys in one loop, so neither figure waits on the other's polling.
        std::optional<Seconds> at_a, at_b;
        std::string last_a, last_b;
        while (!at_a || !at_b) {
            if (!at_a && answers(proxy_a.caddy(), site_domain(0), bodies[v], last_a)) at_a = seconds_since(start);
            if (!at_b && answers(proxy_b.caddy(), site_domain(0), bodies[v], last_b)) at_b = seconds_since(start);
            if (seconds_since(start) > 60)
                daemon_failed(at_b ? *daemon_a : *daemon_b,
                              "deploy " + std::to_string(i + 1) + " not served by host " + (at_b ? "a" : "b") +
                                  " within 60 s (Caddy answers " + (at_b ? last_a : last_b) + "); status:\n" +
                                  it::slurp(a.mnt() / site_name(0) / "status"));
            std::this_thread::sleep_for(1ms);
        }
        on_a.values.push_back(*at_a);
        on_b.values.push_back(*at_b);
        a.settled(*daemon_a, shas[v], "deploy " + std::to_string(i + 1));
    }

    const std::string note = "two hosts on a 3-member etcd on loopback, one site placed on both; host b p50 " +
                             format_seconds(on_b.median()) + ", p99 " + format_seconds(on_b.quantile(0.99)) +
                             "; host a (the one written to) p50 " + format_seconds(on_a.median()) + ", p99 " +
                             format_seconds(on_a.quantile(0.99)) + "; " + std::to_string(deploys) + " deploys.";
    const std::string what = "write SITE/commit on host a -> the new body through host b's Caddy";
    report.add({"E2 p50", what + ", median", format_seconds(on_b.median()), format_seconds(on_a.median()),
                on_b.median() / on_a.median(), "(reported)", true, note});
    report.add({"E2 p99", what + ", 99th percentile", format_seconds(on_b.quantile(0.99)),
                format_seconds(on_a.quantile(0.99)), on_b.quantile(0.99) / on_a.quantile(0.99), "(reported)", true, ""});
}

}  // namespace

void run_deploy_benchmarks(const Options& options, Report& report) {
    if (options.wants("P4")) {
        const SiteRepos repos(options, std::max(options.deploy_sites, options.poll_sites));
        p4_deploy(options, report, repos);
        p4_tick(options, report, repos);
    }
    if (options.wants("P5")) p5(options, report);
    if (options.wants("E2")) e2(options, report);
}

}  // namespace sitesfs::bench
