// Compatibility with the seed tool's sites.toml: import into a store, export from one.
//   [global]     root, caddyfile, log
//   [sites.KEY]  domain, repo, branch, commit (optional, a sitesfs addition: the pin), path (optional),
//                deploy_key (optional: a secret-store name, or PROVIDER:NAME as sitesfs has it)
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "store/store.hpp"

namespace sitesfs {

struct ImportReport {
    std::vector<std::string> taken;    // "blog: domain, repo, branch"
    std::vector<std::string> refused;  // "shop: domain 'a b' refused: ..."; one line per refusal
    std::vector<std::string> notes;    // "[global] root not imported: ..."
};

// Parses the file (a syntax error throws StoreError with file:line:column), then creates each
// valid site. A site is taken whole or not at all: any refused value refuses the site.
ImportReport import_seed_toml(Store& store, const std::filesystem::path& file);

struct SeedGlobals {
    std::string root;       // the data dir
    std::string caddyfile;  // the generated proxy config
    std::string log;        // the deploy log
};

// The store's sites in the seed format, sorted by key; deterministic bytes.
std::string export_seed_toml(const Store& store, const SeedGlobals& globals);

}  // namespace sitesfs
