// sitesfs: wiring only. Parse the command line and config, open the store, mount, serve, unmount.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <iostream>

#include "fs/filesystem.hpp"
#include "common/files.hpp"
#include "hooks/deploy_keys.hpp"
#include "hooks/reconciler.hpp"
#include "mount/config.hpp"
#include "mount/config_keys.hpp"
#include "mount/daemon.hpp"
#include "mount/options.hpp"
#include "mount/notify.hpp"
#include "mount/session.hpp"
#include "schemas/site_schema.hpp"
#include "store/etcd/etcd_store.hpp"
#include "store/etcd/migrate.hpp"
#include "store/file_store.hpp"
#include "store/seed_format.hpp"
#include "webhook/listener.hpp"

namespace sitesfs::mount {
namespace {

constexpr int kRuntimeFailure = 1;
constexpr int kUsageError = 2;

int usage_error(const std::string& why) {
    std::cerr << "sitesfs: " << why << "\nTry 'sitesfs --help'.\n";
    return kUsageError;
}

// journald adds its own timestamp and reads the priority from a "<N>" prefix (sd-daemon(3)).
class JournalPriority : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        static constexpr const char* kPrefix[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", "<6>"};
        const std::string_view p = kPrefix[static_cast<int>(msg.level)];
        dest.append(p.data(), p.data() + p.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JournalPriority>(); }
};

// In the foreground (and under systemd) logs go to stderr. A daemon started by mount(8) or fstab
// loses stderr once the mount answers, so it also logs to syslog (ident sitesfs, facility daemon).
void setup_logging(spdlog::level::level_enum level, bool detaching) {
    auto to_stderr = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    if (getenv("JOURNAL_STREAM")) {
        auto formatter = std::make_unique<spdlog::pattern_formatter>();
        formatter->add_flag<JournalPriority>('*').set_pattern("%*%v");
        to_stderr->set_formatter(std::move(formatter));
    } else {
        to_stderr->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
    }
    std::vector<spdlog::sink_ptr> sinks{to_stderr};
    if (detaching) {
        auto to_syslog = std::make_shared<spdlog::sinks::syslog_sink_mt>("sitesfs", LOG_PID, LOG_DAEMON, true);
        to_syslog->set_pattern("%v");
        sinks.push_back(to_syslog);
    }
    auto logger = std::make_shared<spdlog::logger>("sitesfs", sinks.begin(), sinks.end());
    logger->set_level(level);
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
}

std::map<std::string, size_t> sites_by_state(const Store& store) {
    std::map<std::string, size_t> by_state;
    for (const auto& name : store.site_names())
        if (const SiteRef s = store.site(name)) ++by_state[std::string(to_string(site_state(*s)))];
    return by_state;
}

// STATUS= for the service manager, states in alphabetical order: "12 sites at /sites: 1 deploying, 1 failed, 10 live".
std::string summary(const Store& store, const std::string& mountpoint) {
    const auto by_state = sites_by_state(store);
    size_t total = 0;
    for (const auto& entry : by_state) total += entry.second;
    std::string out = std::to_string(total) + " sites at " + mountpoint;
    const char* sep = ": ";
    for (const auto& [state, n] : by_state) {
        out += sep + std::to_string(n) + " " + state;
        sep = ", ";
    }
    return out;
}

// Every state is printed, zeros included, so a dashboard's series never disappear.
std::string site_metrics(const Store& store) {
    auto by_state = sites_by_state(store);
    for (const SiteState state :
         {SiteState::incomplete, SiteState::pending, SiteState::deploying, SiteState::live, SiteState::failed, SiteState::gone})
        by_state.try_emplace(std::string(to_string(state)), 0);
    std::string out = "# HELP sitesfs_sites Sites by state.\n# TYPE sitesfs_sites gauge\n";
    for (const auto& [state, n] : by_state) out += "sitesfs_sites{state=\"" + state + "\"} " + std::to_string(n) + "\n";
    return out;
}

// What a write through this mount may say: local repos only when allowed, `build` only naming a
// builder this host's config defines.
ValidationPolicy write_policy(const Config& cfg) {
    ValidationPolicy policy{.allow_local_repos = cfg.allow_local_repos, .builders = std::vector<std::string>{}};
    for (const auto& [name, builder] : cfg.hooks.build.builders) policy.builders->push_back(name);
    return policy;
}

EtcdStoreOptions etcd_options(const Config& cfg, bool read_only) {
    const StoreConfig& s = cfg.store;
    EtcdStoreOptions o;
    o.client.endpoints = s.endpoints;
    o.client.ca_file = s.ca_file;
    o.client.cert_file = s.cert_file;
    o.client.key_file = s.key_file;
    o.client.user = s.user;
    if (!s.password_ref.empty())
        o.client.password = std::string(hooks::resolve_secret(cfg.hooks.keys, s.password_ref, "etcd password").view());
    o.client.timeout = s.timeout;
    o.prefix = s.prefix;
    o.host = s.host;
    o.labels = s.labels;
    o.read_only = read_only;
    o.policy = write_policy(cfg);
    o.lease_ttl = std::chrono::seconds(s.lease_ttl);
    return o;
}

// The store [store] backend names. Throws StoreError (or hooks::KeyError for the password).
std::unique_ptr<Store> open_store(const Config& cfg, bool read_only) {
    if (cfg.store.backend == StoreConfig::Backend::etcd) return open_etcd_store(etcd_options(cfg, read_only));
    return open_file_store({.state_dir = cfg.state_dir,
                            .read_only = read_only,
                            .policy = write_policy(cfg),
                            .host = cfg.store.host,
                            .labels = cfg.store.labels});
}

int run_import(const Config& cfg, const std::string& file) {
    try {
        // With etcd the import is no host: it runs beside this host's daemon, which is the one
        // registered under the host's name (see EtcdStoreOptions::register_host).
        std::unique_ptr<Store> store;
        if (cfg.store.backend == StoreConfig::Backend::etcd) {
            EtcdStoreOptions o = etcd_options(cfg, false);
            o.register_host = false;
            store = open_etcd_store(o);
        } else {
            store = open_store(cfg, false);
        }
        const ImportReport report = import_seed_toml(*store, file);
        for (const auto& line : report.taken) std::cout << "taken: " << line << "\n";
        for (const auto& line : report.refused) std::cout << "refused: " << line << "\n";
        for (const auto& line : report.notes) std::cout << "note: " << line << "\n";
        std::cout << report.taken.size() << " sites imported, " << report.refused.size() << " refused\n";
        return report.refused.empty() ? 0 : kRuntimeFailure;
    } catch (const std::runtime_error& e) {
        std::cerr << "sitesfs: " << e.what() << "\n";
        return kRuntimeFailure;
    }
}

int run_copy_store(const Config& cfg, const std::string& direction) {
    try {
        const MigrationReport report = direction == "file-to-etcd" ? copy_file_store_to_etcd(cfg.state_dir, etcd_options(cfg, false))
                                                                   : copy_etcd_to_file_store(etcd_options(cfg, true), cfg.state_dir);
        for (const auto& line : report.copied) std::cout << "copied: " << line << "\n";
        for (const auto& line : report.refused) std::cout << "refused: " << line << "\n";
        std::cout << report.copied.size() << " sites copied, " << report.refused.size() << " refused\n";
        return report.refused.empty() ? 0 : kRuntimeFailure;
    } catch (const std::runtime_error& e) {
        std::cerr << "sitesfs: " << e.what() << "\n";
        return kRuntimeFailure;
    }
}

int run_forget_host(const Config& cfg, const std::string& host) {
    try {
        if (const std::string why = forget_etcd_host(etcd_options(cfg, true), host); !why.empty()) {
            std::cerr << "sitesfs: cannot forget host '" << host << "': " << why << "\n";
            return kRuntimeFailure;
        }
        std::cout << "forgot host " << host << "\n";
        return 0;
    } catch (const std::runtime_error& e) {
        std::cerr << "sitesfs: " << e.what() << "\n";
        return kRuntimeFailure;
    }
}

// A secret shorter than this is refused: HMAC keys and GitLab tokens are guessed offline from one
// captured delivery when they are short.
constexpr size_t kMinWebhookSecret = 16;

// [webhook] listen: the push listener, on the read-write instance that deploys. Null when off.
std::unique_ptr<webhook::Listener> make_webhook(const Config& cfg, Store& store, bool deploys) {
    const WebhookConfig& w = cfg.webhook;
    if (w.listen.empty()) return nullptr;
    if (!deploys) {
        spdlog::info("webhook: not listening: this instance does not deploy (read-only or --no-reconcile)");
        return nullptr;
    }
    hooks::SecretBuffer secret = hooks::resolve_secret(cfg.hooks.keys, w.secret_ref, "webhook secret");
    if (secret.size() < kMinWebhookSecret)
        throw webhook::ListenerError("webhook secret " + w.secret_ref + ": shorter than " +
                                     std::to_string(kMinWebhookSecret) + " bytes; make one with `openssl rand -hex 32`");
    webhook::ListenerOptions o;
    o.listen = w.listen;
    o.limits.max_body = w.max_body;
    o.rate = w.rate;
    o.burst = w.burst;
    o.policy = write_policy(cfg);
    return std::make_unique<webhook::Listener>(store, std::move(o), std::move(secret));
}

int serve(const CommandLine& cl, const Config& cfg, const std::string& mountpoint, Startup& startup) {
    // First: a wedged mount's killed daemon still holds the state dir's lock until the mount is
    // aborted.
    if (std::string why = clear_stale_mount(mountpoint); !why.empty()) return startup.fail(kRuntimeFailure, why);
    std::unique_ptr<Store> store;
    try {
        store = open_store(cfg, cl.read_only);
    } catch (const std::runtime_error& e) {
        return startup.fail(kRuntimeFailure, e.what());
    }

    // Deploying is the read-write instance's job; a read-only mount only watches.
    std::unique_ptr<hooks::Reconciler> reconciler;
    if (!cl.read_only && !cl.no_reconcile) {
        try {
            hooks::init_git();
            reconciler = std::make_unique<hooks::Reconciler>(*store, cfg.hooks);
        } catch (const std::exception& e) {
            return startup.fail(kRuntimeFailure, e.what());
        }
    }
    std::unique_ptr<webhook::Listener> listener;
    try {
        listener = make_webhook(cfg, *store, reconciler != nullptr);
    } catch (const std::runtime_error& e) {
        return startup.fail(kRuntimeFailure, e.what());
    }
    const auto metrics = [&] {
        return site_metrics(*store) + (reconciler ? reconciler->metrics() : std::string()) +
               (listener ? listener->metrics() : std::string());
    };

    fs::FsOptions options = cfg.filesystem;
    options.read_only = cl.read_only;
    options.export_globals = {cfg.data_dir.string(), cfg.hooks.proxy.file.string(), cfg.hooks.deploy_log.string()};
    options.metrics = metrics;
    fs::Filesystem filesystem(*store, options);

    // Declared before the session: its thread may sit in a statfs of the mount, which returns only
    // once the session's destructor has unmounted.
    Notifier notifier(
        mountpoint, [&startup] { startup.ready(); }, [&] { return summary(*store, mountpoint); },
        [&] {
            if (cfg.metrics_textfile.empty()) return;
            try {
                // node_exporter's textfile collector reads whatever is there: never half a file.
                replace_file(cfg.metrics_textfile, metrics(), 0644);
            } catch (const std::exception& e) {
                spdlog::warn("metrics textfile: {}", e.what());
            }
        });
    std::vector<std::string> mount_options = cl.mount_flags;
    if (cl.read_only) mount_options.emplace_back("ro");
    if (cl.allow_other) mount_options.emplace_back("allow_other");
    Session session(filesystem, mountpoint, mount_options);
    if (!session.error().empty()) return startup.fail(kRuntimeFailure, session.error());
    filesystem.start(session.get());
    if (reconciler) reconciler->start();
    if (listener) listener->start();
    spdlog::info("serving {} sites at {} ({}, state in {})", store->site_count(), mountpoint,
                 cl.read_only ? "read-only" : "read-write", cfg.state_dir.string());
    notifier.start();

    const int rc = session.serve();
    notifier.stopping();
    spdlog::info("unmounting {}", mountpoint);
    if (listener) listener->stop();  // before the reconciler, which its refreshes reach through the store
    if (reconciler) reconciler->stop();
    filesystem.stop();
    return rc == 0 ? 0 : kRuntimeFailure;
}

// glibc gives each thread that allocates its own arena, up to 8 per CPU, and keeps what each one
// grew to. The daemon's threads (FUSE workers, the reconciler's, gRPC's pollers when the store is
// etcd) allocate little and mostly wait, so arenas only hold freed memory: with etcd and 10,000
// sites they were 19 MiB of the daemon's resident set. One arena per CPU keeps contention where it
// matters (FUSE workers running at once) and that memory in check. An operator's MALLOC_ARENA_MAX
// is the tunable glibc documents, and wins.
void cap_malloc_arenas() {
    if (getenv("MALLOC_ARENA_MAX")) return;
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    mallopt(M_ARENA_MAX, static_cast<int>(std::clamp(cpus, 1L, 8L)));
}

int run(int argc, char** argv) {
    CommandLine cl;
    try {
        cl = parse_command_line(argc, argv);
    } catch (const UsageError& e) {
        return usage_error(e.what());
    }
    if (cl.help) return std::cout << usage_text(), 0;
    if (cl.version) return std::cout << "sitesfs " << SITESFS_VERSION << "\n", 0;

    Config cfg;
    try {
        cfg = load_config(cl.config_file ? std::optional<std::filesystem::path>(*cl.config_file) : std::nullopt);
    } catch (const ConfigError& e) {
        std::cerr << "sitesfs: " << e.what() << "\n";
        return kUsageError;
    }
    if (cl.state_dir) cfg.state_dir = std::filesystem::absolute(*cl.state_dir);
    if (cl.allow_local_repos) cfg.allow_local_repos = true;
    cfg.hooks.data_dir = cfg.data_dir;
    cfg.hooks.state_dir = cfg.state_dir;
    cfg.hooks.policy.allow_local_repos = cfg.allow_local_repos;
    cfg.hooks.deploy_log = cfg.state_dir / "deploy.log";
    cfg.hooks.known_hosts = cfg.state_dir / "known_hosts";
    // libgit2 reads HOME once, at init, and refuses every SSH connection without one (even with a
    // host key callback); systemd services have none. Nothing is read from it.
    if (const char* home = getenv("HOME"); !home || !*home) setenv("HOME", cfg.state_dir.c_str(), 1);
    if (cl.log_level) {
        // The config file's log_level was checked by load_config; the option takes the same values
        // (spdlog would also take "warning", "err" and "critical", and read anything else as off).
        const ConfigKey& key = config_key("log_level");
        if (std::find(key.choices.begin(), key.choices.end(), *cl.log_level) == key.choices.end())
            return usage_error("unknown log level '" + *cl.log_level + "' (" + key.accepts() + ")");
        cfg.log_level = *cl.log_level;
    }
    const auto level = spdlog::level::from_str(cfg.log_level);
    setup_logging(level, !cl.foreground && !cl.import_file && !cl.copy_store && !cl.forget_host);

    if (cl.import_file) return run_import(cfg, *cl.import_file);
    if (cl.copy_store) return run_copy_store(cfg, *cl.copy_store);
    if (cl.forget_host) return run_forget_host(cfg, *cl.forget_host);
    if (cl.mountpoint.empty()) return usage_error("missing MOUNTPOINT");
    std::string mountpoint = std::filesystem::absolute(cl.mountpoint).lexically_normal().string();
    if (mountpoint.size() > 1 && mountpoint.ends_with('/')) mountpoint.pop_back();  // as /proc/self/mountinfo names it
    Startup startup(cl.foreground);
    return serve(cl, cfg, mountpoint, startup);
}

}  // namespace
}  // namespace sitesfs::mount

int main(int argc, char** argv) {
    sitesfs::mount::cap_malloc_arenas();
    return sitesfs::mount::run(argc, argv);
}
