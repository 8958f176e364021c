// The work queue on its own: coalescing per site, one run per site at a time, poll ticks, stop.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hooks/work_queue.hpp"

namespace sitesfs::hooks {
namespace {

using namespace std::chrono_literals;

// Runs record themselves and wait at the gate while it is shut.
class Queue : public ::testing::Test {
protected:
    void TearDown() override {
        open_gate();
        queue_.stop();
    }

    void run(const std::string& site, RunKind kind) {
        std::unique_lock lock(mu_);
        runs_.push_back(site + (kind == RunKind::poll ? " poll" : kind == RunKind::refresh ? " refresh" : ""));
        ++running_[site];
        max_running_ = std::max(max_running_, running_[site]);
        cv_.notify_all();
        cv_.wait(lock, [this] { return gate_open_; });
        --running_[site];
    }
    void shut_gate() {
        std::lock_guard lock(mu_);
        gate_open_ = false;
    }
    void open_gate() {
        std::lock_guard lock(mu_);
        gate_open_ = true;
        cv_.notify_all();
    }
    // Starts `workers` workers with the gate shut, and a run of `site` held at it.
    void hold_a_run_of(const std::string& site, unsigned workers) {
        shut_gate();
        queue_.start(workers);
        queue_.push(site);
        ASSERT_EQ(runs_after(1).size(), 1u);
    }
    // Waits until `n` runs have started (or a few seconds passed); returns them.
    std::vector<std::string> runs_after(size_t n) {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, 5s, [&] { return runs_.size() >= n; });
        return runs_;
    }
    // Lets the queue drain: waits until no run is in progress and a moment passes without a new one.
    std::vector<std::string> settled_runs() {
        for (;;) {
            size_t seen;
            {
                std::lock_guard lock(mu_);
                seen = runs_.size();
            }
            std::this_thread::sleep_for(100ms);
            std::lock_guard lock(mu_);
            bool idle = true;
            for (const auto& [site, n] : running_) idle = idle && n == 0;
            if (idle && runs_.size() == seen) return runs_;
        }
    }
    std::mutex mu_;
    std::condition_variable cv_;
    bool gate_open_ = true;
    std::vector<std::string> runs_;
    std::map<std::string, int> running_;
    int max_running_ = 0;
    std::vector<double> ticks_;
    WorkQueue queue_{[this](const std::string& site, RunKind kind) { run(site, kind); },
                     [this](double seconds) {
                         std::lock_guard lock(mu_);
                         ticks_.push_back(seconds);
                         cv_.notify_all();
                     }};
};

TEST_F(Queue, ChangesWhileQueuedCoalesceIntoOneRun) {
    queue_.push("blog");
    queue_.push("blog");
    queue_.push("shop");
    queue_.push("blog");
    queue_.start(1);
    EXPECT_EQ(settled_runs(), (std::vector<std::string>{"blog", "shop"}));
}

TEST_F(Queue, ChangesWhileRunningAddExactlyOneMoreRunAfterwards) {
    ASSERT_NO_FATAL_FAILURE(hold_a_run_of("blog", 4));
    for (int i = 0; i < 10; ++i) queue_.push("blog");
    open_gate();
    EXPECT_EQ(settled_runs(), (std::vector<std::string>{"blog", "blog"}));
    EXPECT_EQ(max_running_, 1) << "one run per site at a time";
}

TEST_F(Queue, DifferentSitesRunInParallel) {
    shut_gate();
    queue_.start(2);
    queue_.push("blog");
    queue_.push("shop");
    EXPECT_EQ(runs_after(2).size(), 2u) << "both started while the gate is shut";
    open_gate();
}

TEST_F(Queue, APollTickQueuesPollRunsAndAChangeMakesOneAChange) {
    queue_.push_tick({"blog", "shop"});
    queue_.push("shop");
    queue_.start(1);
    EXPECT_EQ(settled_runs(), (std::vector<std::string>{"blog poll", "shop"}));
}

TEST_F(Queue, ARefreshOutranksAPollAndAChangeOutranksARefresh) {
    queue_.push_tick({"blog", "shop"});
    queue_.push("blog", RunKind::refresh);
    queue_.push("shop", RunKind::refresh);
    queue_.push("shop");
    queue_.push("shop", RunKind::refresh);
    queue_.start(1);
    EXPECT_EQ(settled_runs(), (std::vector<std::string>{"blog refresh", "shop"}));
}

TEST_F(Queue, ARefreshDuringARunRunsOnceMoreAsARefreshUnlessAChangeCameToo) {
    ASSERT_NO_FATAL_FAILURE(hold_a_run_of("blog", 1));
    queue_.push("blog", RunKind::refresh);
    queue_.push_tick({"blog"});
    open_gate();
    EXPECT_EQ(settled_runs(), (std::vector<std::string>{"blog", "blog refresh"}));
    shut_gate();
    queue_.push("blog");
    ASSERT_EQ(runs_after(3).size(), 3u);
    queue_.push("blog", RunKind::refresh);
    queue_.push("blog");
    open_gate();
    EXPECT_EQ(settled_runs(), (std::vector<std::string>{"blog", "blog refresh", "blog", "blog"}));
}

TEST_F(Queue, APollTickDuringARunAddsNothing) {
    ASSERT_NO_FATAL_FAILURE(hold_a_run_of("blog", 1));
    queue_.push_tick({"blog"});
    open_gate();
    EXPECT_EQ(settled_runs(), (std::vector<std::string>{"blog"}));
}

TEST_F(Queue, ATickEndsWhenItsLastRunEnds) {
    shut_gate();
    queue_.start(2);
    queue_.push_tick({"blog", "shop"});
    ASSERT_EQ(runs_after(2).size(), 2u);
    std::this_thread::sleep_for(50ms);
    {
        std::lock_guard lock(mu_);
        EXPECT_TRUE(ticks_.empty()) << "its runs still run";
    }
    open_gate();
    settled_runs();
    std::lock_guard lock(mu_);
    ASSERT_EQ(ticks_.size(), 1u);
    EXPECT_GE(ticks_[0], 0.05);
}

TEST_F(Queue, ATickWithNothingToQueueEndsAtOnce) {
    queue_.push_tick({});
    std::lock_guard lock(mu_);
    EXPECT_EQ(ticks_.size(), 1u);
}

TEST_F(Queue, AnOvertakenTickIsNotCounted) {
    shut_gate();
    queue_.start(1);
    queue_.push_tick({"blog"});
    ASSERT_EQ(runs_after(1).size(), 1u);
    queue_.push_tick({"shop"});  // blog still runs: the new tick has shop only
    open_gate();
    settled_runs();
    std::lock_guard lock(mu_);
    EXPECT_EQ(ticks_.size(), 1u) << "only the second tick ended";
}

TEST_F(Queue, AfterStopNothingIsTakenAndSleepReturnsAtOnce) {
    queue_.start(1);
    queue_.stop();
    EXPECT_TRUE(queue_.stopped());
    queue_.push("blog");
    queue_.push_tick({"shop"});
    const auto before = std::chrono::steady_clock::now();
    EXPECT_FALSE(queue_.sleep(10s));
    EXPECT_LT(std::chrono::steady_clock::now() - before, 1s);
    std::lock_guard lock(mu_);
    EXPECT_TRUE(runs_.empty());
    EXPECT_TRUE(ticks_.empty());
}

TEST_F(Queue, SleepWaitsItsIntervalWhileRunning) {
    const auto before = std::chrono::steady_clock::now();
    EXPECT_TRUE(queue_.sleep(50ms));
    EXPECT_GE(std::chrono::steady_clock::now() - before, 50ms);
}

}  // namespace
}  // namespace sitesfs::hooks
