#include "hooks/notifications.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "common/text.hpp"
#include "hooks/command.hpp"

namespace sitesfs::hooks {

namespace {

constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";
// A value past the kernel's limit for one environment string (128 KiB) would make the command
// unstartable; no reason a person reads in a message is this long.
constexpr size_t kMaxValue = 4096;

// Values come from the store (validated names, hex commits, one-line errors); dropping control bytes
// here as well keeps a script that echoes them from being driven by one.
std::string variable(std::string_view name, std::string_view value) {
    std::string out(name);
    out += '=';
    for (const char c : value)
        if (!ascii::is_control(c)) out += c;
    if (out.size() > name.size() + 1 + kMaxValue) {
        size_t cut = name.size() + 1 + kMaxValue;
        while (cut > name.size() + 1 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
        out.resize(cut);
    }
    return out;
}

}  // namespace

std::vector<std::string> notice_env(const Notice& n) {
    const char* path = std::getenv("PATH");
    return {variable("PATH", path && *path ? path : kDefaultPath),
            variable("SITE", n.site),
            variable("STATE", n.state),
            variable("COMMIT", n.commit),
            variable("PREVIOUS", n.previous),
            variable("ERROR", n.error),
            variable("HOST", n.host)};
}

Notifications::Notifications(NotifyConfig config) : config_(std::move(config)) {
    if (config_.command.empty()) return;
    for (unsigned i = 0; i < std::max(1u, config_.jobs); ++i) threads_.emplace_back([this] { job(); });
}

Notifications::~Notifications() { stop(); }

void Notifications::send(Notice n) {
    if (config_.command.empty()) return;
    std::lock_guard lock(mu_);
    if (stopping_) return;
    // The newest outcome of a site says more than an older one, so the oldest waiting one goes.
    if (waiting_.size() >= config_.queue) {
        const Notice& old = waiting_.front();
        spdlog::warn("notify: {} outcomes wait for the command already; dropped the oldest ({} {} of site {})",
                     waiting_.size(), old.state, old.commit.substr(0, 12), old.site);
        waiting_.pop_front();
        ++dropped_;
    }
    waiting_.push_back(std::move(n));
    wake_.notify_one();
}

void Notifications::stop() {
    {
        std::lock_guard lock(mu_);
        if (stopping_) return;
        stopping_ = true;
        if (!waiting_.empty())
            spdlog::warn("notify: stopping; {} outcomes were not notified", waiting_.size());
        dropped_ += waiting_.size();
        waiting_.clear();
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
}

std::deque<Notice>::iterator Notifications::next_ready() {
    return std::find_if(waiting_.begin(), waiting_.end(), [&](const Notice& n) { return !telling_.contains(n.site); });
}

void Notifications::job() {
    while (true) {
        Notice n;
        {
            std::unique_lock lock(mu_);
            wake_.wait(lock, [&] { return stopping_ || next_ready() != waiting_.end(); });
            if (stopping_) return;
            const auto it = next_ready();
            n = std::move(*it);
            waiting_.erase(it);
            telling_.insert(n.site);
        }
        run(n);
        {
            std::lock_guard lock(mu_);
            telling_.erase(n.site);
        }
        // The site's next outcome may have waited for this one.
        wake_.notify_all();
    }
}

void Notifications::run(const Notice& n) {
    const std::vector<std::string> env = notice_env(n);
    const CommandResult r = run_command(config_.command, config_.timeout, &env, [this] {
        std::lock_guard lock(mu_);
        return stopping_;
    });
    std::lock_guard lock(mu_);
    if (r.ok()) {
        ++sent_;
        return;
    }
    ++failed_;
    // The summary ends with the last line of output; the lines above it often say why.
    const std::string how = r.summary();
    const std::string output = last_lines(r.output, 5, 1000);
    spdlog::warn("notify: site {} ({} {}): {} failed: {}{}", n.site, n.state, n.commit.substr(0, 12),
                 config_.command.front(), how, how.ends_with(output) ? "" : "; its last output: " + output);
}

std::string Notifications::metrics() const {
    std::lock_guard lock(mu_);
    return "# HELP sitesfs_notifications_total Notification commands by result: sent (exit 0), failed (another exit, "
           "a signal, its timeout, or not startable), dropped (the queue was full, or the daemon stopped).\n"
           "# TYPE sitesfs_notifications_total counter\n"
           "sitesfs_notifications_total{result=\"sent\"} " + std::to_string(sent_) + "\n"
           "sitesfs_notifications_total{result=\"failed\"} " + std::to_string(failed_) + "\n"
           "sitesfs_notifications_total{result=\"dropped\"} " + std::to_string(dropped_) + "\n";
}

}  // namespace sitesfs::hooks
