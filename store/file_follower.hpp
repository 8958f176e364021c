// A read-only store over another sitesfs's state dir (a monitoring mount): it takes no lock,
// writes nothing, and follows the read-write instance's files with inotify, turning each change
// it sees into the same change feed the writer emits.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "store/store.hpp"

namespace sitesfs {

// Throws StoreError when sites/ is missing or unreadable or a site file is corrupt.
std::unique_ptr<Store> open_file_follower(const std::filesystem::path& state_dir, std::string host,
                                          std::vector<std::string> labels);

}  // namespace sitesfs
