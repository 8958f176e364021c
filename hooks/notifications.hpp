// The operator's notification command ([notify] command), run after each deploy outcome with the
// outcome in its environment (docs/operations.md, "Notifications").
//
// The reconciler hands an outcome over once the store holds it, so a command that reads
// SITE/status sees what it is told about. Nothing here can hold up or change a deploy: send() only
// queues; the commands run on threads of their own, at most `jobs` at once, each killed with its
// process group at its timeout; what cannot wait in the bounded queue is dropped and counted, and a
// command that fails is logged and counted, nothing more.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace sitesfs::hooks {

struct NotifyConfig {
    std::vector<std::string> command;  // argv, no shell; empty: no notifications
    std::chrono::milliseconds timeout{30000};
    unsigned jobs = 4;
    // Outcomes waiting for a free job; beyond it the oldest waiting one is dropped. Not in the
    // config file: a queue this long means the command is too slow, which a bigger one would hide.
    size_t queue = 64;
};

// One outcome, as the command's environment names it.
struct Notice {
    std::string site;      // SITE
    std::string state;     // STATE: live or failed
    std::string commit;    // COMMIT: the commit deployed, or the one that failed (empty if none was fetched)
    std::string previous;  // PREVIOUS: the commit served before the run (empty if none)
    std::string error;     // ERROR: the one-line reason of a failure; empty when live
    std::string host;      // HOST: the host that ran the deploy (the store's host name)
};

// The command's whole environment: PATH (the daemon's, else a default) and the notice's six
// variables, with control bytes dropped. Nothing else of the daemon's passes: it may hold secrets.
std::vector<std::string> notice_env(const Notice& n);

class Notifications {
public:
    // Starts the jobs' threads when a command is configured.
    explicit Notifications(NotifyConfig config);
    ~Notifications();
    Notifications(const Notifications&) = delete;
    Notifications& operator=(const Notifications&) = delete;

    // Queues the command for `n`; never waits for it. Without a command, does nothing.
    void send(Notice n);
    // Drops what waits (logged with the count), kills what runs, and joins the threads: a daemon
    // that stops must not wait for a slow command. Idempotent.
    void stop();

    // Prometheus text: sitesfs_notifications_total by result (sent, failed, dropped).
    std::string metrics() const;

private:
    void job();
    void run(const Notice& n);
    // Call with mu_: the oldest waiting notice of a site none of whose notices runs, so that one
    // site's outcomes are told in the order they happened while other sites' are told meanwhile.
    std::deque<Notice>::iterator next_ready();

    const NotifyConfig config_;
    mutable std::mutex mu_;
    std::condition_variable wake_;
    std::deque<Notice> waiting_;
    std::set<std::string> telling_;  // sites whose command runs now
    bool stopping_ = false;
    uint64_t sent_ = 0, failed_ = 0, dropped_ = 0;
    std::vector<std::thread> threads_;
};

}  // namespace sitesfs::hooks
