#include "store/file_follower.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <thread>

#include "store/site_dir.hpp"
#include "store/site_file.hpp"
#include "store/site_map.hpp"

namespace sitesfs {

namespace {

std::string errno_text(int e) { return std::strerror(e); }

class FileFollower final : public Store {
public:
    FileFollower(const std::filesystem::path& state_dir, std::string host, std::vector<std::string> labels)
        : dir_(SiteDir::open_readonly(state_dir)), host_(std::move(host)), labels_(std::move(labels)) {
        // Watching before loading means nothing written in between is missed; reloading a file
        // that is already current emits nothing.
        start_watch();
        for (auto& s : load_sites(dir_, false).sites) sites_.publish(std::move(s));
        watcher_ = std::thread([this] { follow(); });
    }

    ~FileFollower() override {
        const uint64_t one = 1;
        if (::write(wake_fd_.get(), &one, sizeof one) != sizeof one)
            spdlog::error("cannot wake the thread following {}: {}", dir_.path().string(), errno_text(errno));
        watcher_.join();
    }

    bool read_only() const override { return true; }
    const std::string& host() const override { return host_; }
    const std::vector<std::string>& labels() const override { return labels_; }
    std::string describe() const override {
        return "backend: file (read-only: following another sitesfs)\nsites_dir: " + dir_.path().string() + "\nhost: " + host_ + "\n";
    }
    std::vector<std::string> site_names() const override { return sites_.names(); }
    SiteRef site(std::string_view name) const override { return sites_.get(name); }
    size_t site_count() const override { return sites_.size(); }
    void subscribe(std::function<void(const Change&)> listener) override { sites_.subscribe(std::move(listener)); }

    Outcome create_site(std::string_view) override { return refused(); }
    std::vector<Outcome> create_sites(const std::vector<NewSite>& sites) override {
        return std::vector<Outcome>(sites.size(), refused());
    }
    Outcome remove_site(std::string_view) override { return refused(); }
    Outcome write_field(std::string_view, std::string_view, std::string_view) override { return refused(); }
    Outcome restore_field(std::string_view, std::string_view, std::string_view, std::string_view) override { return refused(); }
    Outcome set_field_time(std::string_view, std::string_view, Timestamp) override { return refused(); }
    Outcome report(std::string_view, uint64_t, const ActualState&) override { return refused(); }

private:
    static Outcome refused() { return Outcome::fail(EROFS, "this mount is read-only"); }

    void start_watch() {
        const std::string shown = dir_.path().string();
        inotify_fd_ = Fd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
        if (!inotify_fd_.valid()) throw StoreError("cannot watch " + shown + ": " + errno_text(errno));
        if (::inotify_add_watch(inotify_fd_.get(), dir_.path().c_str(), IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM) < 0)
            throw StoreError("cannot watch " + shown + ": " + errno_text(errno));
        wake_fd_ = Fd(::eventfd(0, EFD_CLOEXEC));
        if (!wake_fd_.valid()) throw StoreError("cannot watch " + shown + ": eventfd: " + errno_text(errno));
    }

    void follow() {
        alignas(inotify_event) char buf[16 * 1024];
        for (;;) {
            pollfd fds[2] = {{inotify_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
            if (::poll(fds, 2, -1) < 0) {
                if (errno == EINTR) continue;
                spdlog::error("stopped following {}: poll: {}", dir_.path().string(), errno_text(errno));
                return;
            }
            if (fds[1].revents) return;
            std::set<std::string> touched;
            bool overflow = false;
            for (;;) {
                const ssize_t n = ::read(inotify_fd_.get(), buf, sizeof buf);
                if (n <= 0) break;  // EAGAIN: drained
                for (char* p = buf; p < buf + n;) {
                    const auto* ev = reinterpret_cast<const inotify_event*>(p);
                    p += sizeof(inotify_event) + ev->len;
                    if (ev->mask & IN_Q_OVERFLOW) overflow = true;
                    if (ev->mask & IN_IGNORED)
                        spdlog::error("{} was removed or unmounted: this read-only instance no longer follows changes",
                                      dir_.path().string());
                    if (ev->len)
                        if (auto name = site_of_file(ev->name)) touched.insert(std::move(*name));
                }
            }
            if (overflow) {
                rescan();
                continue;
            }
            for (const auto& name : touched) reload(name);
        }
    }

    // The kernel dropped events: compare every known and every present site.
    void rescan() {
        std::set<std::string> names;
        for (auto& name : sites_.names()) names.insert(std::move(name));
        try {
            for (const auto& file : dir_.list(nullptr)) names.insert(*site_of_file(file));
        } catch (const StoreError& e) {
            spdlog::warn("{}", e.what());
        }
        for (const auto& name : names) reload(name);
    }

    void reload(const std::string& name) {
        const SiteRef cur = sites_.get(name);
        SiteRef next;
        try {
            const std::string file = site_file_name(name);
            if (const auto text = dir_.read(file))
                next = std::make_shared<const SiteRecord>(parse_site_file(*text, name, (dir_.path() / file).string()));
        } catch (const StoreError& e) {
            spdlog::warn("keeping the previous state of site {}: {}", name, e.what());
            return;
        }
        if (!next) {
            if (!cur) return;
            sites_.erase(name);
            sites_.emit({Change::Kind::Removed, name, cur->generation});
            return;
        }
        if (cur && render_site_file(*cur) == render_site_file(*next)) return;
        sites_.publish(next);
        // Removed and created again between two looks: a different site under the same name.
        if (cur && cur->created != next->created) sites_.emit({Change::Kind::Removed, name, cur->generation});
        if (!cur || cur->created != next->created) {
            sites_.emit({Change::Kind::Created, name, next->generation});
            return;
        }
        if (!same_desired(*cur, *next)) sites_.emit({Change::Kind::Desired, name, next->generation});
        if (!same_actual(*cur, *next)) sites_.emit({Change::Kind::Actual, name, next->generation});
    }

    const SiteDir dir_;
    const std::string host_;
    const std::vector<std::string> labels_;
    SiteMap sites_;
    Fd inotify_fd_;
    Fd wake_fd_;
    std::thread watcher_;
};

}  // namespace

std::unique_ptr<Store> open_file_follower(const std::filesystem::path& state_dir, std::string host,
                                          std::vector<std::string> labels) {
    return std::make_unique<FileFollower>(state_dir, std::move(host), std::move(labels));
}

}  // namespace sitesfs
