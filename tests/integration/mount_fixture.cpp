#include "mount_fixture.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/files.hpp"
#include "schemas/site_record.hpp"

extern char** environ;

namespace sitesfs::it {

const std::vector<std::string> kSiteFiles = [] {
    std::vector<std::string> names(std::begin(kDesiredFields), std::end(kDesiredFields));
    std::sort(names.begin(), names.end());
    return names;
}();

namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> merged_env(const std::vector<std::string>& extra) {
    std::map<std::string, std::string> vars;
    for (char** e = environ; *e; ++e) {
        std::string kv = *e;
        const auto eq = kv.find('=');
        if (eq != std::string::npos) vars[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    vars.erase("TMUX");  // a test run inside tmux must still get sessions of its own
    vars.erase("TMUX_PANE");
    for (const auto& kv : extra) {
        const auto eq = kv.find('=');
        vars[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
    }
    std::vector<std::string> out;
    for (const auto& [k, v] : vars) out.push_back(k + "=" + v);
    return out;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
    std::vector<char*> out;
    for (auto& s : v) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

// Spawn attributes: own process group, default signal dispositions, nothing blocked.
struct SpawnAttr {
    posix_spawnattr_t attr;
    SpawnAttr() {
        posix_spawnattr_init(&attr);
        sigset_t all, none;
        sigfillset(&all);
        sigemptyset(&none);
        posix_spawnattr_setsigdefault(&attr, &all);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setpgroup(&attr, 0);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    }
    ~SpawnAttr() { posix_spawnattr_destroy(&attr); }
};

struct FileActions {
    posix_spawn_file_actions_t fa;
    FileActions() { posix_spawn_file_actions_init(&fa); }
    ~FileActions() { posix_spawn_file_actions_destroy(&fa); }
};

int decode_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

std::string errno_text(int err) { return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")"; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Processes

Run run(const std::vector<std::string>& argv_in, const RunOptions& options) {
    Run r;
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        r.err = "pipe: " + errno_text(errno);
        return r;
    }
    FileActions fa;
    posix_spawn_file_actions_addopen(&fa.fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa.fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa.fa, err[1], STDERR_FILENO);
    if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa.fa, options.cwd.c_str());
    SpawnAttr attr;
    std::vector<std::string> argv = argv_in, env = merged_env(options.env);
    auto cargv = c_strings(argv), cenv = c_strings(env);
    pid_t pid;
    const int rc = posix_spawnp(&pid, cargv[0], &fa.fa, &attr.attr, cargv.data(), cenv.data());
    ::close(out[1]);
    ::close(err[1]);
    if (rc != 0) {
        ::close(out[0]);
        ::close(err[0]);
        r.err = "cannot start " + argv[0] + ": " + errno_text(rc);
        return r;
    }
    const auto deadline = Clock::now() + options.timeout;
    int fds[2] = {out[0], err[0]};
    std::string* sinks[2] = {&r.out, &r.err};
    bool reaped = false;
    int status = 0;
    while (fds[0] >= 0 || fds[1] >= 0 || !reaped) {
        if (!reaped) {
            const pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid) reaped = true;
        }
        if (Clock::now() > deadline) {
            r.timed_out = true;
            kill(-pid, SIGKILL);
            if (!reaped) waitpid(pid, &status, 0), reaped = true;
            break;
        }
        pollfd p[2];
        nfds_t n = 0;
        int which[2];
        for (int i = 0; i < 2; ++i)
            if (fds[i] >= 0) p[n] = {fds[i], POLLIN, 0}, which[n++] = i;
        if (n == 0) {
            std::this_thread::sleep_for(5ms);
            continue;
        }
        if (poll(p, n, 20) <= 0) continue;
        for (nfds_t k = 0; k < n; ++k) {
            if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[8192];
            const ssize_t got = ::read(p[k].fd, buf, sizeof buf);
            if (got > 0) sinks[which[k]]->append(buf, static_cast<size_t>(got));
            else if (got == 0 || errno != EINTR) ::close(fds[which[k]]), fds[which[k]] = -1;
        }
    }
    for (int fd : fds)
        if (fd >= 0) ::close(fd);
    r.code = r.timed_out ? 128 + SIGKILL : decode_status(status);
    if (const auto report = sanitizer_report(r.err); !report.empty())
        ADD_FAILURE() << argv[0] << " reported:\n" << report;
    return r;
}

Run bash(const std::string& script, const RunOptions& options) { return run({"/bin/bash", "-c", script}, options); }

std::string describe(const Run& r) {
    std::ostringstream s;
    s << "exit " << r.code << (r.timed_out ? " (TIMED OUT, killed)" : "") << "\n--- stdout ---\n" << r.out
      << "\n--- stderr ---\n" << r.err << "\n--------------";
    return s.str();
}

pid_t spawn_logged(const std::vector<std::string>& argv_in, const stdfs::path& log,
                   const std::vector<std::string>& env_extra) {
    // If this test binary dies without its TearDown (a ctest timeout kills it), the background
    // process gets SIGTERM and unmounts by itself. setpriv execs it: the pid stays the same.
    static const bool have_setpriv = run({"setpriv", "--pdeathsig", "TERM", "--", "true"}, {.timeout = 10s}).code == 0;
    std::vector<std::string> full;
    if (have_setpriv) full = {"setpriv", "--pdeathsig", "TERM", "--"};
    full.insert(full.end(), argv_in.begin(), argv_in.end());
    FileActions fa;
    posix_spawn_file_actions_addopen(&fa.fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa.fa, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa.fa, STDOUT_FILENO, STDERR_FILENO);
    SpawnAttr attr;
    std::vector<std::string> argv = full, env = merged_env(env_extra);
    auto cargv = c_strings(argv), cenv = c_strings(env);
    pid_t pid;
    if (posix_spawnp(&pid, cargv[0], &fa.fa, &attr.attr, cargv.data(), cenv.data()) != 0) return -1;
    return pid;
}

std::optional<int> wait_child(pid_t pid, Ms deadline) {
    const auto end = Clock::now() + deadline;
    for (;;) {
        int status;
        const pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) return status;
        if (w < 0 && errno == ECHILD) return std::nullopt;
        if (Clock::now() > end) return std::nullopt;
        std::this_thread::sleep_for(10ms);
    }
}

std::optional<int> terminate_child(pid_t pid, Ms grace, int first_signal) {
    if (pid <= 0) return std::nullopt;
    kill(pid, first_signal);
    if (auto st = wait_child(pid, grace)) return st;
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    int status;
    if (waitpid(pid, &status, 0) == pid) return status;
    return std::nullopt;
}

std::string wait_status_text(int status) {
    if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
    return "wait status " + std::to_string(status);
}

bool process_alive(pid_t pid) {
    if (pid <= 0 || kill(pid, 0) != 0) return false;
    const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    const auto close_paren = stat.rfind(')');
    if (close_paren == std::string::npos || close_paren + 2 >= stat.size()) return false;
    const char state = stat[close_paren + 2];
    return state != 'Z' && state != 'X';
}

std::string sanitizer_report(const std::string& output) {
    // The line each tool opens a report with (UBSan's is "FILE:LINE:COL: runtime error: ...").
    static const char* const kOpenings[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                            "WARNING: ThreadSanitizer", "ERROR: ThreadSanitizer",
                                            ": runtime error: "};
    size_t first = std::string::npos;
    for (const char* opening : kOpenings) first = std::min(first, output.find(opening));
    if (first == std::string::npos) return "";
    const auto line_start = output.rfind('\n', first);
    return output.substr(line_start == std::string::npos ? 0 : line_start + 1);
}

std::vector<pid_t> find_processes(const std::vector<std::string>& words) {
    std::vector<pid_t> out;
    DIR* d = opendir("/proc");
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        char* end;
        const long pid = std::strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0) continue;
        std::string cmdline = slurp(std::string("/proc/") + e->d_name + "/cmdline");
        std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
        if (std::all_of(words.begin(), words.end(), [&](const std::string& w) { return cmdline.find(w) != std::string::npos; }))
            if (process_alive(static_cast<pid_t>(pid))) out.push_back(static_cast<pid_t>(pid));
    }
    closedir(d);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Files and mounts

std::string slurp(const stdfs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void spit(const stdfs::path& file, const std::string& data) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << data;
}

std::map<std::string, std::string> snapshot_tree(const stdfs::path& dir) {
    std::map<std::string, std::string> out;
    std::error_code ec;
    for (auto it = stdfs::recursive_directory_iterator(dir, ec); !ec && it != stdfs::recursive_directory_iterator();
         it.increment(ec)) {
        const auto rel = stdfs::relative(it->path(), dir).string();
        struct stat st;
        if (::lstat(it->path().c_str(), &st) != 0) continue;
        char mode[16];
        std::snprintf(mode, sizeof mode, "%o ", static_cast<unsigned>(st.st_mode));
        out[rel] = mode + (S_ISDIR(st.st_mode) ? std::string("<dir>") : slurp(it->path()));
    }
    return out;
}

void abort_fuse_connection(unsigned connection) {
    const stdfs::path control = "/sys/fs/fuse/connections";
    const stdfs::path dir = control / std::to_string(connection);
    std::error_code ec;
    if (!stdfs::exists(dir, ec)) ::mount("fusectl", control.c_str(), "fusectl", 0, nullptr);
    std::ofstream(dir / "abort") << "1\n";
}

std::optional<unsigned> fuse_connection_of(const stdfs::path& mountpoint) {
    std::optional<unsigned> found;
    for (const auto& m : read_mountinfo())
        if (m.point == mountpoint.lexically_normal().string())
            found = m.fstype.starts_with("fuse") ? std::optional(m.minor) : std::nullopt;
    return found;
}

std::vector<std::string> mount_points() {
    std::vector<std::string> out;
    for (const auto& m : read_mountinfo()) out.push_back(m.point);
    return out;
}

bool is_mounted(const stdfs::path& p) {
    const auto points = mount_points();
    return std::find(points.begin(), points.end(), p.lexically_normal().string()) != points.end();
}

bool mount_answers(const stdfs::path& p) {
    // statfs always reaches the daemon (stat may be answered from the kernel's attribute cache,
    // even for the stale mount of a killed daemon).
    constexpr decltype(statfs::f_type) kFuseMagic = 0x65735546;
    struct statfs sfs;
    if (::statfs(p.c_str(), &sfs) != 0 || sfs.f_type != kFuseMagic) return false;
    struct stat st, parent;
    if (::stat(p.c_str(), &st) != 0 || ::stat(p.parent_path().c_str(), &parent) != 0) return false;
    return st.st_dev != parent.st_dev;
}

bool fuse_available(std::string* why) {
    const int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        if (why) *why = std::strerror(errno);
        return false;
    }
    ::close(fd);
    return true;
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

bool eventually(const std::function<bool()>& pred, Ms deadline, Ms step) {
    const auto end = Clock::now() + deadline;
    for (;;) {
        if (pred()) return true;
        if (Clock::now() > end) return pred();
        std::this_thread::sleep_for(step);
    }
}

// ---------------------------------------------------------------------------------------------
// Expectations

::testing::AssertionResult check(const std::string& script, const Run& r, const Expect& e) {
    std::vector<std::string> problems;
    if (r.timed_out) problems.push_back("timed out");
    if (e.code == kNonZero ? r.code == 0 : r.code != e.code)
        problems.push_back("exit " + std::to_string(r.code) + ", expected " +
                           (e.code == kNonZero ? std::string("non-zero") : std::to_string(e.code)));
    if (e.out && r.out != *e.out) problems.push_back("stdout differs; expected:\n" + *e.out);
    if (e.err && r.err != *e.err) problems.push_back("stderr differs; expected:\n" + *e.err);
    if (!e.err_has.empty() && r.err.find(e.err_has) == std::string::npos)
        problems.push_back("stderr lacks: " + e.err_has);
    if (!e.out_has.empty() && r.out.find(e.out_has) == std::string::npos)
        problems.push_back("stdout lacks: " + e.out_has);
    if (problems.empty()) return ::testing::AssertionSuccess();
    auto failure = ::testing::AssertionFailure();
    failure << "script: " << script << "\n";
    for (const auto& p : problems) failure << "  - " << p << "\n";
    return failure << describe(r);
}

// ---------------------------------------------------------------------------------------------
// The fixture

void MountTest::SetUp() {
    // A reader of our output going away (`| head`) must not kill us before TearDown.
    std::signal(SIGPIPE, SIG_IGN);
    if (autostart_) {
        std::string why;
        if (!fuse_available(&why)) SITESFS_CANNOT_RUN() << "cannot open /dev/fuse: " << why;
    }
    char templ[] = "/tmp/sitesfs-test.XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr) << std::strerror(errno);
    tmp_ = templ;
    mnt_ = tmp_ / "mnt";
    state_ = tmp_ / "state";
    stdfs::create_directory(mnt_);
    stdfs::create_directory(state_);
    stdfs::create_directory(tmp_ / "home");
    if (autostart_) {
        ASSERT_NO_FATAL_FAILURE(start());
    }
}

void MountTest::TearDown() {
    if (tmp_.empty()) return;  // never set up, or already torn down
    // tmux first: its server may sit in the mount (cwd) and keep it busy.
    const auto sock = tmp_ / "tmux.sock";
    if (stdfs::exists(sock)) run({"tmux", "-S", sock.string(), "kill-server"}, {.timeout = 10s});
    for (pid_t pid : foreign_pids_) {
        if (process_alive(pid)) {
            kill(pid, SIGTERM);
            if (!eventually([&] { return !process_alive(pid); }, 5s)) kill(pid, SIGKILL);
            eventually([&] { return !process_alive(pid); }, 5s);
        }
        waitpid(pid, nullptr, WNOHANG);  // reaps it when it was our child
    }
    foreign_pids_.clear();
    for (auto it = daemons_.rbegin(); it != daemons_.rend(); ++it) shut_down(**it);
    // Every instance's log, also of those stopped or killed during the test: leaks are reported at
    // exit, after the test looked at the exit status (if it did).
    for (const auto& d : daemons_)
        if (const auto report = sanitizer_report(slurp(d->log)); !report.empty())
            ADD_FAILURE() << "sitesfs on " << d->mountpoint << " reported:\n" << report;
    daemons_.clear();
    primary_ = nullptr;
    unmount_everything();
    for (pid_t pid : unreaped_)
        EXPECT_TRUE(eventually([&] { return waitpid(pid, nullptr, WNOHANG) == pid; }, 10s, 20ms))
            << "sitesfs " << pid << ", killed with SIGKILL, never exited (its mount stayed wedged)";
    unreaped_.clear();

    bool busy = false;
    for (const auto& p : mount_points())
        if (p == tmp_.string() || p.starts_with(tmp_.string() + "/")) busy = true, ADD_FAILURE() << "still mounted: " << p;
    if (!busy) {
        std::error_code ec;
        stdfs::remove_all(tmp_, ec);
        if (ec) ADD_FAILURE() << "cannot remove " << tmp_ << ": " << ec.message();
    }
    tmp_.clear();
}

void MountTest::unmount_everything() {
    std::vector<std::string> ours;
    for (const auto& m : read_mountinfo()) {
        if (!m.point.starts_with(tmp_.string() + "/")) continue;
        ours.push_back(m.point);
        // Every daemon is stopped by now: a FUSE mount still here is stale or wedged, and only
        // an abort releases what waits on a wedged one (a lazy unmount would leave it waiting).
        if (m.fstype.starts_with("fuse")) abort_fuse_connection(m.minor);
    }
    std::sort(ours.rbegin(), ours.rend());  // deepest first
    for (const auto& p : ours) {
        // Several layers when a sitesfs mounted over the stale mount of a killed one.
        for (int layer = 0; layer < 4 && is_mounted(p); ++layer) {
            run({"fusermount3", "-u", p}, {.timeout = 10s});
            if (is_mounted(p)) run({"fusermount3", "-u", "-z", p}, {.timeout = 10s});
        }
        if (is_mounted(p)) run({"umount", "-l", p}, {.timeout = 10s});
    }
}

Daemon* MountTest::launch(const stdfs::path& mountpoint, const std::vector<std::string>& argv) {
    auto d = std::make_unique<Daemon>();
    d->mountpoint = mountpoint;
    d->log = tmp_ / ("sitesfs-" + std::to_string(next_log_++) + ".log");
    d->argv = argv;
    d->pid = spawn_logged(argv, d->log, daemon_env_);
    Daemon* raw = d.get();
    daemons_.push_back(std::move(d));
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    if (raw->pid < 0) {
        ADD_FAILURE() << "cannot start " << cmd << ": " << std::strerror(errno);
        return nullptr;
    }
    // Room for a start that first clears a wedged mount (up to 5 s of it).
    const auto deadline = Clock::now() + 30s;
    for (;;) {
        int status;
        if (waitpid(raw->pid, &status, WNOHANG) == raw->pid) {
            raw->pid = -1;
            ADD_FAILURE() << cmd << "exited with status " << decode_status(status) << " before mounting; log:\n"
                          << slurp(raw->log);
            return nullptr;
        }
        if (mount_answers(mountpoint)) return raw;
        if (Clock::now() > deadline) {
            ADD_FAILURE() << cmd << "did not mount within 10 s; log:\n" << slurp(raw->log);
            return nullptr;
        }
        std::this_thread::sleep_for(10ms);
    }
}

void MountTest::start(const std::vector<std::string>& extra, bool allow_local_repos) {
    ASSERT_EQ(primary_, nullptr) << "the primary instance is already running";
    primary_extra_ = extra;
    primary_local_repos_ = allow_local_repos;
    std::vector<std::string> argv{sitesfs(), "-f", "--state-dir", state_.string()};
    if (allow_local_repos) argv.emplace_back("--allow-local-repos");
    if (!reconcile_) argv.emplace_back("--no-reconcile");
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(mnt_.string());
    primary_ = launch(mnt_, argv);
    ASSERT_NE(primary_, nullptr);
}

std::optional<int> MountTest::shut_down(Daemon& d, int sig) {
    std::optional<int> status;
    if (d.pid <= 0) return status;
    int early;
    if (waitpid(d.pid, &early, WNOHANG) == d.pid) {
        // Nobody asked it to stop: it crashed or gave up while the test ran.
        ADD_FAILURE() << "sitesfs on " << d.mountpoint << " died during the test ("
                      << wait_status_text(early)
                      << "); log:\n" << slurp(d.log);
        status = early;
    } else {
        status = terminate_child(d.pid, 5s, sig);
    }
    d.pid = -1;
    return status;
}

std::optional<int> MountTest::stop(int sig) {
    if (!primary_) return std::nullopt;
    auto status = shut_down(*primary_, sig);
    EXPECT_FALSE(is_mounted(mnt_)) << "sitesfs exited but left its mount; log:\n" << slurp(primary_->log);
    primary_ = nullptr;
    return status;
}

void MountTest::restart() {
    const std::string log = primary_ ? slurp(primary_->log) : "";
    // The exit status on SIGTERM has a test of its own (CommandLine.SigtermAndSigintUnmountAndExitZero).
    auto status = stop();
    ASSERT_TRUE(status && WIFEXITED(*status)) << "sitesfs did not exit by itself on SIGTERM; log:\n" << log;
    ASSERT_NO_FATAL_FAILURE(start(primary_extra_, primary_local_repos_));
}

void MountTest::kill9() {
    ASSERT_NE(primary_, nullptr);
    const pid_t pid = primary_->pid;
    kill(pid, SIGKILL);
    // A thread killed in the kernel while invalidating an entry can wedge the mount and never
    // exit (docs/reliability.md, "A wedged mount"); the next sitesfs started on the mountpoint
    // must clear it, and the zombie is reaped once it has.
    last_kill_wedged_ = !eventually([&] { return waitpid(pid, nullptr, WNOHANG) == pid; }, 10s, 20ms);
    if (last_kill_wedged_) unreaped_.push_back(pid);
    primary_->pid = -1;
    primary_ = nullptr;
}

void MountTest::freeze() {
    ASSERT_NE(primary_, nullptr);
    ASSERT_EQ(kill(primary_->pid, SIGSTOP), 0) << std::strerror(errno);
    primary_ = nullptr;
}

std::string MountTest::daemon_log() const { return primary_ ? slurp(primary_->log) : std::string(); }

Daemon* MountTest::start_instance(const std::string& name, const std::vector<std::string>& extra) {
    const auto mp = tmp_ / name;
    stdfs::create_directories(mp);
    std::vector<std::string> argv{sitesfs(), "-f", "--state-dir", state_.string()};
    if (!reconcile_) argv.emplace_back("--no-reconcile");
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(mp.string());
    return launch(mp, argv);
}

std::optional<int> MountTest::stop_instance(Daemon* d) {
    if (!d) return std::nullopt;
    auto status = shut_down(*d);
    EXPECT_FALSE(is_mounted(d->mountpoint)) << "sitesfs exited but left its mount; log:\n" << slurp(d->log);
    return status;
}

std::vector<std::string> MountTest::test_env() const {
    return {"HOME=" + (tmp_ / "home").string(), "LC_ALL=C", "LANG=C", "TERM=xterm-256color",
            "TMUX_SOCK=" + (tmp_ / "tmux.sock").string(), "SITESFS_TMP=" + tmp_.string(),
            "MNT=" + mnt_.string()};
}

Run MountTest::sh(const std::string& script, Ms timeout) const { return sh_in(mnt_, script, timeout); }

Run MountTest::sh_in(const stdfs::path& cwd, const std::string& script, Ms timeout,
                     const std::vector<std::string>& env) const {
    auto all = test_env();
    all.insert(all.end(), env.begin(), env.end());
    return bash(script, {.cwd = cwd, .timeout = timeout, .env = all});
}

std::string MountTest::read(const std::string& rel) const {
    const auto p = mnt_ / rel;
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        ADD_FAILURE() << "open " << p << ": " << errno_text(err);
        return "<error: " + std::string(std::strerror(err)) + ">";
    }
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            ADD_FAILURE() << "read " << p << ": " << errno_text(errno);
            break;
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
}

int MountTest::write_errno(const std::string& rel, const std::string& data, int flags) const {
    const auto p = mnt_ / rel;
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
    if (fd < 0) return errno;
    int err = 0;
    if (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) err = errno;
        else if (static_cast<size_t>(n) != data.size()) err = EIO;
    }
    if (::close(fd) != 0 && err == 0) err = errno;
    return err;
}

void MountTest::write(const std::string& rel, const std::string& data) const {
    const int err = write_errno(rel, data);
    EXPECT_EQ(err, 0) << "writing '" << data << "' to " << rel << ": " << errno_text(err);
}

std::string MountTest::status_line(const std::string& site, const std::string& key) const {
    for (const auto& line : split_lines(status_of(site)))
        if (line.starts_with(key + ":")) {
            std::string v = line.substr(key.size() + 1);
            if (!v.empty() && v.front() == ' ') v.erase(0, 1);
            return v;
        }
    return "<missing>";
}

void MountTest::make_site(const std::string& name, const std::string& domain, const std::string& repo) const {
    ASSERT_EQ(::mkdir((mnt_ / name).c_str(), 0755), 0) << "mkdir " << name << ": " << std::strerror(errno);
    if (!repo.empty()) {
        ASSERT_EQ(write_errno(name + "/repo", repo + "\n"), 0) << "repo of " << name;
    }
    if (!domain.empty()) {
        ASSERT_EQ(write_errno(name + "/domain", domain + "\n"), 0) << "domain of " << name;
    }
    // A new site lists only the settings created in it; the other names are created empty (a
    // no-op for their values), as a site set up by hand or by an import would show them.
    for (const auto& f : kSiteFiles) {
        if (!stdfs::exists(mnt_ / name / f)) {
            ASSERT_EQ(write_errno(name + "/" + f, ""), 0) << f << " of " << name;
        }
    }
}

::testing::AssertionResult MountTest::only_fields(const std::string& site) const {
    const Run r = sh("ls -a " + site);
    std::string want = ".\n..\n";
    for (const auto& f : kSiteFiles) want += f + "\n";
    if (r.code == 0 && r.out == want) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "ls -a " << site << " should list only the site's files; " << describe(r);
}

void TwoSitesTest::SetUp() {
    MountTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_NO_FATAL_FAILURE(make_site("blog", "blog.example.com"));
    ASSERT_NO_FATAL_FAILURE(make_site("shop", "shop.example.com", "user/shop"));
}

}  // namespace sitesfs::it
