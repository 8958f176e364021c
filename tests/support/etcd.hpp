// A real etcd cluster (Debian's etcd-server 3.4) for tests: N members on free loopback ports, data
// and logs in the test's dir, optionally client TLS with a test CA and user/password auth. Every
// member is stopped (its process group killed) by the destructor, also when the test fails. Never
// touches a system etcd: its own ports, its own data dirs.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace sitesfs::it {

class EtcdCluster {
public:
    struct Options {
        int members = 3;
        // Client URLs are https:// with a server certificate from a test CA (ca_file()).
        bool tls = false;
        // User "root" with password(), auth enabled once the cluster is up.
        bool auth = false;
    };

    // `dir` is a directory the test owns (it must exist). Certificates (with tls) are made here.
    EtcdCluster(const std::filesystem::path& dir, Options options);
    ~EtcdCluster();
    EtcdCluster(const EtcdCluster&) = delete;
    EtcdCluster& operator=(const EtcdCluster&) = delete;

    // Starts every member and returns once the cluster has a leader and answers a linearizable
    // read (and auth is set up), or false with `why` (the members' log tails included).
    bool start(std::string* why);
    void stop();

    std::vector<std::string> endpoints() const;  // "http://127.0.0.1:P" or "https://…", one a member
    std::string endpoint(int member) const;

    void kill_member(int member);                        // SIGKILL, reaped
    void stop_member(int member);                        // SIGTERM, waited for
    bool restart_member(int member, std::string* why);   // same data dir and ports; waits until it serves
    // The member that is leader now, as the running members see it; -1: none agrees.
    int leader() const;
    // Compacts the history up to the current revision (physically, so a watch sees it at once).
    bool compact(std::string* why);
    // ETCDCTL_API=3 etcdctl with the endpoints of the running members, the CA and the user filled
    // in; stdout and stderr together.
    std::string etcdctl(const std::vector<std::string>& args, int* exit_code = nullptr) const;

    // tls: the CA that signed the servers' certificate, a client certificate and key it signed,
    // and a CA that signed nothing here (a client that does not trust the server).
    std::filesystem::path ca_file() const;
    std::filesystem::path client_cert() const;
    std::filesystem::path client_key() const;
    std::filesystem::path wrong_ca_file() const;
    std::string user() const { return "root"; }
    std::string password() const;

    std::filesystem::path log_file(int member) const;

private:
    struct Member {
        std::string name;
        int client_port = 0;
        int peer_port = 0;
        pid_t pid = -1;
    };
    bool spawn(int member, std::string* why);
    bool wait_serving(const std::vector<int>& members, std::string* why);
    std::string logs() const;  // every member's log tail, for failure messages
    void make_certificates();
    std::vector<std::string> etcdctl_argv(const std::vector<std::string>& endpoints) const;

    std::filesystem::path dir_;
    Options options_;
    std::vector<Member> members_;
    bool auth_enabled_ = false;
};

}  // namespace sitesfs::it
