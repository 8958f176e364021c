#include "mount/notify.hpp"

#include <sys/statvfs.h>
#include <systemd/sd-daemon.h>

namespace sitesfs::mount {

using namespace std::chrono_literals;

Notifier::Notifier(std::string mountpoint, std::function<void()> on_ready, std::function<std::string()> status,
                   std::function<void()> periodic)
    : mountpoint_(std::move(mountpoint)),
      on_ready_(std::move(on_ready)),
      status_(std::move(status)),
      periodic_(std::move(periodic)) {}

Notifier::~Notifier() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void Notifier::start() { thread_ = std::thread([this] { run(); }); }

void Notifier::stopping() {
    {
        std::lock_guard lock(mu_);
        if (stopping_) return;
        stopping_ = true;
    }
    cv_.notify_all();
    sd_notify(0, "STOPPING=1");
}

bool Notifier::mount_answers() const {
    struct statvfs st{};
    return statvfs(mountpoint_.c_str(), &st) == 0;
}

void Notifier::run() {
    std::unique_lock lock(mu_);
    // The loop starts serving right after start(); the first statfs is answered by it.
    while (!stopping_) {
        lock.unlock();
        const bool up = mount_answers();
        lock.lock();
        if (up) break;
        cv_.wait_for(lock, 10ms);
    }
    if (stopping_) return;
    lock.unlock();
    on_ready_();
    sd_notify(0, ("READY=1\nSTATUS=" + status_()).c_str());
    periodic_();
    lock.lock();

    uint64_t watchdog_usec = 0;
    const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
    // Half the watchdog interval, as systemd recommends; the status line refreshes as often.
    const auto period = watchdog ? std::chrono::microseconds(watchdog_usec / 2) : std::chrono::microseconds(10s);
    while (!cv_.wait_for(lock, period, [this] { return stopping_; })) {
        lock.unlock();
        // Only a mount that still answers earns the ping: a wedged loop gets the service restarted.
        const bool up = mount_answers();
        const std::string status = status_();
        periodic_();
        lock.lock();
        if (stopping_) break;
        if (up) sd_notify(0, ((watchdog ? "WATCHDOG=1\nSTATUS=" : "STATUS=") + status).c_str());
    }
}

}  // namespace sitesfs::mount
