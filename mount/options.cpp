#include "mount/options.hpp"

#include "mount/config_keys.hpp"

#include <array>
#include <optional>
#include <string_view>

namespace sitesfs::mount {

namespace {

// Mount flags the kernel or libfuse understand and that make sense for sitesfs; mount(8) and
// fstab pass some of them on their own.
constexpr std::array kPassedFlags{"nosuid", "nodev", "noexec", "suid", "dev", "exec", "noatime", "relatime", "atime"};

void apply_mount_option(CommandLine& cl, std::string_view opt) {
    if (opt.empty()) return;
    if (opt == "ro") return void(cl.read_only = true);
    if (opt == "rw") return void(cl.read_only = false);
    if (opt == "allow_other") return void(cl.allow_other = true);
    if (opt == "default_permissions") return;  // always on
    // mount(8) and fstab can only pass -o options, so the settings an fstab line needs are here too.
    const auto value_of = [&](std::string_view key) -> std::optional<std::string> {
        if (!opt.starts_with(key) || opt.size() <= key.size() || opt[key.size()] != '=') return std::nullopt;
        return std::string(opt.substr(key.size() + 1));
    };
    if (auto v = value_of("state_dir")) return void(cl.state_dir = *v);
    if (auto v = value_of("config")) return void(cl.config_file = *v);
    if (auto v = value_of("log_level")) return void(cl.log_level = *v);
    if (opt == "allow_local_repos") return void(cl.allow_local_repos = true);
    if (opt == "no_reconcile") return void(cl.no_reconcile = true);
    for (std::string_view flag : kPassedFlags)
        if (opt == flag) return cl.mount_flags.emplace_back(opt), void();
    throw UsageError("unknown mount option '" + std::string(opt) +
                     "' (known: ro, rw, allow_other, default_permissions, nosuid, nodev, noexec, noatime, "
                     "state_dir=DIR, config=FILE, log_level=LEVEL, allow_local_repos, no_reconcile)");
}

void apply_mount_options(CommandLine& cl, std::string_view list) {
    size_t start = 0;
    while (start <= list.size()) {
        const size_t comma = list.find(',', start);
        const size_t end = comma == std::string_view::npos ? list.size() : comma;
        apply_mount_option(cl, list.substr(start, end - start));
        start = end + 1;
    }
}

}  // namespace

CommandLine parse_command_line(int argc, char** argv) {
    CommandLine cl;
    std::vector<std::string> positional;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&](std::string_view name) -> std::string {
            if (const auto eq = arg.find('='); eq != std::string_view::npos && arg.substr(0, eq) == name)
                return std::string(arg.substr(eq + 1));
            if (i + 1 >= argc) throw UsageError(std::string(name) + " needs a value");
            return argv[++i];
        };
        auto is = [&](std::string_view name) {
            return arg == name || (arg.starts_with(name) && arg.size() > name.size() && arg[name.size()] == '=');
        };
        if (arg == "-h" || arg == "--help") cl.help = true;
        else if (arg == "-V" || arg == "--version") cl.version = true;
        else if (arg == "-f" || arg == "--foreground") cl.foreground = true;
        else if (arg == "-o") {
            if (i + 1 >= argc) throw UsageError("-o needs a value");
            apply_mount_options(cl, argv[++i]);
        } else if (arg.starts_with("-o")) apply_mount_options(cl, arg.substr(2));
        else if (is("--state-dir")) cl.state_dir = value("--state-dir");
        else if (is("--config")) cl.config_file = value("--config");
        else if (is("--log-level")) cl.log_level = value("--log-level");
        else if (is("--import")) cl.import_file = value("--import");
        else if (is("--copy-store")) {
            cl.copy_store = value("--copy-store");
            if (*cl.copy_store != "file-to-etcd" && *cl.copy_store != "etcd-to-file")
                throw UsageError("--copy-store takes file-to-etcd or etcd-to-file, not '" + *cl.copy_store + "'");
        } else if (is("--forget-host")) cl.forget_host = value("--forget-host");
        else if (arg == "--allow-local-repos") cl.allow_local_repos = true;
        else if (arg == "--no-reconcile") cl.no_reconcile = true;
        else if (arg.starts_with("-") && arg != "-") throw UsageError("unknown option '" + std::string(arg) + "'");
        else positional.emplace_back(arg);
    }
    // mount(8) runs helpers as `sitesfs SOURCE MOUNTPOINT -o ...`; the source means nothing here.
    if (positional.size() == 2) positional.erase(positional.begin());
    if (positional.size() > 1) throw UsageError("expected one MOUNTPOINT, got " + std::to_string(positional.size()));
    if (!positional.empty()) cl.mountpoint = positional.front();
    return cl;
}

std::string usage_text() {
    // The defaults and the log levels are the config file's (config_keys.cpp).
    std::string levels;
    for (const std::string_view level : config_key("log_level").choices)
        levels += (levels.empty() ? "" : ", ") + std::string(level);
    return R"(Usage: sitesfs [options] MOUNTPOINT
       sitesfs --state-dir DIR --import sites.toml
       sitesfs --config FILE --copy-store file-to-etcd|etcd-to-file
       sitesfs --config FILE --forget-host NAME

Serves the sites of this host as a filesystem: every site is a directory under MOUNTPOINT and
its files (repo, domain, branch, path, deploy_key_ref, commit, status) are its desired and
actual state.

Options:
  -f, --foreground        stay in the foreground (logs go to stderr)
  -o OPT[,OPT...]         mount options: ro, rw, allow_other, nosuid, nodev, noexec, noatime
                          (default_permissions is always on), and for mount(8) and fstab:
                          state_dir=DIR, config=FILE, log_level=LEVEL, allow_local_repos,
                          no_reconcile
  --state-dir DIR         where the desired state lives (default )" +
           default_value("state_dir") + R"()
  --config FILE           TOML config file; every setting has a built-in default
  --allow-local-repos     accept file:// and absolute local paths as repo
  --no-reconcile          serve and store the desired state, deploy nothing
                          (read-only mounts never deploy)
  --log-level LEVEL       )" +
           levels + " (default " + default_value("log_level") + R"()
  --import FILE           import the seed tool's sites.toml into the store, report, exit
  --copy-store DIRECTION  file-to-etcd copies the state dir's sites into [store]'s etcd,
                          etcd-to-file etcd's sites into an empty state dir; report, exit
  --forget-host NAME      remove a host that will not come back from the etcd cluster, exit
  -h, --help              this text
  -V, --version           the version

Exit status: 0 success, 1 runtime failure (state, mount), 2 usage or config error.
)";
}

}  // namespace sitesfs::mount
