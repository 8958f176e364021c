// The builders the operator configures ([build], [builders.NAME]): what a site's `build` field may
// name. The command and its rights come from here, never from the repository (docs/builds.md).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hooks/sandbox.hpp"

namespace sitesfs::hooks {

struct Builder {
    std::string name;
    // argv, no shell; "{src}" and "{out}" in an element stand for the checked-out tree and the
    // output dir.
    std::vector<std::string> command;
    bool network = false;
    SandboxLimits limits;
    // The build's whole environment, besides the sandbox's PATH and HOME defaults: nothing of the
    // daemon's passes, so the daemon's secrets cannot leak into a build by accident.
    std::vector<std::pair<std::string, std::string>> env;
};

struct BuildConfig {
    unsigned jobs = 1;  // builds at once: each takes cores and memory, unlike a waiting deploy
    // Unset: no builds (a builder then fails the config). Never root.
    std::optional<uid_t> uid;
    gid_t gid = 0;  // uid's primary group
    // Where builds run: DIR/SITE for each site; empty: the site's releases/.build-RELEASE. Made by
    // the daemon (root's, 0755) and emptied at each start: nothing else may keep files there.
    std::filesystem::path dir;
    std::map<std::string, Builder, std::less<>> builders;
};

}  // namespace sitesfs::hooks
