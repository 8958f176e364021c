// Backoff and SiteBackoffs: when a failed deploy or an unreachable remote is tried again.
#include <gtest/gtest.h>

#include <chrono>

#include "hooks/backoff.hpp"

namespace sitesfs::hooks {
namespace {

using namespace std::chrono_literals;
using Decision = SiteBackoffs::PollDecision;

const SteadyTime t0 = SteadyTime{} + 1000h;

TEST(Backoff, WaitIsTheIntervalDoubledAfterEachFurtherFailureUpToAnHour) {
    EXPECT_EQ(Backoff::wait(60s, 1), 60s);
    EXPECT_EQ(Backoff::wait(60s, 2), 120s);
    EXPECT_EQ(Backoff::wait(60s, 3), 240s);
    EXPECT_EQ(Backoff::wait(60s, 6), 1920s);
    EXPECT_EQ(Backoff::wait(60s, 7), 1h);
    EXPECT_EQ(Backoff::wait(60s, 1000), 1h);
    EXPECT_EQ(Backoff::wait(1s, 3), 4s);
}

TEST(Backoff, AnIntervalLongerThanAnHourIsItsOwnCap) {
    EXPECT_EQ(Backoff::wait(2h, 1), 2h);
    EXPECT_EQ(Backoff::wait(2h, 5), 2h);
}

TEST(Backoff, NoPollIntervalMeansNoWait) { EXPECT_EQ(Backoff::wait(0ms, 4), 0ms); }

TEST(Backoff, EachFailureCountsAndMovesTheNextTry) {
    Backoff b(1s);
    EXPECT_TRUE(b.due(t0)) << "nothing failed yet";
    EXPECT_EQ(b.fail(t0), 1s);
    EXPECT_EQ(b.attempts(), 1);
    EXPECT_EQ(b.retry_at(), t0 + 1s);
    EXPECT_FALSE(b.due(t0 + 999ms));
    EXPECT_TRUE(b.due(t0 + 1s));
    EXPECT_EQ(b.fail(t0 + 1s), 2s);
    EXPECT_EQ(b.retry_at(), t0 + 3s);
    EXPECT_EQ(b.attempts(), 2);
}

TEST(Backoff, AFailureNoTimerRetriesIsNeverDue) {
    Backoff b(1s);
    b.fail_until_changed();
    EXPECT_EQ(b.attempts(), 1);
    EXPECT_FALSE(b.due(t0 + 1000h));
}

TEST(HostFailures, AreTheStepsOfTheNetworkTheDiskAndTheProxyProcess) {
    for (const char* step : {"fetch", "stage", "switch", "reload"}) EXPECT_TRUE(host_failure(step)) << step;
    for (const char* step : {"proxy", "health", "", "fetchx"}) EXPECT_FALSE(host_failure(step)) << step;
}

TEST(SiteBackoffs, TheSameHostFailureAgainDoublesTheWait) {
    SiteBackoffs b(1s);
    EXPECT_EQ(b.deploy_failed("blog", "c1", "fetch", 3, t0), 1s);
    EXPECT_EQ(b.deploy_failed("blog", "c1", "fetch", 3, t0 + 1s), 2s);
    EXPECT_EQ(b.deploy_failed("blog", "c1", "fetch", 3, t0 + 3s), 4s);
    EXPECT_EQ(b.deploy_failed("other", "c1", "fetch", 3, t0), 1s) << "counted per site";
}

TEST(SiteBackoffs, ANewGenerationCommitOrStepStartsTheCountAgain) {
    SiteBackoffs b(1s);
    b.deploy_failed("blog", "c1", "fetch", 3, t0);
    EXPECT_EQ(b.deploy_failed("blog", "c1", "fetch", 3, t0), 2s);
    EXPECT_EQ(b.deploy_failed("blog", "c1", "fetch", 4, t0), 1s) << "new generation";
    EXPECT_EQ(b.deploy_failed("blog", "c1", "fetch", 4, t0), 2s);
    EXPECT_EQ(b.deploy_failed("blog", "c2", "fetch", 4, t0), 1s) << "new commit";
    EXPECT_EQ(b.deploy_failed("blog", "c2", "reload", 4, t0), 1s) << "another step";
    b.deploy_succeeded("blog");
    EXPECT_EQ(b.deploy_failed("blog", "c2", "reload", 4, t0), 1s) << "a success forgets";
}

TEST(SiteBackoffs, AFailureOfTheCommitHasNoTimer) {
    SiteBackoffs b(1s);
    EXPECT_EQ(b.deploy_failed("blog", "c1", "health", 3, t0), std::nullopt);
    EXPECT_EQ(b.deploy_failed("blog", "c1", "proxy", 3, t0), std::nullopt);
}

TEST(SiteBackoffs, APollRunsAFailureFromBeforeThisStartOnce) {
    SiteBackoffs b(1s);
    const Decision d = b.on_poll("blog", true, t0);
    EXPECT_EQ(d.verdict, Decision::run);
    EXPECT_EQ(d.retried_step, "") << "not a retry: a first try, to learn why";
    EXPECT_EQ(b.on_poll("blog", false, t0).verdict, Decision::ask) << "a live site asks its remote";
}

TEST(SiteBackoffs, APollRetriesAHostFailureOnlyOnceItsBackoffPassed) {
    SiteBackoffs b(10s);
    b.deploy_failed("blog", "c1", "stage", 3, t0);
    EXPECT_EQ(b.on_poll("blog", true, t0 + 9s).verdict, Decision::wait);
    const Decision d = b.on_poll("blog", true, t0 + 10s);
    EXPECT_EQ(d.verdict, Decision::run);
    EXPECT_EQ(d.retried_step, "stage");
}

TEST(SiteBackoffs, APollAsksWhetherTheBranchMovedPastAFailedCommit) {
    SiteBackoffs b(10s);
    b.deploy_failed("blog", "c1", "health", 3, t0);
    const Decision d = b.on_poll("blog", true, t0 + 1000h);
    EXPECT_EQ(d.verdict, Decision::ask);
    EXPECT_EQ(d.failed_commit, "c1");
    EXPECT_EQ(b.on_poll("other", false, t0).failed_commit, std::nullopt);
}

TEST(SiteBackoffs, AnUnreachableRemoteIsAskedAgainOnTheDoublingBackoff) {
    SiteBackoffs b(1s);
    EXPECT_EQ(b.unreachable("blog", t0), 1s);
    EXPECT_EQ(b.on_poll("blog", false, t0 + 500ms).verdict, Decision::wait);
    EXPECT_EQ(b.on_poll("blog", false, t0 + 1s).verdict, Decision::ask);
    EXPECT_EQ(b.unreachable("blog", t0 + 1s), 2s);
    EXPECT_EQ(b.unreachable("blog", t0 + 3s), 4s);
    b.reached("blog");
    EXPECT_EQ(b.on_poll("blog", false, t0 + 3s).verdict, Decision::ask);
    EXPECT_EQ(b.unreachable("blog", t0 + 3s), 1s) << "reached: the count starts again";
}

TEST(SiteBackoffs, ADeployForgetsTheUnreachableRemote) {
    SiteBackoffs b(1s);
    b.unreachable("blog", t0);
    b.unreachable("blog", t0);
    b.deploy_failed("blog", "c1", "health", 3, t0);
    EXPECT_EQ(b.unreachable("blog", t0), 1s);
    b.deploy_succeeded("blog");
    EXPECT_EQ(b.on_poll("blog", false, t0).verdict, Decision::ask);
}

TEST(SiteBackoffs, ForgettingASiteDropsBoth) {
    SiteBackoffs b(1s);
    b.deploy_failed("blog", "c1", "fetch", 3, t0);
    b.unreachable("blog", t0);
    b.forget("blog");
    EXPECT_EQ(b.on_poll("blog", false, t0).verdict, Decision::ask);
    EXPECT_EQ(b.deploy_failed("blog", "c1", "fetch", 3, t0), 1s);
}

}  // namespace
}  // namespace sitesfs::hooks
