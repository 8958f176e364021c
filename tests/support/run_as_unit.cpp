// run_as_unit UNIT_FILE -- COMMAND [ARG...]: runs COMMAND confined the way systemd confines the
// unit's service, as far as the unit's hardening reaches into what sitesfs starts: the capability
// bounding set, no new privileges, and the seccomp filters of RestrictNamespaces=,
// RestrictAddressFamilies= and MemoryDenyWriteExecute= (systemd 252's, src/shared/seccomp-util.c:
// a namespace flag on clone/unshare/setns is EPERM and clone3 ENOSYS, so that libc falls back to
// clone; a family off the list is EAFNOSUPPORT; a writable and executable mapping, or making one
// executable, is EPERM). There is no systemd as PID 1 on CI machines, so this is how a test learns
// that a build, a notification or a webhook works under the unit sitesfs ships (the ctest
// service.TheShippedUnitRunsBuildsNotificationsAndWebhooks, tests/CMakeLists.txt).
//
// Each [Service] setting is applied, named as not emulated on stderr, or known to confine nothing
// (ExecStart=, Restart=, ...); any other setting, or a value this tool does not know, is refused:
// the unit cannot gain a setting that the test silently ignores.
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& why) {
    std::cerr << "run_as_unit: " << why << "\n";
    std::exit(125);
}

std::vector<std::string> words(const std::string& value) {
    std::istringstream in(value);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

bool yes(const std::string& key, const std::string& value) {
    if (value == "yes" || value == "true" || value == "1") return true;
    if (value == "no" || value == "false" || value == "0") return false;
    die(key + "=" + value + ": not a boolean");
}

const std::set<std::string> kApplied = {"CapabilityBoundingSet", "NoNewPrivileges", "RestrictNamespaces",
                                         "RestrictAddressFamilies", "MemoryDenyWriteExecute"};

// How the service is started, stopped and told of: nothing of what its processes may do.
const std::set<std::string> kConfineNothing = {
    "Type", "ExecStart", "ExecStartPre", "ExecReload", "KillSignal", "TimeoutStopSec", "Restart",
    "RestartSec", "Environment", "StateDirectory", "StateDirectoryMode", "WatchdogSec"};

// The [Service] section's settings (of a key set twice, the first).
std::map<std::string, std::string> service_settings(const std::string& path) {
    std::ifstream in(path);
    if (!in) die("cannot read " + path + ": " + std::strerror(errno));
    std::map<std::string, std::string> out;
    std::string section;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#' || line[0] == ';') continue;
        if (line[0] == '[') {
            section = line;
            continue;
        }
        const size_t eq = line.find('=');
        if (section != "[Service]" || eq == std::string::npos) continue;
        // systemd merges some repeated settings and resets on an empty one: not emulated for the
        // ones applied here.
        const std::string key = line.substr(0, eq);
        if (!out.emplace(key, line.substr(eq + 1)).second && kApplied.contains(key)) die(key + "= is set twice");
    }
    return out;
}

const std::map<std::string, int> kCapabilities = {
    {"CAP_CHOWN", CAP_CHOWN},         {"CAP_DAC_OVERRIDE", CAP_DAC_OVERRIDE}, {"CAP_DAC_READ_SEARCH", CAP_DAC_READ_SEARCH},
    {"CAP_FOWNER", CAP_FOWNER},       {"CAP_KILL", CAP_KILL},                 {"CAP_SETGID", CAP_SETGID},
    {"CAP_SETUID", CAP_SETUID},       {"CAP_SETPCAP", CAP_SETPCAP},           {"CAP_NET_ADMIN", CAP_NET_ADMIN},
    {"CAP_SYS_CHROOT", CAP_SYS_CHROOT}, {"CAP_SYS_ADMIN", CAP_SYS_ADMIN},     {"CAP_SYS_RESOURCE", CAP_SYS_RESOURCE},
};

void bound_capabilities(const std::string& value) {
    std::set<int> keep;
    for (const std::string& name : words(value)) {
        const auto it = kCapabilities.find(name);
        if (it == kCapabilities.end()) die("CapabilityBoundingSet: " + name + " is not one this tool knows");
        keep.insert(it->second);
    }
    for (int cap = 0; prctl(PR_CAPBSET_READ, cap) >= 0; ++cap)
        if (!keep.contains(cap) && prctl(PR_CAPBSET_DROP, cap) != 0)
            die("dropping capability " + std::to_string(cap) + ": " + std::strerror(errno) + " (run as root)");
}

void add(scmp_filter_ctx ctx, uint32_t action, const char* syscall, std::vector<scmp_arg_cmp> args = {}) {
    const int nr = seccomp_syscall_resolve_name(syscall);
    if (nr == __NR_SCMP_ERROR) die(std::string("no syscall ") + syscall);
    if (const int rc = seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(args.size()), args.data()); rc != 0)
        die(std::string("seccomp rule for ") + syscall + ": " + std::strerror(-rc));
}

// RestrictNamespaces=yes: no namespace of any kind (main refuses the list form).
void restrict_namespaces(scmp_filter_ctx ctx) {
    constexpr uint64_t kFlags[] = {CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS,
                                   CLONE_NEWPID,    CLONE_NEWUSER, CLONE_NEWUTS};
    for (const uint64_t flag : kFlags) {
        add(ctx, SCMP_ACT_ERRNO(EPERM), "unshare", {SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)});
        add(ctx, SCMP_ACT_ERRNO(EPERM), "clone", {SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)});
        add(ctx, SCMP_ACT_ERRNO(EPERM), "setns", {SCMP_A1(SCMP_CMP_MASKED_EQ, flag, flag)});
    }
    add(ctx, SCMP_ACT_ERRNO(EPERM), "setns", {SCMP_A1(SCMP_CMP_EQ, 0)});  // "any type": refused too
    add(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3");
}

void restrict_address_families(scmp_filter_ctx ctx, const std::string& value) {
    const std::map<std::string, int> known = {{"AF_UNIX", AF_UNIX},       {"AF_INET", AF_INET},
                                              {"AF_INET6", AF_INET6},     {"AF_NETLINK", AF_NETLINK},
                                              {"AF_PACKET", AF_PACKET}};
    std::set<int> allowed;
    for (const std::string& name : words(value)) {
        const auto it = known.find(name);
        if (it == known.end()) die("RestrictAddressFamilies: " + name + " is not one this tool knows (a ~ deny list neither)");
        allowed.insert(it->second);
    }
    for (int family = 0; family < AF_MAX; ++family)
        if (!allowed.contains(family))
            add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", {SCMP_A0(SCMP_CMP_EQ, static_cast<uint64_t>(family))});
    add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", {SCMP_A0(SCMP_CMP_GE, AF_MAX)});
}

void deny_write_execute(scmp_filter_ctx ctx) {
    add(ctx, SCMP_ACT_ERRNO(EPERM), "mmap", {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_EXEC)});
    add(ctx, SCMP_ACT_ERRNO(EPERM), "mprotect", {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC)});
    add(ctx, SCMP_ACT_ERRNO(EPERM), "pkey_mprotect", {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC)});
    add(ctx, SCMP_ACT_ERRNO(EPERM), "shmat", {SCMP_A2(SCMP_CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC)});
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4 || std::string(argv[2]) != "--") die("usage: run_as_unit UNIT_FILE -- COMMAND [ARG...]");
    const auto settings = service_settings(argv[1]);

    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) die("seccomp_init failed");
    bool no_new_privileges = false;
    for (const auto& [key, value] : settings) {
        if (key == "CapabilityBoundingSet") {
            bound_capabilities(value);
        } else if (key == "NoNewPrivileges") {
            no_new_privileges = yes(key, value);
        } else if (key == "RestrictNamespaces") {
            if (value != "yes" && value != "no") die("RestrictNamespaces=" + value + ": only yes or no are emulated");
            if (value == "yes") restrict_namespaces(ctx);
        } else if (key == "RestrictAddressFamilies") {
            restrict_address_families(ctx, value);
        } else if (key == "MemoryDenyWriteExecute") {
            if (yes(key, value)) deny_write_execute(ctx);
        } else if (key == "ProtectHostname" || key == "RestrictRealtime" || key == "RestrictSUIDSGID" ||
                   key == "LockPersonality" || key == "SystemCallArchitectures" || key == "DevicePolicy" ||
                   key == "DeviceAllow") {
            // What these stop (sethostname, realtime scheduling, setuid bits, personality(2), 32-bit
            // syscalls, devices but the standard pseudo devices and /dev/fuse) is nothing sitesfs
            // or a build needs.
            std::cerr << "run_as_unit: " << key << "= is not emulated\n";
        } else if (!kConfineNothing.contains(key)) {
            die(key + "= is a setting this tool does not know: emulate it, or list it as confining nothing");
        }
    }
    // Loading a filter without no_new_privs takes CAP_SYS_ADMIN, which the unit keeps, as systemd
    // does for a root service: so it is set only when the unit says so.
    if (no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        die(std::string("PR_SET_NO_NEW_PRIVS: ") + std::strerror(errno));
    if (const int rc = seccomp_load(ctx); rc != 0) die(std::string("loading the seccomp filter: ") + std::strerror(-rc));
    seccomp_release(ctx);
    execvp(argv[3], argv + 3);
    die(std::string("cannot run ") + argv[3] + ": " + std::strerror(errno));
}
