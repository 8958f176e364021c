#include "schemas/file_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "schemas/site_schema.hpp"

namespace sitesfs {

namespace {

constexpr int64_t kFormat = 1;
constexpr std::string_view kTempMarker = ".toml.tmp.";

int64_t to_ns(Timestamp t) { return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count(); }
Timestamp from_ns(int64_t ns) { return Timestamp(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns))); }

std::set<std::string> domains_of(const SiteRecord& s) {
    std::set<std::string> out;
    std::istringstream in(s.field("domain").value);
    for (std::string d; in >> d;) out.insert(d);
    return out;
}

std::string render_site_file(const SiteRecord& s) {
    toml::table desired, changed;
    for (const auto& f : site_fields()) {
        if (!is_writable(f)) continue;
        const FieldValue& v = s.field(f.name);
        desired.insert(f.name, v.value);
        changed.insert(f.name, to_ns(v.changed));
    }
    toml::table actual{{"state", s.actual.state},
                       {"commit", s.actual.commit},
                       {"error", s.actual.error},
                       {"error_from_write", s.actual.error_from_write},
                       {"changed", to_ns(s.actual.changed)},
                       {"updated", to_ns(s.actual.updated)},
                       {"generation", static_cast<int64_t>(s.actual.generation)}};
    toml::table root{{"format", kFormat},
                     {"name", s.name},
                     {"generation", static_cast<int64_t>(s.generation)},
                     {"created", to_ns(s.created)},
                     {"desired", desired},
                     {"desired_changed", changed},
                     {"actual", actual}};
    std::ostringstream out;
    out << "# sitesfs site state; written by sitesfs, change it through the mounted filesystem\n" << root << "\n";
    return out.str();
}

// Reads one site file; every problem names the file and the key (or line and column).
class SiteFileReader {
public:
    explicit SiteFileReader(std::string file) : file_(std::move(file)) {}

    SiteRecord read(std::string_view expected_name) {
        toml::table root;
        try {
            root = toml::parse_file(file_);
        } catch (const toml::parse_error& e) {
            std::ostringstream msg;
            msg << file_ << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
            throw StoreError(msg.str());
        }
        only(root, "", {"format", "name", "generation", "created", "desired", "desired_changed", "actual"});
        if (num(root, "format") != kFormat) fail("format", "unknown format version (newer sitesfs?)");
        SiteRecord s;
        s.name = str(root, "name");
        if (s.name != expected_name) fail("name", "'" + s.name + "' does not match the file name");
        s.generation = static_cast<uint64_t>(num(root, "generation"));
        s.created = from_ns(num(root, "created"));
        const toml::table& desired = table(root, "desired");
        const toml::table& changed = table(root, "desired_changed");
        std::set<std::string> writable;
        for (const auto& f : site_fields())
            if (is_writable(f)) writable.emplace(f.name);
        only(desired, "desired.", writable);
        only(changed, "desired_changed.", writable);
        // Re-check what is stored: a hand-edited file must not smuggle in what a write could not.
        // Local repos pass here so a read-only instance without the flag can serve them.
        const ValidationPolicy load_policy{true};
        for (const auto& f : site_fields()) {
            if (!is_writable(f) || !desired.contains(f.name)) continue;  // older files lack newer fields
            const std::string value = str(desired, f.name, "desired.");
            const Checked c = f.check(value, load_policy);
            if (!c.ok || c.value != value) fail("desired." + std::string(f.name), c.ok ? "not in normal form" : c.reason);
            s.desired[std::string(f.name)] =
                FieldValue{value, changed.contains(f.name) ? from_ns(num(changed, f.name, "desired_changed.")) : Timestamp{}};
        }
        const toml::table& actual = table(root, "actual");
        only(actual, "actual.", {"state", "commit", "error", "error_from_write", "changed", "updated", "generation"});
        s.actual.state = str(actual, "state", "actual.");
        s.actual.commit = str(actual, "commit", "actual.");
        s.actual.error = str(actual, "error", "actual.");
        s.actual.error_from_write = boolean(actual, "error_from_write", "actual.");
        s.actual.changed = from_ns(num(actual, "changed", "actual."));
        s.actual.updated = from_ns(num(actual, "updated", "actual."));
        s.actual.generation = static_cast<uint64_t>(num(actual, "generation", "actual."));
        return s;
    }

private:
    [[noreturn]] void fail(const std::string& key, const std::string& why) const {
        throw StoreError(file_ + ": " + key + ": " + why);
    }
    void only(const toml::table& t, const std::string& prefix, const std::set<std::string>& known) const {
        for (const auto& [k, v] : t)
            if (!known.count(std::string(k.str()))) fail(prefix + std::string(k.str()), "unknown key");
    }
    const toml::node& need(const toml::table& t, std::string_view key, const std::string& prefix) const {
        const toml::node* n = t.get(key);
        if (!n) fail(prefix + std::string(key), "missing");
        return *n;
    }
    std::string str(const toml::table& t, std::string_view key, const std::string& prefix = "") const {
        auto v = need(t, key, prefix).value<std::string>();
        if (!v) fail(prefix + std::string(key), "must be a string");
        return *v;
    }
    int64_t num(const toml::table& t, std::string_view key, const std::string& prefix = "") const {
        const toml::node& n = need(t, key, prefix);
        if (!n.is_integer() || *n.value<int64_t>() < 0) fail(prefix + std::string(key), "must be a non-negative integer");
        return *n.value<int64_t>();
    }
    bool boolean(const toml::table& t, std::string_view key, const std::string& prefix) const {
        const toml::node& n = need(t, key, prefix);
        if (!n.is_boolean()) fail(prefix + std::string(key), "must be true or false");
        return *n.value<bool>();
    }
    const toml::table& table(const toml::table& t, std::string_view key) const {
        const toml::table* sub = need(t, key, "").as_table();
        if (!sub) fail(std::string(key), "must be a table");
        return *sub;
    }

    std::string file_;
};

std::string errno_text(int e) { return std::strerror(e); }

// Closes on destruction, so a constructor that throws half-way leaks no descriptor or lock.
struct UniqueFd {
    int fd = -1;
    UniqueFd() = default;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() {
        if (fd >= 0) ::close(fd);
    }
    UniqueFd& operator=(int f) {
        if (fd >= 0) ::close(fd);
        fd = f;
        return *this;
    }
    operator int() const { return fd; }
};

}  // namespace

// Lock order: a site's commit mutex, then mu_ (never the other way round); no lock is held while
// listeners run. mu_ is never held during disk I/O, so readers never wait behind an fsync.
class FileStore final : public Store {
public:
    explicit FileStore(const FileStoreOptions& o)
        : state_dir_(o.state_dir), sites_dir_(o.state_dir / "sites"), read_only_(o.read_only), policy_(o.policy) {
        if (read_only_) {
            if (!std::filesystem::is_directory(sites_dir_))
                throw StoreError(sites_dir_.string() + " does not exist: start a read-write sitesfs on this state dir first");
        } else {
            prepare_dirs();
        }
        dir_fd_ = ::open(sites_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd_ < 0) throw StoreError(sites_dir_.string() + ": " + errno_text(errno));
        for (auto& s : scan()) {
            for (const auto& d : domains_of(s)) {
                auto [it, fresh] = domains_.emplace(d, s.name);
                if (!fresh && !read_only_)
                    throw StoreError((sites_dir_ / (s.name + ".toml")).string() + ": desired.domain: domain '" + d +
                                     "' is also served by site '" + it->second + "'");
            }
            const std::string name = s.name;
            sites_.emplace(name, std::make_shared<const SiteRecord>(std::move(s)));
        }
        if (read_only_) start_watching();
    }

    ~FileStore() override {
        if (watcher_.joinable()) {
            const uint64_t one = 1;
            [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
            watcher_.join();
        }
    }

    bool read_only() const override { return read_only_; }

    std::vector<std::string> site_names() const override {
        std::shared_lock lock(mu_);
        std::vector<std::string> out;
        out.reserve(sites_.size());
        for (const auto& [name, _] : sites_) out.push_back(name);
        return out;
    }

    SiteRef site(std::string_view name) const override {
        std::shared_lock lock(mu_);
        auto it = sites_.find(name);
        return it == sites_.end() ? nullptr : it->second;
    }

    size_t site_count() const override {
        std::shared_lock lock(mu_);
        return sites_.size();
    }

    Outcome create_site(std::string_view name) override {
        if (read_only_) return read_only_outcome();
        const Checked c = check_site_name(name);
        if (!c.ok) return Outcome::fail(EINVAL, c.reason);
        auto guard = commit_lock(name);
        if (site(name)) return Outcome::fail(EEXIST, "site '" + std::string(name) + "' already exists");
        auto s = std::make_shared<SiteRecord>();
        s->name = std::string(name);
        s->generation = 1;
        s->created = s->actual.updated = Clock::now();
        if (auto out = persist(*s); !out.ok()) return out;
        {
            std::unique_lock lock(mu_);
            sites_.emplace(s->name, s);
        }
        emit({Change::Kind::Created, s->name, s->generation});
        return Outcome::success();
    }

    Outcome remove_site(std::string_view name) override {
        if (read_only_) return read_only_outcome();
        auto guard = commit_lock(name);
        SiteRef cur = site(name);
        if (!cur) return Outcome::fail(ENOENT, "no site '" + std::string(name) + "'");
        const std::string file = std::string(name) + ".toml";
        if (::unlinkat(dir_fd_, file.c_str(), 0) != 0 && errno != ENOENT)
            return Outcome::fail(errno, "could not remove " + (sites_dir_ / file).string() + ": " + errno_text(errno));
        ::fsync(dir_fd_);
        {
            std::unique_lock lock(mu_);
            sites_.erase(cur->name);
            for (const auto& d : domains_of(*cur))
                if (auto it = domains_.find(d); it != domains_.end() && it->second == cur->name) domains_.erase(it);
        }
        emit({Change::Kind::Removed, cur->name, cur->generation});
        return Outcome::success();
    }

    Outcome write_field(std::string_view name, std::string_view field, std::string_view raw) override {
        if (read_only_) return read_only_outcome();
        const FieldSpec* spec = find_field(field);
        if (!spec) return Outcome::fail(EINVAL, "no field '" + std::string(field) + "'");
        if (!is_writable(*spec)) return Outcome::fail(EACCES, std::string(field) + " is read-only");
        auto guard = commit_lock(name);
        SiteRef cur = site(name);
        if (!cur) return Outcome::fail(ENOENT, "no site '" + std::string(name) + "'");
        const Checked c = spec->check(trim(raw), policy_);
        if (!c.ok) return refuse(*cur, EINVAL, c.reason);  // reasons name the field and the value
        if (cur->field(field).value == c.value) return Outcome::success();  // idempotent: no new generation

        auto next = std::make_shared<SiteRecord>(*cur);
        const Timestamp now = Clock::now();
        next->desired[std::string(field)] = FieldValue{c.value, now};
        ++next->generation;
        if (next->actual.error_from_write) next->actual.error.clear(), next->actual.error_from_write = false;
        next->actual.updated = now;

        std::vector<std::string> reserved;
        if (field == "domain") {
            std::unique_lock lock(mu_);
            for (const auto& d : domains_of(*next)) {
                auto [it, fresh] = domains_.emplace(d, next->name);
                if (fresh) reserved.push_back(d);
                else if (it->second != next->name) {
                    const std::string owner = it->second;
                    for (const auto& r : reserved) domains_.erase(r);
                    lock.unlock();
                    return refuse(*cur, EEXIST, "domain: '" + d + "' is already served by site '" + owner + "'");
                }
            }
        }
        if (auto out = persist(*next); !out.ok()) {
            std::unique_lock lock(mu_);
            for (const auto& r : reserved) domains_.erase(r);
            return out;
        }
        {
            std::unique_lock lock(mu_);
            if (field == "domain") {
                const auto keep = domains_of(*next);
                for (const auto& d : domains_of(*cur))
                    if (!keep.count(d)) domains_.erase(d);
            }
            sites_[next->name] = next;
        }
        emit({Change::Kind::Desired, next->name, next->generation});
        return Outcome::success();
    }

    Outcome report(std::string_view name, uint64_t generation, const ActualState& actual) override {
        if (read_only_) return read_only_outcome();
        auto guard = commit_lock(name);
        SiteRef cur = site(name);
        if (!cur) return Outcome::fail(ENOENT, "no site '" + std::string(name) + "'");
        if (generation < cur->actual.generation) return Outcome::success();  // an older run lost the race
        auto next = std::make_shared<SiteRecord>(*cur);
        const Timestamp now = Clock::now();
        next->actual = actual;
        next->actual.generation = generation;
        next->actual.changed = actual.commit == cur->actual.commit ? cur->actual.changed : now;
        next->actual.updated = now;
        if (auto out = persist(*next); !out.ok()) return out;
        {
            std::unique_lock lock(mu_);
            sites_[next->name] = next;
        }
        emit({Change::Kind::Actual, next->name, next->generation});
        return Outcome::success();
    }

    void subscribe(std::function<void(const Change&)> listener) override {
        std::lock_guard lock(listeners_mu_);
        listeners_.push_back(std::move(listener));
    }

private:
    static Outcome read_only_outcome() { return Outcome::fail(EROFS, "this mount is read-only"); }

    void prepare_dirs() {
        std::error_code ec;
        std::filesystem::create_directories(sites_dir_, ec);
        if (ec) throw StoreError("cannot create " + sites_dir_.string() + ": " + ec.message());
        // Group-readable so that a monitoring group can run a read-only instance (chgrp the
        // state dir; the setgid bit hands its group to new files). No secrets live here.
        ::chmod(state_dir_.c_str(), 0750);
        ::chmod(sites_dir_.c_str(), 02750);
        lock_fd_ = ::open(state_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (lock_fd_ < 0) throw StoreError(state_dir_.string() + ": " + errno_text(errno));
        if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
            throw StoreError("state dir " + state_dir_.string() + " is in use by another read-write sitesfs");
    }

    // Loads every site file; in read-write mode also removes temp files a crash left behind.
    std::vector<SiteRecord> scan() {
        std::vector<SiteRecord> out;
        std::vector<std::string> names;
        for (const auto& entry : std::filesystem::directory_iterator(sites_dir_)) {
            const std::string file = entry.path().filename().string();
            if (file.front() == '.') {
                if (!read_only_ && file.find(kTempMarker) != std::string::npos) {
                    spdlog::info("removing {} left by an interrupted write", entry.path().string());
                    ::unlinkat(dir_fd_, file.c_str(), 0);
                }
                continue;
            }
            if (file.ends_with(".toml")) names.push_back(file.substr(0, file.size() - 5));
        }
        for (const auto& name : names) out.push_back(SiteFileReader((sites_dir_ / (name + ".toml")).string()).read(name));
        return out;
    }

    std::unique_lock<std::mutex> commit_lock(std::string_view name) {
        std::shared_ptr<std::mutex> m;
        {
            std::lock_guard lock(commit_locks_mu_);
            auto& slot = commit_locks_[std::string(name)];
            if (!slot) slot = std::make_shared<std::mutex>();
            m = slot;
        }
        return std::unique_lock(*m);  // the map never drops a mutex, so the reference stays valid
    }

    // Records a refused value in the site's status; saving it is best effort.
    Outcome refuse(const SiteRecord& cur, int err, std::string reason) {
        auto next = std::make_shared<SiteRecord>(cur);
        next->actual.error = reason;
        next->actual.error_from_write = true;
        next->actual.updated = Clock::now();
        if (auto out = persist(*next); !out.ok()) spdlog::warn("site {}: could not record a refusal: {}", cur.name, out.reason);
        {
            std::unique_lock lock(mu_);
            sites_[next->name] = next;
        }
        emit({Change::Kind::Actual, next->name, next->generation});
        return Outcome::fail(err, std::move(reason));
    }

    // temp file, fsync, rename, fsync dir: a crash leaves the old file or the new one.
    Outcome persist(const SiteRecord& s) {
        const std::string text = render_site_file(s);
        const std::string final_name = s.name + ".toml";
        std::string temp = (sites_dir_ / ("." + s.name + std::string(kTempMarker) + "XXXXXX")).string();
        const int fd = ::mkostemp(temp.data(), O_CLOEXEC);
        auto fail = [&](const char* step) {
            const int e = errno;
            return Outcome::fail(e, "could not save site '" + s.name + "' to " + (sites_dir_ / final_name).string() + " (" +
                                        step + "): " + errno_text(e));
        };
        if (fd < 0) return fail("create");
        size_t done = 0;
        bool ok = ::fchmod(fd, 0640) == 0;
        while (ok && done < text.size()) {
            const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
            if (n < 0 && errno == EINTR) continue;
            ok = n > 0;
            if (ok) done += static_cast<size_t>(n);
        }
        ok = ok && ::fsync(fd) == 0;
        Outcome out = ok ? Outcome::success() : fail("write");
        if (::close(fd) != 0 && out.ok()) out = fail("close");
        if (out.ok() && ::rename(temp.c_str(), (sites_dir_ / final_name).c_str()) != 0) out = fail("rename");
        if (!out.ok()) {
            ::unlink(temp.c_str());
            return out;
        }
        if (::fsync(dir_fd_) != 0) return fail("fsync of the directory");
        return out;
    }

    void emit(const Change& change) {
        std::vector<std::function<void(const Change&)>> listeners;
        {
            std::lock_guard lock(listeners_mu_);
            listeners = listeners_;
        }
        for (const auto& l : listeners) l(change);
    }

    // --- read-only instances follow the read-write one through inotify ---

    void start_watching() {
        inotify_fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        wake_fd_ = eventfd(0, EFD_CLOEXEC);
        if (inotify_fd_ < 0 || wake_fd_ < 0 ||
            inotify_add_watch(inotify_fd_, sites_dir_.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM) < 0)
            throw StoreError("cannot watch " + sites_dir_.string() + ": " + errno_text(errno));
        watcher_ = std::thread([this] { watch(); });
    }

    // Starts with a full rescan: the watch began after the initial load, so a change made in
    // between is picked up here.
    void watch() {
        alignas(inotify_event) char buf[16384];
        for (bool rescan = true;; rescan = false) {
            if (rescan) {
                rescan_all();
                continue;
            }
            pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
            if (::poll(fds, 2, -1) < 0) continue;
            if (fds[1].revents) return;
            const ssize_t n = ::read(inotify_fd_, buf, sizeof buf);
            if (n <= 0) continue;
            std::set<std::string> changed;
            bool overflow = false;
            for (char* p = buf; p < buf + n;) {
                const auto* ev = reinterpret_cast<const inotify_event*>(p);
                p += sizeof(inotify_event) + ev->len;
                if (ev->mask & IN_Q_OVERFLOW) overflow = true;
                if (!ev->len) continue;
                const std::string file = ev->name;
                if (file.front() != '.' && file.ends_with(".toml")) changed.insert(file.substr(0, file.size() - 5));
            }
            if (overflow) rescan_all();
            for (const auto& name : changed) reload(name);
        }
    }

    void rescan_all() {
        std::set<std::string> names;
        {
            std::shared_lock lock(mu_);
            for (const auto& [name, _] : sites_) names.insert(name);
        }
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(sites_dir_, ec)) {
            const std::string file = entry.path().filename().string();
            if (file.front() != '.' && file.ends_with(".toml")) names.insert(file.substr(0, file.size() - 5));
        }
        for (const auto& name : names) reload(name);
    }

    void reload(const std::string& name) {
        const auto path = sites_dir_ / (name + ".toml");
        SiteRef cur = site(name);
        if (!std::filesystem::exists(path)) {
            if (!cur) return;
            {
                std::unique_lock lock(mu_);
                sites_.erase(name);
            }
            emit({Change::Kind::Removed, name, cur->generation});
            return;
        }
        std::shared_ptr<const SiteRecord> next;
        try {
            next = std::make_shared<const SiteRecord>(SiteFileReader(path.string()).read(name));
        } catch (const StoreError& e) {
            spdlog::warn("keeping the previous state of site {}: {}", name, e.what());
            return;
        } catch (const std::filesystem::filesystem_error&) {
            return;  // removed meanwhile; its IN_DELETE follows
        }
        {
            std::unique_lock lock(mu_);
            sites_[name] = next;
        }
        if (!cur) emit({Change::Kind::Created, name, next->generation});
        else if (next->generation != cur->generation) emit({Change::Kind::Desired, name, next->generation});
        else emit({Change::Kind::Actual, name, next->generation});
    }

    const std::filesystem::path state_dir_;
    const std::filesystem::path sites_dir_;
    const bool read_only_;
    const ValidationPolicy policy_;
    UniqueFd lock_fd_;
    UniqueFd dir_fd_;
    UniqueFd inotify_fd_;
    UniqueFd wake_fd_;
    std::thread watcher_;

    mutable std::shared_mutex mu_;
    std::map<std::string, SiteRef, std::less<>> sites_;
    std::unordered_map<std::string, std::string> domains_;  // committed and reserved, domain -> site

    std::mutex commit_locks_mu_;
    std::unordered_map<std::string, std::shared_ptr<std::mutex>> commit_locks_;

    std::mutex listeners_mu_;
    std::vector<std::function<void(const Change&)>> listeners_;
};

std::unique_ptr<Store> open_file_store(const FileStoreOptions& options) {
    try {
        return std::make_unique<FileStore>(options);
    } catch (const std::filesystem::filesystem_error& e) {
        throw StoreError(e.what());
    }
}

}  // namespace sitesfs
