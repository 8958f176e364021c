// The systemd reload mode against a real dbus-daemon and a stand-in for systemd on it
// (tests/fake_systemd), pointed at with DBUS_SYSTEM_BUS_ADDRESS.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <memory>

#include "hooks/reload.hpp"
#include "tests/integration/mount_fixture.hpp"
#include "tests/support/dbus.hpp"

namespace sitesfs::it {
namespace {

using hooks::ReloadError;
using hooks::RunningConfig;

// A failed reload as the publisher sees it.
struct Failure {
    std::string message;
    RunningConfig running;
};

class SystemdReload : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/sitesfs-reload-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
        tmp_ = tmpl;
        bus_ = std::make_unique<PrivateBus>(tmp_);
        std::string why;
        ASSERT_TRUE(bus_->start(&why)) << why;
        setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_->address().c_str(), 1);
    }

    void TearDown() override {
        unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
        fake_.reset();
        bus_.reset();
        std::error_code ec;
        stdfs::remove_all(tmp_, ec);
        if (ec) ADD_FAILURE() << "cannot remove " << tmp_ << ": " << ec.message();
    }

    // fake-systemd in `mode`, whose reload command appends a line to touched().
    void start_fake(const std::string& mode, std::vector<std::string> command = {}) {
        if (command.empty()) command = {"/bin/sh", "-c", "echo reloaded >> '" + touched().string() + "'"};
        fake_ = std::make_unique<FakeSystemd>(*bus_, tmp_, mode, std::move(command));
        std::string why;
        ASSERT_TRUE(fake_->start(&why)) << why;
    }

    stdfs::path touched() const { return tmp_ / "touched"; }
    int command_runs() const { return static_cast<int>(split_lines(slurp(touched())).size()); }

    // reload()'s ReloadError; a test failure when it returns instead.
    Failure reload_failure(const std::string& unit = "caddy.service", Ms timeout = 10s) {
        const auto reloader = hooks::make_systemd_reloader(unit, timeout);
        try {
            reloader->reload();
        } catch (const ReloadError& e) {
            return {e.what(), e.running};
        }
        ADD_FAILURE() << "reload() succeeded; fake-systemd log:\n" << slurp(fake_ ? fake_->log_file() : stdfs::path());
        return {};
    }
    std::string reload_error(const std::string& unit = "caddy.service", Ms timeout = 10s) {
        return reload_failure(unit, timeout).message;
    }

    std::string fake_log() const { return fake_ ? slurp(fake_->log_file()) : std::string("(no fake-systemd)"); }

    stdfs::path tmp_;
    std::unique_ptr<PrivateBus> bus_;
    std::unique_ptr<FakeSystemd> fake_;
};

TEST_F(SystemdReload, DescribeNamesTheUnit) {
    EXPECT_EQ(hooks::make_systemd_reloader("web.service", 1s)->describe(), "systemd reload of web.service");
}

TEST_F(SystemdReload, DoneJobIsSuccessAndRunsTheReloadOnce) {
    ASSERT_NO_FATAL_FAILURE(start_fake("normal"));
    const auto reloader = hooks::make_systemd_reloader("caddy.service", 10s);
    ASSERT_NO_THROW(reloader->reload()) << fake_log();
    EXPECT_EQ(command_runs(), 1);
    EXPECT_EQ(fake_->calls(), std::vector<std::string>{"ReloadUnit caddy.service replace -> done"});

    // A second reload is a fresh connection, subscription and job.
    ASSERT_NO_THROW(reloader->reload()) << fake_log();
    EXPECT_EQ(command_runs(), 2);
    EXPECT_EQ(fake_->reloads(), 2);
}

// End-to-end tests hand caddy's HOME and XDG dirs to the reload command this way.
TEST_F(SystemdReload, ReloadCommandRunsWithTheFakesEnvironment) {
    fake_ = std::make_unique<FakeSystemd>(*bus_, tmp_, "normal",
                                          std::vector<std::string>{"/bin/sh", "-c", "echo \"$MARK\" > '" + touched().string() + "'"},
                                          std::vector<std::string>{"MARK=from-the-test"});
    std::string why;
    ASSERT_TRUE(fake_->start(&why)) << why;
    ASSERT_NO_THROW(hooks::make_systemd_reloader("caddy.service", 10s)->reload()) << fake_log();
    EXPECT_EQ(slurp(touched()), "from-the-test\n");
}

// JobRemoved arrives before the ReloadUnit reply: the reloader must not wait for a signal that has
// already gone by. Repeated, because a careless client only misses it some of the time.
TEST_F(SystemdReload, JobRemovedBeforeTheReplyIsNotMissed) {
    ASSERT_NO_FATAL_FAILURE(start_fake("early"));
    const auto reloader = hooks::make_systemd_reloader("caddy.service", 5s);
    for (int i = 0; i < 20; ++i) ASSERT_NO_THROW(reloader->reload()) << "round " << i << "\n" << fake_log();
    EXPECT_EQ(command_runs(), 20);
    EXPECT_EQ(fake_->reloads(), 20);
}

TEST_F(SystemdReload, FailingReloadCommandIsAFailedJob) {
    ASSERT_NO_FATAL_FAILURE(start_fake("normal", {"false"}));
    const auto [error, running] = reload_failure();
    EXPECT_NE(error.find("systemd reload of caddy.service: job failed"), std::string::npos) << error;
    EXPECT_EQ(running, RunningConfig::unchanged) << "a failed job is a refusal";
    EXPECT_EQ(fake_->calls(), std::vector<std::string>{"ReloadUnit caddy.service replace -> failed"});
}

TEST_F(SystemdReload, FailedJobNamesUnitAndResult) {
    ASSERT_NO_FATAL_FAILURE(start_fake("fail"));
    const std::string error = reload_error();
    EXPECT_NE(error.find("caddy.service"), std::string::npos) << error;
    EXPECT_NE(error.find("failed"), std::string::npos) << error;
    EXPECT_EQ(command_runs(), 0);
    EXPECT_EQ(fake_->reloads(), 1);
}

TEST_F(SystemdReload, AccessDeniedIsReportedWithTheErrorName) {
    ASSERT_NO_FATAL_FAILURE(start_fake("deny"));
    const auto [error, running] = reload_failure();
    EXPECT_EQ(running, RunningConfig::unchanged);
    EXPECT_NE(error.find("systemd reload of caddy.service: org.freedesktop.DBus.Error.AccessDenied: "),
              std::string::npos)
        << error;
    EXPECT_EQ(command_runs(), 0);
}

TEST_F(SystemdReload, UnknownUnitIsNoSuchUnit) {
    ASSERT_NO_FATAL_FAILURE(start_fake("normal"));
    const auto [error, running] = reload_failure("nginx.service");
    EXPECT_EQ(running, RunningConfig::unchanged);
    EXPECT_NE(error.find("org.freedesktop.systemd1.NoSuchUnit"), std::string::npos) << error;
    EXPECT_NE(error.find("nginx.service"), std::string::npos) << error;
    EXPECT_EQ(command_runs(), 0);
    EXPECT_EQ(fake_->calls(), std::vector<std::string>{"ReloadUnit nginx.service replace -> NoSuchUnit"});
}

TEST_F(SystemdReload, NoJobRemovedTimesOut) {
    ASSERT_NO_FATAL_FAILURE(start_fake("silent"));
    const auto started = std::chrono::steady_clock::now();
    const auto [error, running] = reload_failure("caddy.service", 500ms);
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(running, RunningConfig::unknown) << "the job was started and may still finish";
    EXPECT_NE(error.find("no JobRemoved for job /org/freedesktop/systemd1/job/1 within 500ms"), std::string::npos)
        << error;
    EXPECT_GE(took, 500ms);
    EXPECT_LT(took, 5s);
    EXPECT_TRUE(eventually([&] { return command_runs() == 1; }, 5s)) << fake_log();
}

TEST_F(SystemdReload, UnansweredReloadUnitTimesOut) {
    ASSERT_NO_FATAL_FAILURE(start_fake("hang"));
    const auto started = std::chrono::steady_clock::now();
    const auto [error, running] = reload_failure("caddy.service", 500ms);
    EXPECT_EQ(running, RunningConfig::unknown) << "the ReloadUnit call went out";
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_NE(error.find("systemd reload of caddy.service: systemd did not answer within 500ms"), std::string::npos)
        << error;
    EXPECT_LT(took, 5s);
}

// The daemon must survive the bus going away mid-job (sdbus-c++'s own loop thread would
// std::terminate); it is a failed reload, reported before the timeout.
TEST_F(SystemdReload, BusGoingAwayMidJobIsAnError) {
    ASSERT_NO_FATAL_FAILURE(start_fake("silent"));
    const auto started = std::chrono::steady_clock::now();
    auto failure = std::async(std::launch::async, [this] { return reload_failure("caddy.service", 20s); });
    // The call is recorded once the reply is sent, so the reloader is waiting for JobRemoved now.
    ASSERT_TRUE(eventually([&] { return fake_->reloads() == 1; }, 10s)) << fake_log();
    bus_->stop();
    const auto [message, running] = failure.get();
    EXPECT_EQ(running, RunningConfig::unknown) << "the job runs on without the bus";
    EXPECT_NE(message.find("systemd reload of caddy.service: org.freedesktop.DBus.Error.Disconnected"),
              std::string::npos)
        << message;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

TEST_F(SystemdReload, NoBusIsAClearError) {
    const std::string missing = (tmp_ / "no-such-dir" / "system_bus_socket").string();
    setenv("DBUS_SYSTEM_BUS_ADDRESS", ("unix:path=" + missing).c_str(), 1);
    const auto [error, running] = reload_failure();
    EXPECT_EQ(running, RunningConfig::unchanged) << "nothing was asked";
    EXPECT_NE(error.find("systemd reload of caddy.service: cannot reach the system bus at unix:path=" + missing +
                         " (from DBUS_SYSTEM_BUS_ADDRESS)"),
              std::string::npos)
        << error;
}

// The bus is there but nobody owns org.freedesktop.systemd1 (systemd is not PID 1).
TEST_F(SystemdReload, NoSystemdOnTheBusIsAnError) {
    const auto [error, running] = reload_failure("caddy.service", 2s);
    EXPECT_EQ(running, RunningConfig::unchanged);
    EXPECT_NE(error.find("systemd reload of caddy.service: org.freedesktop.DBus.Error.ServiceUnknown"),
              std::string::npos)
        << error;
}

// ---------------------------------------------------------------------------------------------
// The command mode

Failure command_reload_failure(const std::vector<std::string>& command, Ms timeout = 10s) {
    hooks::ReloadConfig config;
    config.mode = hooks::ReloadMode::command;
    config.command = command;
    config.timeout = timeout;
    try {
        hooks::make_reloader(config)->reload();
    } catch (const ReloadError& e) {
        return {e.what(), e.running};
    }
    ADD_FAILURE() << "reload() succeeded";
    return {};
}

TEST(CommandReload, ANonZeroExitIsARefusal) {
    const auto [error, running] =
        command_reload_failure({"/bin/sh", "-c", "echo 'Error: loading new config: bad' >&2; exit 1"});
    EXPECT_EQ(error, "command /bin/sh: exit 1: Error: loading new config: bad");
    EXPECT_EQ(running, RunningConfig::unchanged);
}

TEST(CommandReload, ACommandThatCannotRunIsARefusal) {
    const auto [error, running] = command_reload_failure({"/nonexistent/caddy", "reload"});
    EXPECT_TRUE(error.starts_with("command /nonexistent/caddy: could not run")) << error;
    EXPECT_EQ(running, RunningConfig::unchanged);
}

// Cut off midway, it may have handed the proxy the new config already.
TEST(CommandReload, ATimeoutOrAKillLeavesTheRunningConfigUnknown) {
    const auto timed_out = command_reload_failure({"/bin/sh", "-c", "sleep 10"}, 200ms);
    EXPECT_TRUE(timed_out.message.starts_with("command /bin/sh: timed out")) << timed_out.message;
    EXPECT_EQ(timed_out.running, RunningConfig::unknown);
    const auto killed = command_reload_failure({"/bin/sh", "-c", "kill -KILL $$"});
    EXPECT_TRUE(killed.message.starts_with("command /bin/sh: killed by signal")) << killed.message;
    EXPECT_EQ(killed.running, RunningConfig::unknown);
}

}  // namespace
}  // namespace sitesfs::it
