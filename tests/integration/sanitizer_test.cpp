// The sanitized suites (scripts/test, docs/reliability.md#sanitizers) rely on the harness turning a
// report in a child process into a test failure. This runs a program with a known defect, built
// with the same sanitizers as the suite (ASan+UBSan in the normal build), through run().
#include <gtest/gtest-spi.h>

#include "tests/integration/mount_fixture.hpp"

namespace sitesfs::it {
namespace {

struct Defect {
    std::string name;        // argument of sanitizer-canary
    std::string report;      // what its report says
    bool stops_the_program;  // the defect's report ends the program (no "continued")
};

std::vector<Defect> defects_this_build_reports() {
    if (std::string(SITESFS_SANITIZE) == "thread")
        return {{"data-race", "WARNING: ThreadSanitizer: data race", false}};
    return {{"use-after-free", "ERROR: AddressSanitizer: heap-use-after-free", true},
            {"signed-overflow", "runtime error: signed integer overflow", true},
            {"leak", "ERROR: LeakSanitizer: detected memory leaks", false}};
}

TEST(Sanitizers, AReportInAChildProcessFailsTheTest) {
    for (const auto& d : defects_this_build_reports()) {
        SCOPED_TRACE(d.name);
        it::Run r;  // plain Run is ::testing::Test::Run inside a TEST
        EXPECT_NONFATAL_FAILURE(r = run({SANITIZER_CANARY, d.name}), d.report);
        EXPECT_NE(r.code, 0) << describe(r);
        EXPECT_NE(sanitizer_report(r.err).find(d.report), std::string::npos) << describe(r);
        if (d.stops_the_program) {
            EXPECT_EQ(r.out, "") << describe(r);
        }
    }
}

TEST(Sanitizers, CleanOutputHasNoReport) {
    EXPECT_EQ(sanitizer_report(""), "");
    EXPECT_EQ(sanitizer_report("sitesfs: mounted on /mnt\nerror: domain: not a hostname\n"), "");
    EXPECT_EQ(sanitizer_report("a\n==7==ERROR: AddressSanitizer: SEGV\n#0 f\n"),
              "==7==ERROR: AddressSanitizer: SEGV\n#0 f\n");
}

}  // namespace
}  // namespace sitesfs::it
