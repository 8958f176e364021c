// The desired-state store many hosts share: etcd (docs/cluster.md). Every host's mount serves a
// cache kept by list + watch, so reads never wait on etcd; every change is one etcd transaction,
// guarded by the site's revision, with a create-only claim per domain, and acknowledged once etcd
// has committed it. Each host registers under a lease and reports its actual state under its own
// key. Keys, under the prefix:
//   sites/NAME          the site's desired record (site_file.hpp's desired value)
//   domains/DOMAIN      NAME: the claim that makes a domain unique across the cluster
//   actual/NAME/HOST    what HOST serves for NAME (site_file.hpp's actual value)
//   hosts/HOST          a registered host and its labels (kept until the host is forgotten)
//   alive/HOST          present while HOST's lease holds
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "schemas/validators.hpp"
#include "store/etcd/client.hpp"
#include "store/store.hpp"

namespace sitesfs {

struct EtcdStoreOptions {
    etcd::ClientOptions client;
    std::string prefix = "/sitesfs/";
    std::string host;  // empty: this machine's host name
    std::vector<std::string> labels;
    // A monitoring mount: follows the cluster, writes nothing, does not register as a host.
    bool read_only = false;
    // False for a one-shot command that writes sites (--import) beside the host's daemon: it must
    // not register, or it would put alive/HOST under its own lease and delete it when it exits,
    // and the daemon (whose own lease still holds) would show as gone for good.
    bool register_host = true;
    ValidationPolicy policy;
    std::chrono::seconds lease_ttl{10};
};

// The errno of a write etcd did not take and that changed nothing (no member reachable, no
// leader): "No route to host" tells the person the store's servers are out of reach; retrying
// later is safe.
inline constexpr int kStoreUnreachableErrno = EHOSTUNREACH;

// Lists the cluster's state and starts following it; throws StoreError with etcd's reason when
// the first list fails (no cache yet: serving an empty view would take every site down).
std::unique_ptr<Store> open_etcd_store(const EtcdStoreOptions& options);

// Removes a host that will not come back: its registration and every report it left, so that
// sites placed on every host no longer wait for it. Returns an empty string or why not.
std::string forget_etcd_host(const EtcdStoreOptions& options, const std::string& host);

}  // namespace sitesfs
