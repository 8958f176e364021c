// The desired-state store on local disk, for one host: STATE_DIR/sites/NAME.toml, one file per
// site in the format of site_file.hpp, kept by SiteDir (site_dir.hpp). A read-write store holds
// the state dir's lock; a read-only one is a FileFollower (file_follower.hpp) of another's files.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "store/store.hpp"
#include "schemas/validators.hpp"

namespace sitesfs {

struct FileStoreOptions {
    std::filesystem::path state_dir;
    bool read_only = false;
    ValidationPolicy policy;  // applied to writes; stored files are re-checked on load
    std::string host;         // Store::host(); empty: this machine's host name
    std::vector<std::string> labels;  // Store::labels()
};

// gethostname(), or "localhost" when it has none.
std::string local_host_name();

// Throws StoreError naming the file (and line:column for TOML syntax errors) when the state dir
// is unusable, a site file is corrupt, or another read-write sitesfs holds the state dir.
std::unique_ptr<Store> open_file_store(const FileStoreOptions& options);

}  // namespace sitesfs
