// The integration tests' fixture: a real sitesfs mounted on a temporary directory, driven with
// the tools people use (bash, coreutils, editors). Everything a test starts — mounts, daemons,
// tmux servers, temporary directories — is torn down in TearDown, also after a failure.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/cannot_run.hpp"

namespace sitesfs::it {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------------
// Processes

struct Run {
    int code = -1;  // exit status; 128+N when killed by signal N; -1 when it could not start
    std::string out;
    std::string err;
    bool timed_out = false;
};

struct RunOptions {
    stdfs::path cwd;                  // empty: the test's own cwd
    Ms timeout = 60s;                 // then the whole process group is killed
    std::vector<std::string> env;     // NAME=VALUE, added to (and overriding) the environment
};

// Runs argv (looked up in PATH) in a process group of its own, stdin from /dev/null, and
// collects stdout and stderr. Never leaves the process group behind.
Run run(const std::vector<std::string>& argv, const RunOptions& options = {});
// /bin/bash -c script.
Run bash(const std::string& script, const RunOptions& options = {});
std::string describe(const Run& r);  // for failure messages

// Spawns argv in the background (own process group) with stdin /dev/null and stdout+stderr
// appended to `log`; returns the pid or -1.
pid_t spawn_logged(const std::vector<std::string>& argv, const stdfs::path& log,
                   const std::vector<std::string>& env = {});
// Waits for a child with a deadline; the wait status, or nullopt if it is still running.
std::optional<int> wait_child(pid_t pid, Ms deadline);
// SIGTERM, wait `grace`, SIGKILL, reap. Returns the wait status (nullopt if not our child).
std::optional<int> terminate_child(pid_t pid, Ms grace = 5s, int first_signal = SIGTERM);
// True while `pid` exists and is not a zombie (works for processes that are not our children).
bool process_alive(pid_t pid);
// "exit 1", "signal Killed", for messages.
std::string wait_status_text(int status);
// Pids of processes whose command line contains every one of `words`.
std::vector<pid_t> find_processes(const std::vector<std::string>& words);
// The first sanitizer report (ASan, LSan, UBSan, TSan) in a process's output, from its first
// line on; "" when there is none. In a SITESFS_SANITIZE build the programs the tests start report
// on stderr and go on (or exit at a time the test does not check), so the harness looks for them:
// run() in the output it collects, MountTest and FakeSystemd in their logs at teardown.
std::string sanitizer_report(const std::string& output);

// ---------------------------------------------------------------------------------------------
// Files and mounts

std::string slurp(const stdfs::path& file);  // the whole file; "" when it cannot be read
void spit(const stdfs::path& file, const std::string& data);
// Every entry below `dir` (relative path -> content for files, "<dir>" for directories,
// plus the mode), without following into mounts.
std::map<std::string, std::string> snapshot_tree(const stdfs::path& dir);
std::vector<std::string> mount_points();  // from /proc/self/mountinfo, unescaped
// The FUSE connection of the mount on top of `mountpoint` (its number under
// /sys/fs/fuse/connections), when that is a FUSE mount.
std::optional<unsigned> fuse_connection_of(const stdfs::path& mountpoint);
// Aborts it (mounting the fuse control filesystem when nothing has): whatever waits on it fails (ECONNABORTED).
void abort_fuse_connection(unsigned connection);
bool is_mounted(const stdfs::path& p);
// A FUSE file system is mounted on `p` and its daemon answers (statfs round trip).
bool mount_answers(const stdfs::path& p);
bool fuse_available(std::string* why = nullptr);
std::vector<std::string> split_lines(const std::string& text);

// In a test that mounts without the fixture's autostart: where FUSE is missing, skip saying why
// (fail in CI).
#define REQUIRE_FUSE()                                                                   \
    do {                                                                                 \
        std::string why_;                                                                \
        if (!::sitesfs::it::fuse_available(&why_)) SITESFS_CANNOT_RUN() << "cannot open /dev/fuse: " << why_; \
    } while (0)

// Polls `pred` every `step` until it holds or `deadline` passes; returns whether it held.
bool eventually(const std::function<bool()>& pred, Ms deadline, Ms step = 10ms);

// ---------------------------------------------------------------------------------------------
// Expectations on a bash script

inline constexpr int kNonZero = -1000;

struct Expect {
    int code = 0;                        // kNonZero: any failure
    std::optional<std::string> out;      // exact stdout
    std::optional<std::string> err;      // exact stderr
    std::string err_has;                 // stderr contains this
    std::string out_has;                 // stdout contains this
};

::testing::AssertionResult check(const std::string& script, const Run& r, const Expect& e);

// ---------------------------------------------------------------------------------------------
// The fixture

// A sitesfs process serving a mountpoint.
struct Daemon {
    pid_t pid = -1;
    stdfs::path mountpoint;
    stdfs::path log;
    std::vector<std::string> argv;
};

// The files of a site, as `ls` lists them (C collation).
extern const std::vector<std::string> kSiteFiles;

class MountTest : public ::testing::Test {
protected:
    // ::testing::Test has a member function Run(); in fixtures the name means our result.
    using Run = it::Run;

    void SetUp() override;
    void TearDown() override;

    // Cleared by fixtures that start sitesfs themselves (or not at all).
    bool autostart_ = true;
    // Set by fixtures that deploy; the others run with --no-reconcile (nothing to deploy to).
    bool reconcile_ = false;
    // NAME=VALUE added to every sitesfs the fixture starts (HOME for caddy, DBUS_SYSTEM_BUS_ADDRESS).
    std::vector<std::string> daemon_env_;

    const stdfs::path& tmp() const { return tmp_; }
    const stdfs::path& mnt() const { return mnt_; }
    const stdfs::path& state() const { return state_; }
    std::string sitesfs() const { return SITESFS_BINARY; }

    // The primary instance: sitesfs -f --state-dir STATE [--allow-local-repos] EXTRA... MNT.
    // Fatal failure (with the daemon's log) when it exits or has not mounted within 30 s.
    void start(const std::vector<std::string>& extra = {}, bool allow_local_repos = true);
    // `sig`, wait up to 5 s (then SIGKILL); returns the wait status. The mount must be gone.
    std::optional<int> stop(int sig = SIGTERM);
    // stop() (sitesfs must exit by itself), then start() with the same arguments.
    void restart();
    // SIGKILL the primary daemon and reap it; the mount is left behind, stale. When the daemon
    // does not exit within 10 s (a wedged mount) it is reaped at TearDown, and
    // last_kill_wedged() says so.
    void kill9();
    bool last_kill_wedged() const { return last_kill_wedged_; }
    // SIGSTOP the primary daemon: its mount stays but nothing answers, as on a wedged mount.
    // It is killed at TearDown; start() may start another.
    void freeze();
    pid_t daemon_pid() const { return primary_ ? primary_->pid : -1; }
    std::string daemon_log() const;

    // Another instance on its own mountpoint TMP/NAME (created), same state dir; e.g. {"-o", "ro"}.
    Daemon* start_instance(const std::string& name, const std::vector<std::string>& extra);
    std::optional<int> stop_instance(Daemon* d);

    // Background processes that are not ours to reap (e.g. a daemonized sitesfs): killed at
    // TearDown if still alive.
    void track_pid(pid_t pid) { foreign_pids_.push_back(pid); }
    // bash -c SCRIPT with cwd = mnt (or `cwd`), HOME=TMP/home, LC_ALL=C, TMUX_SOCK=TMP/tmux.sock.
    Run sh(const std::string& script, Ms timeout = 60s) const;
    Run sh_in(const stdfs::path& cwd, const std::string& script, Ms timeout = 60s,
              const std::vector<std::string>& env = {}) const;
    ::testing::AssertionResult shell(const std::string& script, const Expect& e = {}) const {
        return check(script, sh(script), e);
    }
    std::vector<std::string> test_env() const;

    // Plain syscalls through the mount; `rel` is relative to mnt().
    std::string read(const std::string& rel) const;  // failure: ADD_FAILURE and "<error ...>"
    void write(const std::string& rel, const std::string& data) const;  // expects success
    // open(O_WRONLY|flags), one write(), close(): 0 or the first errno.
    // Opens as a shell's `>` does (O_CREAT, plus `flags`), writes `data` in one write(), closes.
    int write_errno(const std::string& rel, const std::string& data, int flags = O_TRUNC) const;
    std::string status_of(const std::string& site) const { return read(site + "/status"); }
    // The value of `key:` in a site's status ("<missing>" when absent).
    std::string status_line(const std::string& site, const std::string& key) const;
    // Creates a site with repo and domain set (through the mount).
    void make_site(const std::string& name, const std::string& domain,
                   const std::string& repo = "https://github.com/user/blog") const;
    // `ls -a SITE` is exactly . .. and the site's files.
    ::testing::AssertionResult only_fields(const std::string& site) const;

private:
    Daemon* launch(const stdfs::path& mountpoint, const std::vector<std::string>& argv);
    std::optional<int> shut_down(Daemon& d, int sig = SIGTERM);
    void unmount_everything();

    stdfs::path tmp_, mnt_, state_;
    std::vector<std::unique_ptr<Daemon>> daemons_;
    Daemon* primary_ = nullptr;
    std::vector<std::string> primary_extra_;
    bool primary_local_repos_ = true;
    std::vector<pid_t> foreign_pids_;
    std::vector<pid_t> unreaped_;  // killed, not yet exited
    bool last_kill_wedged_ = false;
    int next_log_ = 0;
};

// A mount holding two complete sites: blog (blog.example.com) and shop (shop.example.com, repo
// user/shop).
class TwoSitesTest : public MountTest {
protected:
    void SetUp() override;
};

}  // namespace sitesfs::it
