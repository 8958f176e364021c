// A test that cannot run on this machine (no /dev/fuse, no tmpfs mount, no second user...):
// skipped with the reason on a developer's machine, failed in CI (CI=true in the environment),
// where a missing capability must never pass as green. README, "Tests", says so.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

namespace sitesfs::ci {

inline bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci != nullptr && std::string_view(ci) == "true";
}

}  // namespace sitesfs::ci

// Use as GTEST_SKIP: `SITESFS_CANNOT_RUN() << "why";` returns from the test (or SetUp) with a
// skip, or in CI with a fatal failure, carrying the same message.
#define SITESFS_CANNOT_RUN()                                                                          \
    return ::testing::internal::AssertHelper(::sitesfs::ci::in_ci() ? ::testing::TestPartResult::kFatalFailure \
                                                                          : ::testing::TestPartResult::kSkip,      \
                                             __FILE__, __LINE__,                                      \
                                             ::sitesfs::ci::in_ci() ? "CI=true: a test that cannot run fails" \
                                                                         : "Skipped") = ::testing::Message()
