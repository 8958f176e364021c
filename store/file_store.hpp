// The desired-state store on local disk: STATE_DIR/sites/NAME.toml, one file per site, each
// replaced atomically (temp file in the same dir, fsync, rename, fsync the dir), so a committed
// write costs the same with 10 or 10,000 sites. A read-write store holds an flock on the state
// dir for its lifetime (no lock file: the kernel drops it when the process dies). A read-only
// store takes no lock, writes nothing, and follows the files with inotify.
#pragma once

#include <filesystem>
#include <memory>

#include "store/store.hpp"
#include "schemas/validators.hpp"

namespace sitesfs {

struct FileStoreOptions {
    std::filesystem::path state_dir;
    bool read_only = false;
    ValidationPolicy policy;  // applied to writes; stored files are re-checked on load
};

// Throws StoreError naming the file (and line:column for TOML syntax errors) when the state dir
// is unusable, a site file is corrupt, or another read-write sitesfs holds the state dir.
std::unique_ptr<Store> open_file_store(const FileStoreOptions& options);

}  // namespace sitesfs
