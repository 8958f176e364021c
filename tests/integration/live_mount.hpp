// Mounts a real sitesfs in a temp dir and drives it with real tools. Skips (saying why) only
// when /dev/fuse cannot be opened. Teardown unmounts and removes everything, even after a failure.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

struct Result {
    int code = -1;
    std::string out;
    std::string err;
};

// Runs `bash -c script` in `cwd`, killed after 60 s.
Result sh(const std::string& script, const std::filesystem::path& cwd = "/");

class MountTest : public ::testing::Test {
protected:
    void SetUp() override;
    void TearDown() override;

    // Starts sitesfs -f on `mountpoint` with this test's state dir and waits until it answers.
    pid_t start(const std::filesystem::path& mountpoint, std::vector<std::string> extra = {});
    void stop(pid_t& pid, int sig = SIGTERM);
    Result in_mnt(const std::string& script) { return sh(script, mnt_); }
    std::string read(const std::string& rel) const;

    std::filesystem::path dir_, mnt_, state_;
    pid_t daemon_ = -1;
    std::vector<std::filesystem::path> mounts_;
    std::vector<pid_t> extra_pids_;
};
