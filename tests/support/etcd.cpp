#include "tests/support/etcd.hpp"

#include <sys/wait.h>

#include <csignal>
#include <cstring>
#include <random>
#include <stdexcept>

#include "tests/integration/mount_fixture.hpp"
#include "tests/support/caddy.hpp"

namespace sitesfs::it {

namespace {

void must(const Run& r, const std::string& what) {
    if (r.code != 0) throw std::runtime_error(what + ": " + describe(r));
}

// The number after `"NAME" : ` in etcdctl's `-w fields` output; -1 when absent.
long long field(const std::string& text, const std::string& name) {
    const std::string key = "\"" + name + "\" : ";
    const auto at = text.find(key);
    if (at == std::string::npos) return -1;
    try {
        return std::stoll(text.substr(at + key.size()));
    } catch (const std::exception&) {
        return -1;
    }
}

// The digits of a numeric field, for ids: etcd's member ids are uint64 and half of them do not
// fit a long long (field() would give -1 for them). "" when absent.
std::string id_field(const std::string& text, const std::string& name) {
    const std::string key = "\"" + name + "\" : ";
    const auto at = text.find(key);
    if (at == std::string::npos) return {};
    const auto from = at + key.size();
    return text.substr(from, text.find_first_not_of("0123456789", from) - from);
}

}  // namespace

EtcdCluster::EtcdCluster(const std::filesystem::path& dir, Options options)
    : dir_(std::filesystem::absolute(dir)), options_(options) {
    for (int i = 0; i < options_.members; ++i) {
        Member m;
        m.name = "m" + std::to_string(i);
        m.client_port = free_port();
        m.peer_port = free_port();
        members_.push_back(m);
    }
    if (options_.tls) make_certificates();
}

EtcdCluster::~EtcdCluster() { stop(); }

std::string EtcdCluster::password() const {
    // Fixed per dir is enough: only this test's cluster ever sees it.
    return "test-password-" + dir_.filename().string();
}

std::filesystem::path EtcdCluster::ca_file() const { return dir_ / "tls" / "ca.crt"; }
std::filesystem::path EtcdCluster::client_cert() const { return dir_ / "tls" / "client.crt"; }
std::filesystem::path EtcdCluster::client_key() const { return dir_ / "tls" / "client.key"; }
std::filesystem::path EtcdCluster::wrong_ca_file() const { return dir_ / "tls" / "wrong-ca.crt"; }
std::filesystem::path EtcdCluster::log_file(int member) const { return dir_ / (members_.at(member).name + ".log"); }

// P-256 keys: generated in milliseconds, where RSA takes a noticeable part of a test's time.
void EtcdCluster::make_certificates() {
    const auto tls = dir_ / "tls";
    std::filesystem::create_directories(tls);
    const auto self_signed = [&](const std::string& name, const std::string& cn) {
        must(run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", (tls / (name + ".key")).string(), "-out", (tls / (name + ".crt")).string(), "-days", "2",
                  "-subj", "/CN=" + cn}),
             "openssl req -x509 (" + name + ")");
    };
    const auto signed_by_ca = [&](const std::string& name, const std::string& cn, const std::string& extensions) {
        const auto ext = tls / (name + ".ext");
        spit(ext, extensions);
        must(run({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                  (tls / (name + ".key")).string(), "-out", (tls / (name + ".csr")).string(), "-subj", "/CN=" + cn}),
             "openssl req (" + name + ")");
        must(run({"openssl", "x509", "-req", "-in", (tls / (name + ".csr")).string(), "-CA", ca_file().string(),
                  "-CAkey", (tls / "ca.key").string(), "-CAcreateserial", "-out", (tls / (name + ".crt")).string(),
                  "-days", "2", "-extfile", ext.string()}),
             "openssl x509 -req (" + name + ")");
    };
    self_signed("ca", "sitesfs test CA");
    self_signed("wrong-ca", "sitesfs test CA that signed nothing");
    // Every member listens on 127.0.0.1, so one certificate with that IP serves them all.
    signed_by_ca("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
    signed_by_ca("client", "root", "extendedKeyUsage=clientAuth\n");
}

std::string EtcdCluster::endpoint(int member) const {
    return std::string(options_.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(members_.at(member).client_port);
}

std::vector<std::string> EtcdCluster::endpoints() const {
    std::vector<std::string> out;
    for (size_t i = 0; i < members_.size(); ++i) out.push_back(endpoint(static_cast<int>(i)));
    return out;
}

bool EtcdCluster::spawn(int i, std::string* why) {
    Member& m = members_.at(i);
    std::string cluster;
    for (const auto& other : members_)
        cluster += (cluster.empty() ? "" : ",") + other.name + "=http://127.0.0.1:" + std::to_string(other.peer_port);
    const std::string peer = "http://127.0.0.1:" + std::to_string(m.peer_port);
    std::vector<std::string> argv = {
        "etcd", "--name", m.name, "--data-dir", (dir_ / (m.name + ".etcd")).string(),
        "--listen-client-urls", endpoint(i), "--advertise-client-urls", endpoint(i),
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", cluster, "--initial-cluster-state", "new",
        "--initial-cluster-token", "sitesfs-test-" + dir_.filename().string(),
        // Failover within about a second, so that tests that kill members stay short.
        "--heartbeat-interval", "50", "--election-timeout", "500",
        // Nothing listens on the default metrics/debug ports; a system etcd may.
        "--listen-metrics-urls", "http://127.0.0.1:" + std::to_string(free_port()),
        "--logger", "zap", "--log-outputs", "stderr"};
    if (options_.tls) {
        const auto tls = dir_ / "tls";
        // Server TLS only: etcd 3.4 turns a --trusted-ca-file into a demand for client certificates.
        argv.insert(argv.end(), {"--cert-file", (tls / "server.crt").string(), "--key-file", (tls / "server.key").string()});
    }
    m.pid = spawn_logged(argv, log_file(i));
    if (m.pid < 0) {
        if (why) *why = "cannot start etcd: " + std::string(std::strerror(errno));
        return false;
    }
    return true;
}

std::string EtcdCluster::logs() const {
    std::string out;
    for (size_t i = 0; i < members_.size(); ++i)
        out += "\n--- " + members_[i].name + ".log ends with:\n" + tail_lines(slurp(log_file(static_cast<int>(i))), 15);
    return out;
}

bool EtcdCluster::wait_serving(const std::vector<int>& which, std::string* why) {
    std::vector<std::string> eps;
    for (int i : which) eps.push_back(endpoint(i));
    std::string last;
    const bool up = eventually(
        [&] {
            for (int i : which) {
                auto st = wait_child(members_[i].pid, Ms(0));
                if (st) {
                    last = members_[i].name + " exited (" + wait_status_text(*st) + ")";
                    members_[i].pid = -1;
                    return true;
                }
            }
            auto argv = etcdctl_argv(eps);
            argv.insert(argv.end(), {"endpoint", "health"});
            const Run r = run(argv, {.timeout = 10s, .env = {"ETCDCTL_API=3"}});
            last = r.out + r.err;
            return r.code == 0;
        },
        30s, 200ms);
    bool exited = false;
    for (int i : which) exited = exited || members_[i].pid < 0;
    if (!up || exited) {
        if (why) *why = "etcd did not become healthy within 30 s: " + last + logs();
        return false;
    }
    return true;
}

bool EtcdCluster::start(std::string* why) {
    // free_port() is only free until someone binds it: another test's server may take a port
    // between its choice and etcd's bind. Such a start is made again on new ports.
    for (int attempt = 1;; ++attempt) {
        std::vector<int> all;
        bool spawned = true;
        for (int i = 0; i < static_cast<int>(members_.size()) && spawned; ++i) {
            spawned = spawn(i, why);
            all.push_back(i);
        }
        if (spawned && wait_serving(all, why)) break;
        stop();
        if (attempt == 3 || logs().find("address already in use") == std::string::npos) return false;
        for (int i = 0; i < static_cast<int>(members_.size()); ++i) {
            std::error_code ec;
            std::filesystem::remove_all(dir_ / (members_[i].name + ".etcd"), ec);
            std::filesystem::remove(log_file(i), ec);
            members_[i].client_port = free_port();
            members_[i].peer_port = free_port();
        }
    }
    if (options_.auth) {
        int code = 0;
        std::string out = etcdctl({"user", "add", "root", "--new-user-password", password()}, &code);
        if (code == 0) out = etcdctl({"auth", "enable"}, &code);
        if (code != 0) {
            if (why) *why = "cannot enable etcd auth: " + out + logs();
            stop();
            return false;
        }
        auth_enabled_ = true;
    }
    return true;
}

void EtcdCluster::stop() {
    for (auto& m : members_) {
        if (m.pid > 0) terminate_child(m.pid);
        m.pid = -1;
    }
}

void EtcdCluster::kill_member(int i) {
    Member& m = members_.at(i);
    if (m.pid <= 0) return;
    terminate_child(m.pid, Ms(0), SIGKILL);
    m.pid = -1;
}

void EtcdCluster::stop_member(int i) {
    Member& m = members_.at(i);
    if (m.pid <= 0) return;
    terminate_child(m.pid);
    m.pid = -1;
}

bool EtcdCluster::restart_member(int i, std::string* why) {
    kill_member(i);
    // With a data dir etcd ignores the --initial-cluster flags and rejoins as the member it was.
    if (!spawn(i, why)) return false;
    return wait_serving({i}, why);
}

std::vector<std::string> EtcdCluster::etcdctl_argv(const std::vector<std::string>& eps) const {
    std::string joined;
    for (const auto& e : eps) joined += (joined.empty() ? "" : ",") + e;
    std::vector<std::string> argv = {"etcdctl", "--endpoints=" + joined, "--dial-timeout=2s", "--command-timeout=5s"};
    if (options_.tls) argv.push_back("--cacert=" + ca_file().string());
    if (auth_enabled_) argv.push_back("--user=root:" + password());
    return argv;
}

std::string EtcdCluster::etcdctl(const std::vector<std::string>& args, int* exit_code) const {
    std::vector<std::string> eps;
    for (size_t i = 0; i < members_.size(); ++i)
        if (members_[i].pid > 0) eps.push_back(endpoint(static_cast<int>(i)));
    auto argv = etcdctl_argv(eps);
    argv.insert(argv.end(), args.begin(), args.end());
    const Run r = run(argv, {.timeout = 30s, .env = {"ETCDCTL_API=3"}});
    if (exit_code) *exit_code = r.code;
    return r.out + r.err;
}

int EtcdCluster::leader() const {
    // Each member's own view (one endpoint a call): the one whose id is the leader it reports.
    for (size_t i = 0; i < members_.size(); ++i) {
        if (members_[i].pid <= 0) continue;
        auto argv = etcdctl_argv({endpoint(static_cast<int>(i))});
        argv.insert(argv.end(), {"endpoint", "status", "-w", "fields"});
        const Run r = run(argv, {.timeout = 10s, .env = {"ETCDCTL_API=3"}});
        const std::string id = id_field(r.out, "MemberID"), lead = id_field(r.out, "Leader");
        if (r.code == 0 && !id.empty() && id != "0" && id == lead) return static_cast<int>(i);
    }
    return -1;
}

bool EtcdCluster::compact(std::string* why) {
    int code = 0;
    const std::string status = etcdctl({"get", "--write-out=fields", "compaction-probe"}, &code);
    const long long revision = field(status, "Revision");
    if (code != 0 || revision <= 0) {
        if (why) *why = "cannot read the current revision: " + status;
        return false;
    }
    const std::string out = etcdctl({"compaction", "--physical", std::to_string(revision)}, &code);
    if (code != 0) {
        if (why) *why = "etcdctl compaction " + std::to_string(revision) + ": " + out;
        return false;
    }
    return true;
}

}  // namespace sitesfs::it
