// run_command's wait (await_group, which builds share): the end of the output and the leader's exit,
// both within the deadline.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "hooks/command.hpp"

namespace sitesfs::hooks {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Without watching the leader, the wait would end at the end of the output and then block in
// waitpid for the 30 s the leader sleeps, past any deadline.
TEST(Command, LeaderThatClosedItsOutputIsKilledAtTheDeadline) {
    const auto start = Clock::now();
    const auto r = run_command({"/bin/sh", "-c", "echo closing; exec >&- 2>&-; sleep 30"}, 1s);
    EXPECT_LT(Clock::now() - start, 5s);
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.output, "closing\n\n(timed out after 1s)");
}

// Something the command started holds the pipe: the leader's exit ends the wait, and its group goes.
TEST(Command, LeaderExitEndsTheWaitAndItsGroup) {
    const auto start = Clock::now();
    const auto r = run_command({"/bin/sh", "-c", "sleep 30 & echo started"}, 20s);
    EXPECT_LT(Clock::now() - start, 5s);
    EXPECT_TRUE(r.ok()) << r.summary();
    EXPECT_EQ(r.output, "started\n");
}

TEST(Command, OutputKeepsItsFirst64KiB) {
    const auto r = run_command({"seq", "1", "200000"}, 20s);
    ASSERT_TRUE(r.ok()) << r.summary();
    ASSERT_EQ(r.output.size(), 64u * 1024);
    EXPECT_TRUE(r.output.starts_with("1\n2\n3\n"));
}

}  // namespace
}  // namespace sitesfs::hooks
