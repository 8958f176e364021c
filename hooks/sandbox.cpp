#include "hooks/sandbox.hpp"

#include "common/fd.hpp"
#include "common/text.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace sitesfs::hooks {

namespace {

// The fds bwrap is handed, besides stdin, stdout and stderr.
constexpr int kInfoFd = 3;   // --info-fd: bwrap writes the host pid of the sandbox's init here
constexpr int kBlockFd = 4;  // --block-fd: the sandbox waits for a byte here before the build starts

// System directories the build reads. On a merged-/usr system /bin, /lib, /lib64 and /sbin are
// links into /usr, and binding one binds the directory it leads to; -try skips what a system lacks.
constexpr std::array kSystemDirs = {"/usr", "/bin", "/lib", "/lib32", "/lib64", "/sbin"};

// The parts of /etc a builder needs, and no more: the host's /etc holds the daemon's config and
// whatever else the host keeps there that any user may read.
constexpr std::array kEtcFiles = {
    "/etc/ld.so.cache",                     // where the shared libraries are
    "/etc/alternatives",                    // Debian's links: node, java, awk, which
    "/etc/passwd", "/etc/group",            // a name for the build's uid (npm, git and ruby ask)
    "/etc/nsswitch.conf",                   // how glibc looks names up
    "/etc/hosts", "/etc/resolv.conf",       // localhost, and DNS when the network is allowed
    "/etc/host.conf", "/etc/gai.conf",      // getaddrinfo's settings
    "/etc/services", "/etc/protocols",      // port and protocol names
    "/etc/ssl",                             // CA certificates and openssl.cnf (private/ is root's)
    "/etc/ca-certificates",                 // certificates the host added
    "/etc/mime.types",                      // file types by extension
};

constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";

// Where the child got to when it could not exec bwrap; the parent turns it into a sentence.
enum class Step : int { fds, limits, groups, gid, uid, regained, exec };

struct ChildFailure {
    Step step;
    int error;
};

// Everything the child needs, made before fork(): after it only async-signal-safe calls are
// allowed (the daemon has other threads), so the child allocates nothing.
struct ChildPlan {
    const char* bwrap;
    char* const* argv;
    char* const* envp;
    int out, info, block, report;  // the write end of the output, info and report pipes; block's read end
    uid_t uid;
    gid_t gid;
    rlimit memory, processes, file_size;
};

std::string size_text(uint64_t bytes) {
    constexpr uint64_t kMiB = 1ull << 20;
    return bytes % kMiB == 0 ? std::to_string(bytes / kMiB) + " MiB" : std::to_string(bytes) + " bytes";
}

const std::filesystem::path& seen_inside(const SandboxSpec& spec) {
    return spec.work_inside.empty() ? spec.work : spec.work_inside;
}

std::vector<std::string> bwrap_argv(const SandboxSpec& spec) {
    const std::string work = spec.work.string();
    const std::string tmp_size = std::to_string(spec.limits.tmp_bytes);
    std::vector<std::string> a = {spec.bwrap.string(), "--unshare-all"};
    if (spec.network) a.emplace_back("--share-net");
    // --die-with-parent: the sandbox's init dies with bwrap, and the kernel then kills everything in
    // the pid namespace, so killing bwrap (or bwrap ending) ends the whole build. --new-session: the
    // build cannot reach a terminal (TIOCSTI).
    a.insert(a.end(), {"--die-with-parent", "--new-session"});
    for (const char* dir : kSystemDirs) a.insert(a.end(), {"--ro-bind-try", dir, dir});
    for (const char* file : kEtcFiles) a.insert(a.end(), {"--ro-bind-try", file, file});
    // /dev: the usual devices, read-only but for a sized /dev/shm (POSIX semaphores: Python's
    // multiprocessing, parallel sphinx); a writable /dev would be memory without a bound.
    a.insert(a.end(), {"--dev", "/dev", "--size", tmp_size, "--tmpfs", "/dev/shm", "--remount-ro", "/dev"});
    a.insert(a.end(), {"--proc", "/proc", "--size", tmp_size, "--tmpfs", "/tmp"});
    // After /tmp, so that a WORK under /tmp is bound on top of the private one.
    const std::string inside = seen_inside(spec).string();
    a.insert(a.end(), {"--bind", work, inside, "--chdir", spec.cwd.empty() ? inside : spec.cwd.string()});
    // Last: the root bwrap built is a tmpfs of its own, writable until now.
    a.insert(a.end(), {"--remount-ro", "/"});
    a.insert(a.end(), {"--info-fd", std::to_string(kInfoFd), "--block-fd", std::to_string(kBlockFd)});
    // bwrap is started with an empty environment, so the build's is exactly these.
    bool has_path = false, has_home = false;
    for (const auto& [name, value] : spec.env) {
        has_path = has_path || name == "PATH";
        has_home = has_home || name == "HOME";
        a.insert(a.end(), {"--setenv", name, value});
    }
    if (!has_path) a.insert(a.end(), {"--setenv", "PATH", kDefaultPath});
    // On disk with the rest of the build's files, and gone with them; /tmp is memory.
    if (!has_home) a.insert(a.end(), {"--setenv", "HOME", inside});
    a.emplace_back("--");
    a.insert(a.end(), spec.argv.begin(), spec.argv.end());
    return a;
}

// Why the spec cannot be run, or "".
std::string refusal(const SandboxSpec& spec) {
    if (spec.argv.empty()) return "no build command configured";
    if (spec.uid == 0 || spec.gid == 0)
        return "refusing to run a build as root (uid " + std::to_string(spec.uid) + ", gid " + std::to_string(spec.gid) +
               "): configure an unprivileged user";
    if (access(spec.bwrap.c_str(), X_OK) != 0) {
        if (errno == ENOENT) return "bubblewrap is not installed (" + spec.bwrap.string() + ")";
        return "cannot run " + spec.bwrap.string() + ": " + strerror(errno);
    }
    const std::string work = spec.work.string();
    if (!spec.work.is_absolute()) return "the build dir '" + work + "' is not an absolute path";
    if (!spec.work_inside.empty() && (!spec.work_inside.is_absolute() || spec.work_inside == "/"))
        return "the build dir's path inside the sandbox '" + spec.work_inside.string() + "' is not an absolute path below /";
    const auto below = [](const std::filesystem::path& p, const std::filesystem::path& dir) {
        const std::string rel = p.lexically_relative(dir).string();
        return p.is_absolute() && !rel.empty() && !rel.starts_with("..");
    };
    if (!spec.cwd.empty() && !below(spec.cwd, seen_inside(spec)))
        return "the build's working dir '" + spec.cwd.string() + "' is not inside " + seen_inside(spec).string();
    struct stat st {};
    if (lstat(spec.work.c_str(), &st) != 0) return "the build dir " + work + ": " + strerror(errno);
    if (!S_ISDIR(st.st_mode)) return "the build dir " + work + " is not a directory";
    // Also what keeps a WORK of /, /usr or /etc from being bound writable: those are root's.
    if (st.st_uid != spec.uid)
        return "the build dir " + work + " is owned by uid " + std::to_string(st.st_uid) + ", not by the build's uid " +
               std::to_string(spec.uid) + " (the caller chowns it)";
    return "";
}

std::string failure_text(const ChildFailure& f, const SandboxSpec& spec) {
    const std::string why = strerror(f.error);
    const std::string uid = std::to_string(spec.uid), gid = std::to_string(spec.gid);
    switch (f.step) {
    case Step::fds: return "cannot hand bwrap its fds: " + why;
    case Step::limits: return "cannot set the build's limits (setrlimit): " + why;
    case Step::groups: return "cannot drop the supplementary groups (setgroups): " + why + "; sitesfs must run as root";
    case Step::gid: return "cannot switch to gid " + gid + ": " + why + "; sitesfs must run as root";
    case Step::uid: return "cannot switch to uid " + uid + ": " + why + "; sitesfs must run as root";
    case Step::regained:
        return "the switch to uid " + uid + " and gid " + gid + " did not hold (other ids or groups were kept, or root could be regained)";
    case Step::exec:
        if (f.error == EAGAIN)
            return "cannot run " + spec.bwrap.string() + ": uid " + uid + " already has " +
                   std::to_string(spec.limits.max_processes) + " processes (max_processes)";
        return "cannot run " + spec.bwrap.string() + ": " + why;
    }
    return why;
}

// In the forked child: tells the parent why it stops here.
[[noreturn]] void fail(int report, Step step) noexcept {
    const ChildFailure f{step, errno};
    (void)!write(report, &f, sizeof f);
    _exit(127);
}

// In the forked child: becomes the build's user with its limits, then execs bwrap. Never returns.
[[noreturn]] void become_build(const ChildPlan& plan) noexcept {
    int report = plan.report;
    // The daemon's handlers and ignored signals must not reach bwrap, nor its threads' masks.
    // Dispositions first, so that a signal pending until the unblock meets its default.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) sigaction(s, &dfl, nullptr);  // SIGKILL, SIGSTOP and glibc's own refuse
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // A group of its own: the deadline kills it without touching the daemon.
    setpgid(0, 0);

    // Each moved above 4 first, so that placing one at 0-4 cannot close another.
    const auto above = [&](int fd) {
        const int moved = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, kBlockFd + 1);
        if (moved < 0) fail(report, Step::fds);
        return moved;
    };
    report = above(report);
    const int null = above(open("/dev/null", O_RDONLY | O_CLOEXEC));
    const int out = above(plan.out), info = above(plan.info), block = above(plan.block);
    if (dup2(null, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0 ||
        dup2(info, kInfoFd) < 0 || dup2(block, kBlockFd) < 0)
        fail(report, Step::fds);
    // Every other fd of the daemon (the store, FUSE, sockets, keys) closes at exec; `report` stays
    // open until then to carry a failure.
    if (close_range(kBlockFd + 1, ~0U, CLOSE_RANGE_CLOEXEC) != 0) fail(report, Step::fds);
    umask(022);  // the site's files must be readable by the web server, whatever the daemon's umask

    const rlimit no_core{0, 0};
    if (setrlimit(RLIMIT_AS, &plan.memory) != 0 || setrlimit(RLIMIT_NPROC, &plan.processes) != 0 ||
        setrlimit(RLIMIT_FSIZE, &plan.file_size) != 0 || setrlimit(RLIMIT_CORE, &no_core) != 0)
        fail(report, Step::limits);
    if (setgroups(0, nullptr) != 0) fail(report, Step::groups);
    if (setresgid(plan.gid, plan.gid, plan.gid) != 0) fail(report, Step::gid);
    if (setresuid(plan.uid, plan.uid, plan.uid) != 0) fail(report, Step::uid);
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != plan.uid || eu != plan.uid ||
        su != plan.uid || rg != plan.gid || eg != plan.gid || sg != plan.gid || getgroups(0, nullptr) != 0 ||
        setuid(0) == 0) {
        errno = EPERM;
        fail(report, Step::regained);
    }
    execve(plan.bwrap, plan.argv, plan.envp);
    fail(report, Step::exec);
}

// The host pid of the sandbox's init, from what bwrap wrote to --info-fd; 0 when it wrote nothing
// (it failed before making the sandbox, and says why on stderr).
pid_t read_init_pid(int info) {
    std::string text;
    char buf[512];
    for (;;) {
        const ssize_t n = read(info, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        text.append(buf, static_cast<size_t>(n));
    }
    constexpr std::string_view kKey = "\"child-pid\":";
    const size_t at = text.find(kKey);
    if (at == std::string::npos) return 0;
    return static_cast<pid_t>(std::strtol(text.c_str() + at + kKey.size(), nullptr, 10));
}

// What RLIMIT_AS looks like from outside: an allocation fails and the program says so. Looked for
// in the end of the output only, where a failed build says why it stopped.
bool says_out_of_memory(std::string_view output) {
    static constexpr std::array kPhrases = {"out of memory",   "memory exhausted", "cannot allocate memory",
                                            "memoryerror",     "bad_alloc",        "failed to allocate",
                                            "outofmemoryerror", "allocation failed"};
    const std::string tail = ascii_lower(utf8_tail(output, 4096));
    return std::any_of(kPhrases.begin(), kPhrases.end(),
                       [&](const char* phrase) { return tail.find(phrase) != std::string::npos; });
}

}  // namespace

std::string SandboxResult::summary() const {
    if (!started) return CommandResult::summary();
    std::string text = timed_out     ? "timed out after " + duration_text(limits.time)
                       : cancelled   ? "cancelled"
                       : signal != 0 ? "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")"
                                     : "exit " + std::to_string(exit_code);
    const std::string why = printable(last_lines(output, 3, 400));
    if (!why.empty()) text += ": " + why;
    if (out_of_memory) text += " (memory limit " + size_text(limits.memory_bytes) + ")";
    return text;
}

SandboxResult run_sandboxed(const SandboxSpec& spec) {
    SandboxResult result;
    result.limits = spec.limits;
    if (std::string why = refusal(spec); !why.empty()) {
        result.output = std::move(why);
        return result;
    }
    const std::vector<std::string> args = bwrap_argv(spec);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    char* const no_env[] = {nullptr};

    Fd out_r, out_w, info_r, info_w, block_r, block_w, report_r, report_w;
    for (const auto& [r, w] : {std::pair{&out_r, &out_w}, {&info_r, &info_w}, {&block_r, &block_w}, {&report_r, &report_w}}) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) {
            result.output = std::string("pipe: ") + strerror(errno);
            return result;
        }
        *r = Fd(p[0]);
        *w = Fd(p[1]);
    }

    const auto limit = [](uint64_t v) { return rlimit{static_cast<rlim_t>(v), static_cast<rlim_t>(v)}; };
    const ChildPlan plan{spec.bwrap.c_str(),
                         argv.data(),
                         no_env,
                         out_w.get(),
                         info_w.get(),
                         block_r.get(),
                         report_w.get(),
                         spec.uid,
                         spec.gid,
                         limit(spec.limits.memory_bytes),
                         limit(spec.limits.max_processes),
                         limit(spec.limits.max_file_bytes)};
    const pid_t pid = fork();
    if (pid < 0) {
        result.output = std::string("fork: ") + strerror(errno);
        return result;
    }
    if (pid == 0) become_build(plan);
    out_w.reset();
    info_w.reset();
    report_w.reset();

    // Empty at exec (the pipe is close-on-exec), or why the child could not get there.
    ChildFailure failure{};
    ssize_t n;
    while ((n = read(report_r.get(), &failure, sizeof failure)) < 0 && errno == EINTR) {
    }
    if (n == sizeof failure) {
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        result.output = failure_text(failure, spec);
        return result;
    }
    result.started = true;

    // The init is held at --block-fd until its pidfd is open, so the pid cannot be another's yet.
    const pid_t init_pid = read_init_pid(info_r.get());
    const Fd init(init_pid > 0 ? open_pidfd(init_pid) : -1);
    // block_r is still open here, so this write cannot raise SIGPIPE when bwrap is gone already.
    (void)!write(block_w.get(), "", 1);
    block_r.reset();
    block_w.reset();

    await_group(pid, out_r.get(), spec.limits.time, KeptOutput::tail, result, spec.cancelled);
    // bwrap is gone, and with it (--die-with-parent) the init, whose death kills the rest of the
    // pid namespace. The init's pidfd turns readable only once that is done: then nothing the
    // build started runs on. SIGKILL cannot be refused, so this wait ends unless the kernel hangs.
    if (init.valid()) {
        pollfd p{init.get(), POLLIN, 0};
        while (poll(&p, 1, -1) < 0 && errno == EINTR) {
        }
    }
    // bwrap exits 128 + N when the build was killed by signal N, as a shell reports it.
    if (result.exit_code > 128 && result.exit_code < 128 + NSIG) {
        result.signal = result.exit_code - 128;
        result.exit_code = -1;
    }
    result.out_of_memory = !result.timed_out && !result.cancelled && !result.ok() && says_out_of_memory(result.output);
    return result;
}

}  // namespace sitesfs::hooks
