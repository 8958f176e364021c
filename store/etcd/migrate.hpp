// Moving a host's desired state between the file store and etcd, whole (docs/cluster.md,
// "From one host to many"): every site with its generation, values and their times, its domain
// claims, and this host's actual state, so the host serves on without redeploying.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "store/etcd/etcd_store.hpp"

namespace sitesfs {

struct MigrationReport {
    std::vector<std::string> copied;   // site names
    std::vector<std::string> refused;  // "NAME: why"
};

// Copies every site of the state dir into etcd under `etcd.prefix`, each in one transaction that
// fails when etcd already has the site or one of its domains. Holds the state dir's lock, so it
// cannot run beside the sitesfs that owns it. Throws StoreError when either store cannot be opened.
MigrationReport copy_file_store_to_etcd(const std::filesystem::path& state_dir, const EtcdStoreOptions& etcd);

// Copies every site etcd holds into an empty state dir, with `etcd.host`'s actual state.
// Throws StoreError when the state dir already holds sites or either store cannot be opened.
MigrationReport copy_etcd_to_file_store(const EtcdStoreOptions& etcd, const std::filesystem::path& state_dir);

}  // namespace sitesfs
