// Telling the service manager how we are: READY=1 once the mount answers (not merely once it is
// mounted), STATUS= with a one-line summary, WATCHDOG=1 while the mount keeps answering (when
// WatchdogSec= is set), STOPPING=1 on the way out. Without NOTIFY_SOCKET, sd_notify does nothing,
// and the same thread still releases a daemonizing parent (Startup) once the mount answers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace sitesfs::mount {

class Notifier {
public:
    // `on_ready` runs once, on the notifier's thread, when the mount first answers; `status` gives
    // the STATUS= line (it runs on that thread too).
    // `periodic` runs on every tick (every 10 s, or half the watchdog interval).
    Notifier(std::string mountpoint, std::function<void()> on_ready, std::function<std::string()> status,
             std::function<void()> periodic);
    // Joins the thread: destroy a Notifier only after the mount is gone, since a statfs of a mount
    // whose loop has ended only returns once it is unmounted.
    ~Notifier();
    Notifier(const Notifier&) = delete;
    Notifier& operator=(const Notifier&) = delete;

    void start();
    // STOPPING=1 and no more pings.
    void stopping();

private:
    void run();
    bool mount_answers() const;

    const std::string mountpoint_;
    std::function<void()> on_ready_;
    std::function<std::string()> status_;
    std::function<void()> periodic_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace sitesfs::mount
