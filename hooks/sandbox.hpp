// Runs a build command the operator configured (hugo, jekyll, npm run build) inside bubblewrap, as
// an unprivileged user, with limits: the repository chooses what the build reads, never what runs
// or with which rights. docs/builds.md says what the build sees and why.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "hooks/command.hpp"

namespace sitesfs::hooks {

// Each is enforced by the kernel; docs/builds.md, Limits, says how and what a build sees when it
// reaches one.
struct SandboxLimits {
    std::chrono::milliseconds time{std::chrono::minutes(10)};  // then the whole sandbox is killed
    // RLIMIT_AS: address space, not resident memory. A Go builder reserves far more than it uses
    // (hugo needs ~0.8 GiB of it to build a page in 50 MiB), so keep this at 1 GiB or more.
    uint64_t memory_bytes = 2ull << 30;
    // RLIMIT_NPROC: counts every process of `uid` on the host, bwrap's own two included.
    uint64_t max_processes = 256;
    uint64_t max_file_bytes = 1ull << 30;  // RLIMIT_FSIZE: the largest file it may write
    uint64_t tmp_bytes = 1ull << 30;       // the size of its /tmp and of its /dev/shm (each is memory)
};

struct SandboxSpec {
    // Run as is (no shell); argv[0] is looked up in the sandbox's PATH.
    std::vector<std::string> argv;
    // The scratch dir: an absolute path to a directory `uid` owns (the caller creates and chowns
    // it), every directory above it searchable by `uid`. The only place the build can write that
    // outlives it; also, unless `env` says otherwise, its HOME.
    std::filesystem::path work;
    // Where the build sees `work`: an absolute path, e.g. /build, so that what it prints names no
    // path of the host; empty: at its own path.
    std::filesystem::path work_inside;
    // Where the build starts, as the build sees it: `work` (as seen inside) or a directory in it;
    // empty: `work` itself.
    std::filesystem::path cwd;
    bool network = false;  // false: a network namespace of its own, with only lo
    // The build's whole environment (the caller builds it from an allow-list). PATH and HOME are
    // added when missing; bwrap adds PWD.
    std::vector<std::pair<std::string, std::string>> env;
    // Who the build runs as on the host; never root.
    uid_t uid = 0;
    gid_t gid = 0;
    SandboxLimits limits;
    std::filesystem::path bwrap = "/usr/bin/bwrap";  // NixOS has it elsewhere
    // Asked a few times a second; true kills the build (a newer change superseded it).
    std::function<bool()> cancelled;
};

struct SandboxResult : CommandResult {
    // Its last lines say an allocation failed, as programs say when they reach RLIMIT_AS ("MemoryError",
    // "fatal error: runtime: out of memory", "memory exhausted").
    bool out_of_memory = false;
    SandboxLimits limits;  // what it ran with, for the summary

    // One line for a status file, in place of CommandResult::summary: "exit 2: LAST LINES" (up to
    // three, joined by " / "), "timed out after 10m: LAST LINES", "exit 1: MemoryError (memory limit 64 MiB)",
    // "killed by signal 11 (Segmentation fault): ...", "could not run: REASON". The build's line is
    // quoted with printable(): it comes from the repository.
    std::string summary() const;
};

// Runs the build and returns once it and everything it started are gone. `started` is false when
// it could not be run at all (output says why: bubblewrap missing, a bad spec, the switch to `uid`
// failed); a build that fails to start inside (argv[0] not found) exits 1 with bwrap's reason.
// The build's stdin is /dev/null; stdout and stderr are collected together, the last 64 KiB kept.
SandboxResult run_sandboxed(const SandboxSpec& spec);

}  // namespace sitesfs::hooks
