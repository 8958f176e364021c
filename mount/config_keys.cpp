#include "mount/config_keys.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "common/text.hpp"
#include "mount/config.hpp"
#include "schemas/validators.hpp"
#include "webhook/listener.hpp"

namespace sitesfs::mount {

namespace {

using K = KeyType;

// The largest uid or gid: (uid_t)-1 means "no change" to chown(2) and is no one's id.
constexpr double kMaxId = 4294967294.0;

std::string not_empty(const KeyValue& v) { return v.text.empty() ? "must not be empty" : ""; }

std::string webhook_listen(const KeyValue& v) {
    const std::string why = webhook::listen_address_problem(v.text);
    return why.empty() ? "" : "\"" + printable(v.text) + "\": " + why;
}

// PROVIDER:NAME by the rule a site's deploy_key_ref follows.
std::string secret_ref(const KeyValue& v) {
    const Checked c = check_deploy_key_ref(v.text, {});
    return v.text.empty() ? "must not be empty" : c.ok ? "" : c.reason;
}

std::string url_path(const KeyValue& v) {
    if (!v.text.starts_with("/") || v.text.find_first_of(" \t\r\n") != std::string::npos)
        return "must start with '/' and hold no whitespace";
    return "";
}

// The rules of a site's hosts value, which names hosts and labels.
std::string host_name(const KeyValue& v) {
    const std::string why = host_name_problem(v.text);
    return why.empty() ? "" : "\"" + printable(v.text) + "\": " + why;
}

std::string labels(const KeyValue& v) {
    for (const auto& l : v.list)
        if (const std::string why = host_label_problem(l); !why.empty()) return "label \"" + printable(l) + "\": " + why;
    return "";
}

std::string endpoints(const KeyValue& v) {
    if (v.list.empty()) return "must name at least one member";
    for (const auto& e : v.list)
        if (!(e.starts_with("http://") || e.starts_with("https://")) || e.find_first_of(" \t\r\n,") != std::string::npos)
            return "\"" + printable(e) + "\" is not an http:// or https:// URL";
    return "";
}

std::string key_prefix(const KeyValue& v) {
    if (!v.text.starts_with("/") || !v.text.ends_with("/") || v.text.find_first_of(" \t\r\n") != std::string::npos)
        return "must start and end with '/' and hold no whitespace";
    return "";
}

// The only placeholders of a builder's command are {src} and {out}: a brace anywhere else is a
// typo ("{source}", "{out"), which must not reach the build as a literal argument.
std::string placeholders(const KeyValue& v) {
    for (const std::string& arg : v.list) {
        std::string rest = arg;
        for (const std::string_view p : {"{src}", "{out}"})
            for (size_t at; (at = rest.find(p)) != std::string::npos;) rest.erase(at, p.size());
        if (rest.find_first_of("{}") != std::string::npos)
            return "\"" + printable(arg) + "\": the only placeholders are {src} and {out}, and no other { or } may "
                   "appear";
    }
    return "";
}

bool env_name(std::string_view n) {
    const auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
    if (n.empty() || !alpha(n[0])) return false;
    for (const char c : n)
        if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
    return true;
}

std::string env_entries(const KeyValue& v) {
    for (const std::string& e : v.list)
        if (const size_t eq = e.find('='); eq == std::string::npos || !env_name(std::string_view(e).substr(0, eq)))
            return "\"" + printable(e) + "\" is not NAME=VALUE with NAME matching [A-Za-z_][A-Za-z0-9_]*";
    return "";
}

// Limits in the units people think in (seconds, MiB) become the sandbox's (ms, bytes).
constexpr uint64_t kMiB = 1 << 20;
// 128 TiB, all of x86-64's user address space: a larger RLIMIT_AS means nothing, and MiB of more
// would overflow the byte count.
constexpr double kMaxMemoryMiB = 134217728;

hooks::ReloadMode reload_mode(const std::string& s) {
    if (s == "command") return hooks::ReloadMode::command;
    if (s == "none") return hooks::ReloadMode::none;
    return hooks::ReloadMode::systemd;
}

const std::vector<ConfigKey> kKeys = {
    // Top level
    {.name = "state_dir", .type = K::path, .fallback = R"("/var/lib/sitesfs")",
     .help = "--state-dir; desired state (see store.md)",
     .apply = [](Config& c, const KeyValue& v) { c.state_dir = v.text; }},
    {.name = "data_dir", .type = K::path, .fallback = R"("/var/lib/sites")",
     .help = "per-site repositories and releases (reconciler)",
     .apply = [](Config& c, const KeyValue& v) { c.data_dir = v.text; }},
    {.name = "allow_local_repos", .type = K::boolean, .fallback = "false",
     .help = "--allow-local-repos; file:// and absolute paths as repo",
     .apply = [](Config& c, const KeyValue& v) { c.allow_local_repos = v.boolean; }},
    {.name = "log_level", .type = K::string, .fallback = R"("info")", .help = "--log-level",
     .choices = {"trace", "debug", "info", "warn", "error", "off"},
     .apply = [](Config& c, const KeyValue& v) { c.log_level = v.text; }},

    // [proxy]
    {.name = "proxy.file", .type = K::path, .fallback = R"("/etc/caddy/sites.conf")",
     .help = "the generated proxy config (sitesfs owns this file)",
     .apply = [](Config& c, const KeyValue& v) { c.hooks.proxy.file = v.text; }},
    {.name = "proxy.main_config", .type = K::path,
     .help = "the Caddyfile that imports `file`; when set, a candidate is validated in it (its `import FILE` line "
             "pointed at the candidate)",
     .example = R"("/etc/caddy/Caddyfile")",
     .apply = [](Config& c, const KeyValue& v) { c.hooks.proxy.main_config = v.text; }},
    {.name = "proxy.caddy", .type = K::string, .fallback = R"("caddy")",
     .help = "the caddy binary (looked up in PATH)", .check = not_empty,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.proxy.caddy = v.text; }},
    {.name = "proxy.scheme", .type = K::string, .fallback = R"("")",
     .help = "site addresses: \"\" is Caddy's automatic HTTPS", .choices = {"", "http", "https"},
     .apply = [](Config& c, const KeyValue& v) { c.hooks.proxy.scheme = v.text; }},
    {.name = "proxy.port", .type = K::integer, .fallback = "0",
     .help = "the port of the site addresses; 0: the scheme's default", .min = 0, .max = 65535,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.proxy.port = static_cast<int>(v.integer); }},
    {.name = "proxy.validate_timeout", .type = K::seconds, .fallback = "30",
     .help = "seconds for one `caddy validate`", .min = kMinSeconds, .max = kMaxSeconds,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.proxy.timeout = v.duration; }},

    // [reload]
    {.name = "reload.mode", .type = K::string, .fallback = R"("systemd")",
     .help = "how Caddy is reloaded: over D-Bus (ReloadUnit of `unit`), by running `command`, or not at all",
     .choices = {"systemd", "command", "none"},
     .apply = [](Config& c, const KeyValue& v) { c.hooks.reload.mode = reload_mode(v.text); }},
    {.name = "reload.unit", .type = K::string, .fallback = R"("caddy.service")",
     .help = "the unit reloaded in systemd mode", .check = not_empty,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.reload.unit = v.text; }},
    {.name = "reload.command", .type = K::argv,
     .help = "command mode, where it is needed: argv, no shell",
     .example = R"(["caddy", "reload", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"])",
     .apply = [](Config& c, const KeyValue& v) { c.hooks.reload.command = v.list; }},
    {.name = "reload.timeout", .type = K::seconds, .fallback = "30",
     .help = "seconds for the reload, in systemd mode until JobRemoved", .min = kMinSeconds, .max = kMaxSeconds,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.reload.timeout = v.duration; }},

    // [health]
    {.name = "health.enabled", .type = K::boolean, .fallback = "true",
     .help = "check every deploy that changed something",
     .apply = [](Config& c, const KeyValue& v) { c.hooks.health.enabled = v.boolean; }},
    {.name = "health.address", .type = K::string, .fallback = R"("127.0.0.1:2080")",
     .help = "loopback IP:PORT or [IPv6]:PORT of the health listener sitesfs renders beside each site block (with "
             "scheme = \"http\" on this same port: the public listener)",
     .apply = [](Config& c, const KeyValue& v) { c.hooks.health.address = v.text; }},
    {.name = "health.tls_address", .type = K::string,
     .help = "HTTPS modes only, 127.0.0.1:[proxy] port (or 443); the proxy's HTTPS listener, for the `tls:` lines "
             "of `status`",
     .example = R"("127.0.0.1:443")", .derived = true,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.health.tls_address = v.text; }},
    {.name = "health.path", .type = K::string, .fallback = R"("/")",
     .help = "what a site whose `check` is empty fetches; 2xx after the site's own redirects on its domains passes",
     .check = url_path, .apply = [](Config& c, const KeyValue& v) { c.hooks.health.path = v.text; }},
    {.name = "health.timeout", .type = K::seconds, .fallback = "10",
     .help = "seconds for one check, redirects included", .min = kMinSeconds, .max = kMaxSeconds,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.health.timeout = v.duration; }},

    // [reconcile]
    {.name = "reconcile.workers", .type = K::integer, .fallback = "32",
     .help = "sites deployed in parallel: runs mostly wait, and those that reach the proxy together share one "
             "validate and one reload",
     .min = 1, .max = 64,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.workers = static_cast<unsigned>(v.integer); }},
    {.name = "reconcile.poll_interval", .type = K::seconds, .fallback = "60",
     .help = "seconds between checks of each followed branch; 0: never", .min = 0, .max = kMaxSeconds,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.poll_interval = v.duration; }},
    {.name = "reconcile.keep_releases", .type = K::integer, .fallback = "3",
     .help = "releases kept per site (current included) for rollback", .min = 1, .max = 1000,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.keep_releases = static_cast<unsigned>(v.integer); }},
    {.name = "reconcile.max_files", .type = K::integer, .fallback = "100000",
     .help = "a release with more files and directories fails the deploy", .min = 1,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.limits.max_files = static_cast<uint64_t>(v.integer); }},
    {.name = "reconcile.max_bytes", .type = K::integer, .fallback = "1073741824",
     .help = "a release with more bytes fails the deploy", .min = 1,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.limits.max_bytes = static_cast<uint64_t>(v.integer); }},

    // [git]
    {.name = "git.connect_timeout", .type = K::seconds, .fallback = "30",
     .help = "seconds for the TCP connection to be made", .min = kMinSeconds, .max = kMaxSeconds,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.git.connect = v.duration; }},
    {.name = "git.io_timeout", .type = K::seconds, .fallback = "60",
     .help = "seconds the server may send nothing (or take nothing) before the fetch fails \"timed out\"; see "
             "reliability.md, Stalled remotes",
     .min = kMinSeconds, .max = kMaxSeconds,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.git.io = v.duration; }},

    // [keys]
    {.name = "keys.dir", .type = K::path,
     .help = "file:NAME reads DIR/NAME, e.g. \"/run/agenix\", \"/run/credentials/sitesfs.service\"",
     .example = R"("/run/secrets")",
     .apply = [](Config& c, const KeyValue& v) { c.hooks.keys.keys_dir = v.text; }},
    {.name = "keys.command", .type = K::argv,
     .help = "cmd:NAME runs COMMAND... NAME (argv, no shell); stdout is the key", .example = R"(["dota", "get"])",
     .apply = [](Config& c, const KeyValue& v) { c.hooks.keys.command = v.list; }},
    {.name = "keys.command_timeout", .type = K::seconds, .fallback = "10",
     .help = "seconds the key command may take", .min = kMinSeconds, .max = kMaxSeconds,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.keys.command_timeout = v.duration; }},

    // [ssh]
    {.name = "ssh.host_key_policy", .type = K::string, .fallback = R"("accept-new")",
     .help = "accept-new trusts and records a host seen for the first time, strict only the hosts pinned below",
     .choices = {"accept-new", "strict"},
     .apply =
         [](Config& c, const KeyValue& v) {
             c.hooks.host_key_policy =
                 v.text == "strict" ? hooks::HostKeyPolicy::Strict : hooks::HostKeyPolicy::AcceptNew;
         }},
    {.name = "ssh.pins", .type = K::pins, .help = "\"HOST:PORT\" = \"SHA256:...\" (what `ssh-keygen -lf` prints)",
     .apply = [](Config& c, const KeyValue& v) { c.hooks.host_key_pins = v.pins; }},

    // [metrics]
    {.name = "metrics.textfile", .type = K::path,
     .help = "also write /sites/.metrics here (atomically, every 10 s) for node_exporter's textfile collector",
     .example = R"("/var/lib/node_exporter/sitesfs.prom")",
     .apply = [](Config& c, const KeyValue& v) { c.metrics_textfile = v.text; }},

    // [store]
    {.name = "store.backend", .type = K::string, .fallback = R"("file")",
     .help = "file: the state dir, one host; etcd: one desired state for many hosts (cluster.md)",
     .choices = {"file", "etcd"},
     .apply =
         [](Config& c, const KeyValue& v) {
             c.store.backend = v.text == "etcd" ? StoreConfig::Backend::etcd : StoreConfig::Backend::file;
         }},
    {.name = "store.host", .type = K::string,
     .help = "this host's name in the cluster (status's host lines, placement)", .example = R"("web1")",
     .derived = true, .check = host_name,
     .apply = [](Config& c, const KeyValue& v) { c.store.host = v.text; }},
    {.name = "store.labels", .type = K::strings, .fallback = "[]",
     .help = "this host's labels: a site whose hosts lists label:X is placed here when X is one", .check = labels,
     .apply = [](Config& c, const KeyValue& v) { c.store.labels = v.list; }},
    {.name = "store.endpoints", .type = K::strings, .fallback = R"(["http://127.0.0.1:2379"])",
     .help = "etcd: the members' client URLs (http:// or https://)", .check = endpoints,
     .apply = [](Config& c, const KeyValue& v) { c.store.endpoints = v.list; }},
    {.name = "store.prefix", .type = K::string, .fallback = R"("/sitesfs/")",
     .help = "etcd: every key sitesfs keeps starts with it; clusters of hosts that share nothing use different ones",
     .check = key_prefix, .apply = [](Config& c, const KeyValue& v) { c.store.prefix = v.text; }},
    {.name = "store.ca_file", .type = K::path, .help = "etcd: the CA that signed the members' certificates (TLS)",
     .example = R"("/etc/sitesfs/etcd-ca.pem")", .apply = [](Config& c, const KeyValue& v) { c.store.ca_file = v.text; }},
    {.name = "store.cert_file", .type = K::path, .help = "etcd: this host's client certificate (mutual TLS)",
     .example = R"("/run/credentials/sitesfs.service/etcd-client.pem")",
     .apply = [](Config& c, const KeyValue& v) { c.store.cert_file = v.text; }},
    {.name = "store.key_file", .type = K::path, .help = "etcd: the client certificate's key",
     .example = R"("/run/credentials/sitesfs.service/etcd-client.key")",
     .apply = [](Config& c, const KeyValue& v) { c.store.key_file = v.text; }},
    {.name = "store.user", .type = K::string, .help = "etcd: the user sitesfs authenticates as",
     .example = R"("sitesfs")", .apply = [](Config& c, const KeyValue& v) { c.store.user = v.text; }},
    {.name = "store.password_ref", .type = K::string,
     .help = "etcd: PROVIDER:NAME of the user's password, resolved by [keys] like a deploy key", .example = R"("file:etcd")",
     .apply = [](Config& c, const KeyValue& v) { c.store.password_ref = v.text; }},
    {.name = "store.timeout", .type = K::seconds, .fallback = "5",
     .help = "etcd: seconds a call may take; a write not answered by then fails ETIMEDOUT (cluster.md)", .min = 0.1,
     .max = 300, .apply = [](Config& c, const KeyValue& v) { c.store.timeout = v.duration; }},
    {.name = "store.lease_ttl", .type = K::integer, .fallback = "10",
     .help = "etcd: seconds after this host stops answering that the others show it gone", .min = 2, .max = 3600,
     .apply = [](Config& c, const KeyValue& v) { c.store.lease_ttl = v.integer; }},

    // [build]
    {.name = "build.jobs", .type = K::integer, .fallback = "1",
     .help = "builds run at once, apart from the reconcile workers: a build takes cores and memory, a deploy "
             "mostly waits",
     .min = 1, .max = 64,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.build.jobs = static_cast<unsigned>(v.integer); }},
    // No default: a user name that does not exist on the host would fail every config.
    {.name = "build.user", .type = K::user,
     .help = "builds run as this uid and its primary group; an unprivileged user of its own, e.g. `adduser "
             "--system --group sitesfs-build`; needed by any builder",
     .min = 1, .max = kMaxId, .example = R"("sitesfs-build")",
     .apply = [](Config& c, const KeyValue& v) { c.hooks.build.uid = static_cast<uid_t>(v.integer); }},
    {.name = "build.dir", .type = K::path,
     .help = "where builds run, one scratch dir a site, all of it sitesfs's (emptied at start); a tmpfs of its own "
             "(`size=` bounds what a build may write) spares the disk two copies of every file; unset: under each "
             "site's releases/ in data_dir",
     .example = R"("/run/sitesfs-builds")",
     .apply = [](Config& c, const KeyValue& v) { c.hooks.build.dir = v.text; }},
    {.name = "builders", .type = K::builders,
     .help = "a builder, named by a site's `build` field; NAME matches 1-32 of a-z, 0-9, '_', '-', starting with a letter or digit",
     .example = "hugo",
     .apply = [](Config& c, const KeyValue& v) { c.hooks.build.builders = v.builders; }},

    // [notify]
    {.name = "notify.command", .type = K::argv,
     .help = "run when a deploy fails or goes live on another commit, once `status` shows it: argv, no shell, looked "
             "up in PATH; SITE, STATE, COMMIT, PREVIOUS, ERROR, HOST and PATH are its whole environment",
     .example = R"(["/usr/local/bin/sitesfs-notify"])",
     .apply = [](Config& c, const KeyValue& v) { c.hooks.notify.command = v.list; }},
    {.name = "notify.timeout", .type = K::seconds, .fallback = "30",
     .help = "seconds one notification may take, then it is killed with its process group", .min = kMinSeconds,
     .max = 3600, .apply = [](Config& c, const KeyValue& v) { c.hooks.notify.timeout = v.duration; }},
    {.name = "notify.jobs", .type = K::integer, .fallback = "4",
     .help = "notifications run at once; up to 64 more wait, beyond that the oldest waiting one is dropped",
     .min = 1, .max = 16,
     .apply = [](Config& c, const KeyValue& v) { c.hooks.notify.jobs = static_cast<unsigned>(v.integer); }},

    // [webhook]
    {.name = "webhook.listen", .type = K::string,
     .help = "where the push webhook listener takes requests, for Caddy to proxy to: a loopback IP:PORT or "
             "unix:/PATH (a socket of mode 0660); unset: no listener",
     .example = R"("127.0.0.1:9418")", .check = webhook_listen,
     .apply = [](Config& c, const KeyValue& v) { c.webhook.listen = v.text; }},
    {.name = "webhook.secret_ref", .type = K::string,
     .help = "PROVIDER:NAME of the secret the senders sign with (GitLab: the token), resolved by [keys]; needed "
             "with listen; at least 16 bytes",
     .example = R"("file:webhook")", .check = secret_ref,
     .apply = [](Config& c, const KeyValue& v) { c.webhook.secret_ref = v.text; }},
    {.name = "webhook.max_body", .type = K::integer, .fallback = "1048576",
     .help = "the largest payload in bytes; a larger one is answered 413 unread", .min = 1024, .max = 26214400,
     .apply = [](Config& c, const KeyValue& v) { c.webhook.max_body = static_cast<size_t>(v.integer); }},
    {.name = "webhook.rate", .type = K::integer, .fallback = "10",
     .help = "requests answered per second, on average; more are answered 429", .min = 1, .max = 10000,
     .apply = [](Config& c, const KeyValue& v) { c.webhook.rate = static_cast<unsigned>(v.integer); }},
    {.name = "webhook.burst", .type = K::integer, .fallback = "20",
     .help = "requests answered at once after a quiet spell", .min = 1, .max = 10000,
     .apply = [](Config& c, const KeyValue& v) { c.webhook.burst = static_cast<unsigned>(v.integer); }},

    // [filesystem]
    {.name = "filesystem.owner", .type = K::user, .fallback = "0", .help = "user name or uid of every file",
     .min = 0, .max = kMaxId,
     .apply = [](Config& c, const KeyValue& v) { c.filesystem.uid = static_cast<uid_t>(v.integer); }},
    {.name = "filesystem.group", .type = K::group, .fallback = "0", .help = "group name or gid", .min = 0,
     .max = kMaxId, .apply = [](Config& c, const KeyValue& v) { c.filesystem.gid = static_cast<gid_t>(v.integer); }},
    {.name = "filesystem.file_mode", .type = K::mode, .fallback = R"("0644")",
     .help = "read-only files drop the write bits",
     .apply = [](Config& c, const KeyValue& v) { c.filesystem.file_mode = static_cast<mode_t>(v.integer); }},
    {.name = "filesystem.dir_mode", .type = K::mode, .fallback = R"("0755")", .help = "site directories and the root",
     .apply = [](Config& c, const KeyValue& v) { c.filesystem.dir_mode = static_cast<mode_t>(v.integer); }},
    {.name = "filesystem.cache_timeout", .type = K::integer, .fallback = "86400",
     .help = "whole seconds the kernel may cache entries and attributes", .min = 0, .max = kMaxSeconds,
     .apply = [](Config& c, const KeyValue& v) { c.filesystem.cache_timeout = static_cast<double>(v.integer); }},
    {.name = "filesystem.max_temp_file_bytes", .type = K::integer, .fallback = "1048576",
     .help = "the largest editor's temporary file", .min = 1,
     .apply = [](Config& c, const KeyValue& v) { c.filesystem.max_temp_bytes = static_cast<size_t>(v.integer); }},
    {.name = "filesystem.max_temp_files_per_site", .type = K::integer, .fallback = "64",
     .help = "temporary files per site directory", .min = 1,
     .apply = [](Config& c, const KeyValue& v) { c.filesystem.max_temps_per_site = static_cast<size_t>(v.integer); }},
    {.name = "filesystem.wait_timeout", .type = K::seconds, .fallback = "300",
     .help = "seconds a read of SITE/wait may wait, then ETIMEDOUT", .min = kMinSeconds, .max = kMaxSeconds,
     .apply = [](Config& c, const KeyValue& v) { c.filesystem.wait_timeout = v.duration; }},
};

const std::vector<BuilderField> kBuilderFields = {
    {{.name = "command", .type = K::argv,
      .help = "argv, no shell, run in the sandbox as [build] user; {src} is the checked-out tree, {out} the "
              "directory the release is taken from",
      .example = R"(["hugo", "--minify", "--source", "{src}", "--destination", "{out}"])", .check = placeholders},
     [](hooks::Builder& b, const KeyValue& v) { b.command = v.list; }},
    {{.name = "network", .type = K::boolean, .fallback = "false",
      .help = "false: only loopback, and not the host's; true for builds that download (npm ci, Hugo modules)"},
     [](hooks::Builder& b, const KeyValue& v) { b.network = v.boolean; }},
    {{.name = "timeout", .type = K::seconds, .fallback = "600", .help = "seconds, then the build is killed",
      .min = 1, .max = 86400},
     [](hooks::Builder& b, const KeyValue& v) { b.limits.time = v.duration; }},
    {{.name = "memory", .type = K::integer, .fallback = "2048",
      .help = "RLIMIT_AS: MiB of address space per process; Go builders such as Hugo need 1024 or more",
      .min = 256, .max = kMaxMemoryMiB},
     [](hooks::Builder& b, const KeyValue& v) { b.limits.memory_bytes = static_cast<uint64_t>(v.integer) * kMiB; }},
    {{.name = "processes", .type = K::integer, .fallback = "256",
      .help = "RLIMIT_NPROC: processes of the build user at once, counted across all its builds", .min = 16,
      .max = 65536},
     [](hooks::Builder& b, const KeyValue& v) { b.limits.max_processes = static_cast<uint64_t>(v.integer); }},
    {{.name = "env", .type = K::strings, .fallback = "[]",
      .help = "\"NAME=VALUE\": the build's whole environment besides PATH and HOME; nothing of the daemon's passes, "
              "and every host user can read it (ps)",
      .check = env_entries},
     [](hooks::Builder& b, const KeyValue& v) {
         for (const std::string& e : v.list) {
             const size_t eq = e.find('=');
             b.env.emplace_back(e.substr(0, eq), e.substr(eq + 1));
         }
     }},
};

const std::vector<ConfigSection> kSections = {
    {"proxy", ""},
    {"reload", ""},
    {"health", "operations.md, \"Health checks\""},
    {"reconcile", ""},
    {"git", "every fetch and poll, all transports (HTTPS, SSH)"},
    {"keys", "deploy_key_ref providers (docs/private-repos.md)"},
    {"ssh", ""},
    {"metrics", ""},
    {"store", "store.md, cluster.md"},
    {"build", "builds a site whose `build` field names a builder; builds.md"},
    {"notify", "a command told when a deploy fails or goes live; operations.md, Notifications"},
    {"webhook", "push webhooks from GitHub, Gitea, Forgejo and GitLab; webhooks.md"},
    {"filesystem", ""},
};

std::string number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    return buf;
}

std::string choice_list(const std::vector<std::string_view>& choices) {
    std::string out;
    for (size_t i = 0; i < choices.size(); ++i) {
        if (i > 0) out += i + 1 == choices.size() ? " or " : ", ";
        out += "\"" + std::string(choices[i]) + "\"";
    }
    return out;
}

std::string bounds(double min, double max) {
    return std::isinf(max) ? number(min) + " or more" : number(min) + " to " + number(max);
}

constexpr std::string_view kBegin =
    "<!-- BEGIN config keys: generated from mount/config_keys.cpp by `cmake --build build -t config-doc`; do not "
    "edit -->";
constexpr std::string_view kEnd = "<!-- END config keys -->";

// "KEY = VALUE" padded to the comment column, then the comment wrapped into lines of `width`.
constexpr size_t kCommentColumn = 40;
constexpr size_t kWidth = 118;

void commented(std::string& out, const std::string& left, const std::string& comment) {
    if (comment.empty()) {
        out += left + "\n";
        return;
    }
    std::string line = left;
    line += std::string(left.size() + 2 <= kCommentColumn ? kCommentColumn - left.size() : 2, ' ');
    const size_t indent = kCommentColumn;
    line += "# ";
    bool first_word = true;
    size_t at = 0;
    while (at < comment.size()) {
        size_t end = comment.find(' ', at);
        if (end == std::string::npos) end = comment.size();
        const std::string word = comment.substr(at, end - at);
        if (!first_word && line.size() + 1 + word.size() > kWidth) {
            out += line + "\n";
            line = std::string(indent, ' ') + "# " + word;
        } else {
            line += (first_word ? "" : " ") + word;
        }
        first_word = false;
        at = end + 1;
    }
    out += line + "\n";
}

}  // namespace

std::string_view ConfigKey::section() const {
    const size_t dot = name.find('.');
    return dot == std::string_view::npos ? std::string_view() : name.substr(0, dot);
}

std::string_view ConfigKey::key() const {
    const size_t dot = name.find('.');
    return dot == std::string_view::npos ? name : name.substr(dot + 1);
}

std::string ConfigKey::accepts() const {
    switch (type) {
        case K::boolean: return "true or false";
        case K::integer:
            return std::isinf(max) ? "a whole number, " + number(min) + " or more"
                                   : "a whole number from " + number(min) + " to " + number(max);
        case K::seconds: return "a number of seconds from " + number(min) + " to " + number(max);
        case K::string: return choices.empty() ? "a string" : "one of " + choice_list(choices);
        case K::path: return "an absolute path";
        case K::argv: return "a non-empty array of strings (argv, no shell)";
        case K::strings: return "an array of strings";
        case K::mode: return "an octal string from \"0000\" to \"0777\", like \"0644\"";
        case K::user: return "a user name, or a uid from " + number(min) + " to " + number(max);
        case K::group: return "a group name, or a gid from " + number(min) + " to " + number(max);
        case K::pins: return "a table of \"HOST:PORT\" = \"SHA256:...\" (ssh-keygen -lf prints it)";
        case K::builders: return "tables [builders.NAME], each with at least a command";
    }
    return "";
}

std::string ConfigKey::range() const {
    switch (type) {
        case K::integer:
        case K::seconds: return bounds(min, max);
        case K::user:
        case K::group: return "a name, or " + bounds(min, max);
        case K::string: return choices.empty() ? "" : choice_list(choices);
        default: return "";
    }
}

const std::vector<ConfigKey>& config_keys() { return kKeys; }
const std::vector<ConfigSection>& config_sections() { return kSections; }
const std::vector<BuilderField>& builder_fields() { return kBuilderFields; }

const ConfigKey& config_key(std::string_view name) {
    for (const ConfigKey& k : kKeys)
        if (k.name == name) return k;
    throw std::logic_error("no config key " + std::string(name));
}

std::string default_value(std::string_view name) {
    std::string v(config_key(name).fallback);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    return v;
}

std::string config_doc_block() {
    std::string out(kBegin);
    out += "\n```toml\n";
    std::string_view section;
    for (const ConfigKey& k : kKeys) {
        if (k.type == K::builders) {
            // Commented out like an unset key: a builder copied as it is would need [build] user.
            const std::string table = "[" + std::string(k.name) + "." + std::string(k.example) + "]";
            out += "\n";
            commented(out, "# " + table, std::string(k.help));
            for (const BuilderField& f : kBuilderFields) {
                std::string comment(f.spec.help);
                if (const std::string r = f.spec.range(); !r.empty()) comment += " (" + r + ")";
                const bool required = f.spec.fallback.empty();
                commented(out, "# " + std::string(f.spec.name) + " = " +
                                   std::string(required ? f.spec.example : f.spec.fallback),
                          (required ? "required; " : "") + comment);
            }
            continue;
        }
        if (k.section() != section) {
            section = k.section();
            std::string help;
            for (const ConfigSection& s : kSections)
                if (s.name == section) help = s.help;
            out += "\n";
            commented(out, "[" + std::string(section) + "]", help);
        }
        std::string comment(k.help);
        if (const std::string r = k.range(); !r.empty()) comment += " (" + r + ")";
        if (k.type == K::pins) {
            commented(out, "[" + std::string(k.name) + "]", comment);
        } else if (k.fallback.empty()) {
            comment = (k.derived ? "derived when unset: " : "unset by default; ") + comment;
            commented(out, "# " + std::string(k.key()) + " = " + std::string(k.example), comment);
        } else {
            commented(out, std::string(k.key()) + " = " + std::string(k.fallback), comment);
        }
    }
    out += "```\n";
    out += kEnd;
    return out;
}

std::string with_config_doc(const std::string& markdown) {
    const size_t begin = markdown.find(kBegin);
    const size_t end = markdown.find(kEnd);
    if (begin == std::string::npos || end == std::string::npos || end < begin)
        throw std::runtime_error("the markers of the generated key list are missing: \"" + std::string(kBegin) +
                                 "\" ... \"" + std::string(kEnd) + "\"");
    return markdown.substr(0, begin) + config_doc_block() + markdown.substr(end + kEnd.size());
}

}  // namespace sitesfs::mount
