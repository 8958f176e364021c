#include "store/file_store.hpp"

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
#include <optional>
#include <set>
#include <shared_mutex>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <utility>

#include "schemas/fd.hpp"
#include "schemas/site_schema.hpp"

namespace sitesfs {

namespace {

constexpr int64_t kFormat = 1;
constexpr std::string_view kSuffix = ".toml";
constexpr std::string_view kTempMarker = ".toml.tmp.";

std::string errno_text(int e) { return std::strerror(e); }

int64_t to_ns(Timestamp t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
Timestamp from_ns(int64_t ns) {
    return Timestamp(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

// "blog" for "blog.toml"; nullopt for dot files (temp files, editors' leftovers) and other names.
std::optional<std::string> site_of_file(std::string_view file) {
    if (file.empty() || file.front() == '.' || !file.ends_with(kSuffix) || file.size() == kSuffix.size())
        return std::nullopt;
    return std::string(file.substr(0, file.size() - kSuffix.size()));
}

std::set<std::string> domain_set(std::string_view value) {
    const auto names = split_domains(value);
    return {names.begin(), names.end()};
}

std::set<std::string> domains_of(const SiteRecord& s) { return domain_set(s.field("domain").value); }

// A TOML file must be UTF-8, but a refused value quoted in an error, or a reconciler's error
// about a file name in a repo, may not be; one bad byte would make the store unopenable.
std::string valid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        if (const size_t len = utf8_sequence_length(s.substr(i))) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            out += "\xEF\xBF\xBD";  // U+FFFD
            ++i;
        }
    }
    return out;
}

// A TOML basic string; toml++ does the escaping.
std::string toml_string(std::string_view s) {
    std::ostringstream out;
    out << toml::toml_formatter{toml::value<std::string>(valid_utf8(s)), toml::format_flags::allow_unicode_strings};
    return out.str();
}

std::string toml_strings(const std::vector<std::string>& items) {
    if (items.empty()) return "[]";
    std::string out = "[\n";
    for (const auto& item : items) out += "  " + toml_string(item) + ",\n";
    return out + "]";
}

std::string desired_section(const SiteRecord& s) {
    std::string values = "[desired]\n";
    std::string changed = "[desired_changed]  # ns since the epoch\n";
    for (const auto& f : site_fields()) {
        if (!is_writable(f)) continue;
        const FieldValue& v = s.field(f.name);
        values += std::string(f.name) + " = " + toml_string(v.value) + "\n";
        changed += std::string(f.name) + " = " + std::to_string(to_ns(v.changed)) + "\n";
    }
    return values + "\n" + changed;
}

std::string actual_section(const SiteRecord& s) {
    const ActualState& a = s.actual;
    return "[actual]\n"
           "state = " + toml_string(std::string(to_string(a.state))) + "\n"
           "commit = " + toml_string(a.commit) + "\n"
           "domain = " + toml_string(a.domain) + "\n"
           "path = " + toml_string(a.path) + "\n"
           "log = " + toml_strings(a.log) + "\n"
           "error = " + toml_string(a.error) + "\n"
           "error_from_write = " + (a.error_from_write ? "true" : "false") + "\n"
           "changed = " + std::to_string(to_ns(a.changed)) + "\n"
           "updated = " + std::to_string(to_ns(a.updated)) + "\n"
           "generation = " + std::to_string(a.generation) + "  # the desired generation last reported on\n"
           "retry_at = " + std::to_string(to_ns(a.retry_at)) + "\n"
           "tls = " + toml_strings(a.tls) + "\n";
}

// Written from the model, never by editing a parsed file, so the layout is always this one.
std::string render_site_file(const SiteRecord& s) {
    return "# sitesfs site state; written by sitesfs, change it through the mounted filesystem\n"
           "format = " + std::to_string(kFormat) + "\n"
           "name = " + toml_string(s.name) + "\n"
           "generation = " + std::to_string(s.generation) + "\n"
           "created = " + std::to_string(to_ns(s.created)) + "  # ns since the epoch\n"
           "\n" + desired_section(s) + "\n" + actual_section(s);
}

// The file's bytes, or nullopt when it is gone (a read-only store races the writer's removals).
std::optional<std::string> read_file(int dir_fd, const std::string& name, const std::string& shown) {
    const Fd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
        if (errno == ENOENT) return std::nullopt;
        throw StoreError(shown + ": " + errno_text(errno));
    }
    std::string text;
    char buf[8192];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n == 0) return text;
        if (n > 0) text.append(buf, static_cast<size_t>(n));
        else if (errno != EINTR) throw StoreError(shown + ": " + errno_text(errno));
    }
}

// Parses one site file. Every problem names the file and the key, or the line and column.
class SiteFileReader {
public:
    explicit SiteFileReader(std::string file) : file_(std::move(file)) {}

    SiteRecord read(std::string_view text, std::string_view expected_name) const {
        toml::table root;
        try {
            root = toml::parse(text, std::string_view(file_));
        } catch (const toml::parse_error& e) {
            std::ostringstream msg;
            msg << file_ << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << printable(e.description());
            throw StoreError(msg.str());
        }
        only(root, "", {"format", "name", "generation", "created", "desired", "desired_changed", "actual"});
        if (num(root, "format") != kFormat)
            fail("format", "format " + std::to_string(num(root, "format")) + " is not 1; was it written by a newer sitesfs?");
        SiteRecord s;
        s.name = str(root, "name");
        if (s.name != expected_name) fail("name", "'" + printable(s.name) + "' does not match the file name");
        if (const Checked c = check_site_name(s.name); !c.ok) fail("name", c.reason);
        s.generation = static_cast<uint64_t>(num(root, "generation"));
        s.created = from_ns(num(root, "created"));

        std::set<std::string> writable;
        for (const auto& f : site_fields())
            if (is_writable(f)) writable.emplace(f.name);
        const toml::table& desired = table(root, "desired");
        const toml::table& changed = table(root, "desired_changed");
        only(desired, "desired.", writable);
        only(changed, "desired_changed.", writable);
        // A field missing from [desired] is unset rather than an error, so that adding a row to the
        // schema does not make every existing state dir unopenable.
        // Stored values are checked again, so a hand edit cannot smuggle in what a write would
        // refuse. Local repos pass: a read-only instance started without --allow-local-repos must
        // still read what the read-write one accepted (the reconciler applies the policy).
        const ValidationPolicy load_policy{.allow_local_repos = true};
        for (const auto& f : site_fields()) {
            if (!is_writable(f) || !desired.contains(f.name)) continue;
            const std::string value = checked(desired, f.name, "desired.", f.check, load_policy);
            const Timestamp when = changed.contains(f.name) ? from_ns(num(changed, f.name, "desired_changed.")) : Timestamp{};
            s.desired[std::string(f.name)] = FieldValue{value, when};
        }

        const toml::table& actual = table(root, "actual");
        only(actual, "actual.",
             {"state", "commit", "domain", "path", "log", "error", "error_from_write", "changed", "updated", "generation",
              "retry_at", "tls"});
        // What the reconciler reports: never incomplete, which is derived from the desired state.
        const std::string state = str(actual, "state", "actual.");
        const auto parsed = parse_site_state(state);
        if (!parsed || *parsed == SiteState::incomplete)
            fail("actual.state", "'" + printable(state) + "' is not one of pending, deploying, live, failed or empty");
        s.actual.state = *parsed;
        s.actual.commit = str(actual, "commit", "actual.");
        // The served commit, domains and path go into the proxy config when the reconciler starts,
        // so they are held to the same rules as the desired values they were copied from.
        if (!s.actual.commit.empty() && (s.actual.commit.size() != 40 || check_commit(s.actual.commit, load_policy).value != s.actual.commit))
            fail("actual.commit", "'" + printable(s.actual.commit) + "' is not a 40-digit lower-case commit id");
        // Keys added after format 1 shipped load as empty when absent.
        if (actual.contains("domain")) s.actual.domain = checked(actual, "domain", "actual.", check_domain, load_policy);
        if (actual.contains("path")) s.actual.path = checked(actual, "path", "actual.", check_path, load_policy);
        if (actual.contains("log")) s.actual.log = strings(actual, "log", "actual.");
        s.actual.error = str(actual, "error", "actual.");
        s.actual.error_from_write = boolean(actual, "error_from_write", "actual.");
        s.actual.changed = from_ns(num(actual, "changed", "actual."));
        s.actual.updated = from_ns(num(actual, "updated", "actual."));
        s.actual.generation = static_cast<uint64_t>(num(actual, "generation", "actual."));
        // Both came with issue 14; a state file written before has neither.
        if (actual.contains("retry_at")) s.actual.retry_at = from_ns(num(actual, "retry_at", "actual."));
        if (actual.contains("tls")) s.actual.tls = strings(actual, "tls", "actual.");
        return s;
    }

private:
    [[noreturn]] void fail(const std::string& key, const std::string& why) const {
        throw StoreError(file_ + ": " + key + ": " + why);
    }
    void only(const toml::table& t, const std::string& prefix, const std::set<std::string>& known) const {
        for (const auto& [k, v] : t)
            if (!known.contains(std::string(k.str()))) fail(prefix + std::string(k.str()), "unknown key");
    }
    const toml::node& need(const toml::table& t, std::string_view key, const std::string& prefix) const {
        const toml::node* n = t.get(key);
        if (!n) fail(prefix + std::string(key), "missing");
        return *n;
    }
    std::string str(const toml::table& t, std::string_view key, const std::string& prefix = "") const {
        const auto v = need(t, key, prefix).value<std::string>();
        if (!v) fail(prefix + std::string(key), "must be a string");
        return *v;
    }
    // A string its validator accepts as it is (in normal form).
    std::string checked(const toml::table& t, std::string_view key, const std::string& prefix,
                        Checked (*check)(std::string_view, const ValidationPolicy&), const ValidationPolicy& policy) const {
        const std::string value = str(t, key, prefix);
        const Checked c = check(value, policy);
        if (!c.ok) fail(prefix + std::string(key), c.reason);
        if (c.value != value)
            fail(prefix + std::string(key), "'" + printable(value) + "' is not in normal form (sitesfs stores '" + c.value + "')");
        return value;
    }
    std::vector<std::string> strings(const toml::table& t, std::string_view key, const std::string& prefix) const {
        const toml::array* a = need(t, key, prefix).as_array();
        if (!a) fail(prefix + std::string(key), "must be an array of strings");
        std::vector<std::string> out;
        for (const toml::node& n : *a) {
            const auto v = n.value<std::string>();
            if (!v) fail(prefix + std::string(key), "must be an array of strings");
            out.push_back(*v);
        }
        return out;
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

// A refusal as the site's status shows it. The validators' reasons already start with the
// field's name ("domain 'a..b': ..."); others get it in front.
std::string refusal_text(std::string_view field, const std::string& reason) {
    const bool named = reason.starts_with(field) && reason.size() > field.size() &&
                       (reason[field.size()] == ' ' || reason[field.size()] == ':');
    return named ? reason : std::string(field) + ": " + reason;
}

using Listener = std::function<void(const Change&)>;

}  // namespace

// Lock order: a site's commit mutex (commit_lock), then mu_; never the other way round. mu_ is
// only held to look up, reserve or swap pointers, never during file I/O, so readers never wait
// behind an fsync and different sites commit in parallel. No lock is held while listeners run.
class FileStore final : public Store {
public:
    explicit FileStore(const FileStoreOptions& o)
        : sites_dir_(o.state_dir / "sites"), read_only_(o.read_only), policy_(o.policy) {
        if (read_only_) {
            dir_fd_ = Fd(::open(sites_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!dir_fd_.valid() && errno == ENOENT)
                throw StoreError(sites_dir_.string() + " does not exist: start a read-write sitesfs on this state dir first");
            if (!dir_fd_.valid()) throw StoreError(sites_dir_.string() + ": " + errno_text(errno));
            // Watching before loading means nothing written in between is missed; reloading a
            // file that is already current emits nothing.
            start_watch();
        } else {
            lock_state_dir(o.state_dir);
        }
        std::vector<std::string> leftovers;
        load(leftovers);
        for (const auto& temp : leftovers) {
            spdlog::info("removing {}, left by an interrupted write", (sites_dir_ / temp).string());
            if (::unlinkat(dir_fd_.get(), temp.c_str(), 0) != 0)
                spdlog::warn("could not remove {}: {}", (sites_dir_ / temp).string(), errno_text(errno));
        }
        if (read_only_) watcher_ = std::thread([this] { follow(); });
    }

    ~FileStore() override {
        if (watcher_.joinable()) {
            const uint64_t one = 1;
            if (::write(wake_fd_.get(), &one, sizeof one) != sizeof one)
                spdlog::error("cannot wake the thread following {}: {}", sites_dir_.string(), errno_text(errno));
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
        const auto it = sites_.find(name);
        return it == sites_.end() ? nullptr : it->second;
    }

    size_t site_count() const override {
        std::shared_lock lock(mu_);
        return sites_.size();
    }

    Outcome create_site(std::string_view name) override {
        if (read_only_) return read_only_outcome();
        if (const Checked c = check_site_name(name); !c.ok) return Outcome::fail(EINVAL, c.reason);
        auto guard = commit_lock(name);
        if (site(name)) return Outcome::fail(EEXIST, "site '" + std::string(name) + "' already exists");
        auto next = std::make_shared<SiteRecord>();
        next->name = std::string(name);
        next->generation = 1;
        next->created = Clock::now();
        for (const auto& f : site_fields())
            if (is_writable(f)) next->desired[std::string(f.name)] = FieldValue{};
        if (Outcome out = persist(*next, nullptr); !out.ok()) return out;
        publish(next);
        guard.unlock();
        emit({Change::Kind::Created, next->name, next->generation});
        return Outcome::success();
    }

    Outcome remove_site(std::string_view name) override {
        if (read_only_) return read_only_outcome();
        if (!site(name)) return no_site(name);  // before commit_lock: no lock is kept for names never created
        auto guard = commit_lock(name);
        const SiteRef cur = site(name);
        if (!cur) return no_site(name);
        const std::string file = cur->name + std::string(kSuffix);
        auto fail = [&](int e) {
            return Outcome::fail(e, "could not remove site '" + cur->name + "' (" + (sites_dir_ / file).string() + "): " + errno_text(e));
        };
        if (::unlinkat(dir_fd_.get(), file.c_str(), 0) != 0) return fail(errno);
        if (::fsync(dir_fd_.get()) != 0) {
            const int e = errno;
            // The removal is visible but may not survive a crash; put the file back so that
            // failing changes nothing.
            if (Outcome undo = write_file(*cur); !undo.ok()) spdlog::error("{}; {} is missing", undo.reason, file);
            return fail(e);
        }
        {
            std::unique_lock lock(mu_);
            sites_.erase(cur->name);
            for (const auto& d : domains_of(*cur))
                if (auto it = domains_.find(d); it != domains_.end() && it->second == cur->name) domains_.erase(it);
        }
        guard.unlock();
        emit({Change::Kind::Removed, cur->name, cur->generation});
        return Outcome::success();
    }

    Outcome write_field(std::string_view name, std::string_view field, std::string_view raw) override {
        return set_field(name, field, raw, nullptr);
    }

    Outcome restore_field(std::string_view name, std::string_view field, std::string_view value,
                          std::string_view expected) override {
        return set_field(name, field, value, &expected);
    }

    Outcome set_field_time(std::string_view name, std::string_view field, Timestamp when) override {
        if (read_only_) return read_only_outcome();
        if (!site(name)) return no_site(name);
        const FieldSpec* spec = find_field(field);
        if (!spec || !is_writable(*spec)) return Outcome::fail(EPERM, std::string(field) + " shows when sitesfs changed it");
        auto guard = commit_lock(name);
        const SiteRef cur = site(name);
        if (!cur) return no_site(name);
        if (cur->field(field).changed == when) return Outcome::success();
        auto next = std::make_shared<SiteRecord>(*cur);
        next->desired[std::string(field)].changed = when;
        if (Outcome out = persist(*next, cur.get()); !out.ok()) return out;
        publish(next);
        guard.unlock();
        emit({Change::Kind::Times, next->name, next->generation});
        return Outcome::success();
    }

private:
    // write_field, and with `expected` restore_field: a compare-and-set that leaves the refusal
    // the restore follows in the status.
    Outcome set_field(std::string_view name, std::string_view field, std::string_view raw, const std::string_view* expected) {
        if (read_only_) return read_only_outcome();
        if (!site(name)) return no_site(name);
        const FieldSpec* spec = find_field(field);
        if (!spec) return Outcome::fail(EINVAL, "a site has no file '" + std::string(field) + "'");
        if (!is_writable(*spec)) return Outcome::fail(EACCES, std::string(field) + " is read-only");
        auto guard = commit_lock(name);
        const SiteRef cur = site(name);
        if (!cur) return no_site(name);
        // A restore records nothing in the status: the refusal that called for it shows there.
        auto refused = [&](int err, std::string reason) {
            return expected ? Outcome::fail(err, std::move(reason))
                            : refuse(std::move(guard), cur, field, err, std::move(reason));
        };
        const Checked c = spec->check(trim(raw), policy_);
        if (!c.ok) return refused(EINVAL, c.reason);
        if (expected) {
            const Checked e = spec->check(trim(*expected), policy_);
            if (!e.ok || cur->field(field).value != e.value)
                return Outcome::fail(ESTALE, std::string(field) + " was changed by another writer meanwhile");
        }

        const Timestamp now = Clock::now();
        auto next = std::make_shared<SiteRecord>(*cur);
        // Editors save the whole file, usually unchanged: the same value is no new generation and
        // no disk write. It only clears a refusal still shown in the status, as any good write does.
        if (cur->field(field).value == c.value) {
            if (expected || !cur->actual.error_from_write) return Outcome::success();
            clear_write_error(*next, now);
            if (Outcome out = persist(*next, cur.get()); !out.ok())
                return refuse(std::move(guard), cur, field, out.err, out.reason);
            publish(next);
            guard.unlock();
            emit({Change::Kind::Actual, next->name, next->generation});
            return Outcome::success();
        }
        next->desired[std::string(field)] = FieldValue{c.value, now};
        ++next->generation;
        if (!expected) clear_write_error(*next, now);

        std::vector<std::string> reserved;
        if (field == "domain") {
            std::unique_lock lock(mu_);
            const auto wanted = domains_of(*next);
            if (auto why = domain_taken(wanted, next->name)) {
                lock.unlock();
                return refused(EEXIST, *why);
            }
            // Reserved before the write, so a racing writer of another site sees them taken.
            for (const auto& d : wanted)
                if (domains_.emplace(d, next->name).second) reserved.push_back(d);
        }
        if (Outcome out = persist(*next, cur.get()); !out.ok()) {
            {
                std::unique_lock lock(mu_);
                for (const auto& d : reserved) domains_.erase(d);
            }
            // A full or read-only state dir: the writer gets the errno, and `status` says why for
            // whoever looks later (in memory only, since the disk just refused a write).
            return refused(out.err, out.reason);
        }
        {
            std::unique_lock lock(mu_);
            if (field == "domain") {
                const auto keep = domains_of(*next);
                for (const auto& d : domains_of(*cur))
                    if (!keep.contains(d)) domains_.erase(d);
            }
            sites_[next->name] = next;
        }
        guard.unlock();
        emit({Change::Kind::Desired, next->name, next->generation});
        return Outcome::success();
    }

    // Why one of `domains` cannot go to `site` (another site serves it), if so. Needs mu_.
    std::optional<std::string> domain_taken(const std::set<std::string>& domains, const std::string& site) const {
        for (const auto& d : domains)
            if (const auto it = domains_.find(d); it != domains_.end() && it->second != site)
                return "domain '" + d + "' is already served by site '" + it->second + "'";
        return std::nullopt;
    }

public:
    Outcome report(std::string_view name, uint64_t generation, const ActualState& actual) override {
        if (read_only_) return read_only_outcome();
        if (!site(name)) return no_site(name);
        auto guard = commit_lock(name);
        const SiteRef cur = site(name);
        if (!cur) return no_site(name);
        if (generation < cur->actual.generation) return Outcome::success();  // a slower, older run: fenced
        // Only a report about an earlier incarnation of a removed and re-created site can be ahead;
        // accepting it would fence every report about this one.
        if (generation > cur->generation)
            return Outcome::fail(EINVAL, "site '" + cur->name + "' is at generation " + std::to_string(cur->generation) +
                                             ", not " + std::to_string(generation));
        const Timestamp now = Clock::now();
        auto next = std::make_shared<SiteRecord>(*cur);
        next->actual = actual;
        next->actual.generation = generation;
        next->actual.changed = actual.commit == cur->actual.commit ? cur->actual.changed : now;
        next->actual.updated = now;
        // The reconciler does not know of refused writes; a report without an error of its own
        // must not hide one from the person who just made it.
        const bool keep_refusal = actual.error.empty() && cur->actual.error_from_write;
        next->actual.error = keep_refusal ? cur->actual.error : actual.error;
        next->actual.error_from_write = keep_refusal;
        // What is served has changed whether or not the disk takes the report (a full or read-only
        // state dir), so `commit` and `status` show it anyway. Unsaved, it is lost at a restart,
        // which deploys the site again because its record no longer matches `current`.
        Outcome saved = persist(*next, cur.get());
        publish(next);
        guard.unlock();
        emit({Change::Kind::Actual, next->name, next->generation});
        return saved;
    }

    void subscribe(Listener listener) override {
        std::lock_guard lock(listeners_mu_);
        auto more = std::make_shared<std::vector<Listener>>(*listeners_);
        more->push_back(std::move(listener));
        listeners_ = std::move(more);
    }

private:
    static Outcome read_only_outcome() { return Outcome::fail(EROFS, "this mount is read-only"); }
    static Outcome no_site(std::string_view name) { return Outcome::fail(ENOENT, "no site '" + std::string(name) + "'"); }

    static void clear_write_error(SiteRecord& s, Timestamp now) {
        if (s.actual.error_from_write) {
            s.actual.error.clear();
            s.actual.error_from_write = false;
        }
        s.actual.updated = now;
    }

    // The flock is on the state dir itself (no lock file to go stale); the kernel drops it with
    // the process. Directories are created only once the lock is held, nothing else before load.
    void lock_state_dir(const std::filesystem::path& state_dir) {
        if (::mkdir(state_dir.c_str(), 0700) != 0 && errno != EEXIST)
            throw StoreError("cannot create the state dir " + state_dir.string() + ": " + errno_text(errno));
        lock_fd_ = Fd(::open(state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!lock_fd_.valid()) throw StoreError("state dir " + state_dir.string() + ": " + errno_text(errno));
        if (::flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
            if (errno == EWOULDBLOCK)
                throw StoreError("state dir " + state_dir.string() + " is in use by another read-write sitesfs");
            throw StoreError("cannot lock the state dir " + state_dir.string() + ": " + errno_text(errno));
        }
        if (::mkdirat(lock_fd_.get(), "sites", 0700) == 0) {
            if (::fsync(lock_fd_.get()) != 0)
                throw StoreError("cannot make " + sites_dir_.string() + " durable: " + errno_text(errno));
        } else if (errno != EEXIST) {
            throw StoreError("cannot create " + sites_dir_.string() + ": " + errno_text(errno));
        }
        dir_fd_ = Fd(::openat(lock_fd_.get(), "sites", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dir_fd_.valid()) throw StoreError(sites_dir_.string() + ": " + errno_text(errno));
        close_to_others(lock_fd_.get(), state_dir);
        close_to_others(dir_fd_.get(), sites_dir_);
    }

    // The state dir holds every site's desired state and the deploy history: not for every user
    // of the host. A dir made before sitesfs (mkdir under umask 022, an old install) loses the
    // bits for others; the group's stay, for a monitoring group (docs/store.md).
    static void close_to_others(int fd, const std::filesystem::path& dir) {
        struct stat st;
        if (::fstat(fd, &st) != 0 || (st.st_mode & 0007) == 0) return;
        const mode_t mode = st.st_mode & 07770;
        if (::fchmod(fd, mode) != 0)
            throw StoreError("cannot close " + dir.string() + " to other users (chmod o-rwx): " + errno_text(errno));
        spdlog::warn("{} was open to every user (mode {:04o}); it is {:04o} now", dir.string(), st.st_mode & 07777, mode);
    }

    std::vector<std::string> list_dir(std::vector<std::string>* temps) const {
        std::vector<std::string> files;
        std::error_code ec;
        for (auto it = std::filesystem::directory_iterator(sites_dir_, ec); !ec && it != std::filesystem::directory_iterator();
             it.increment(ec)) {
            std::string file = it->path().filename().string();
            if (site_of_file(file)) files.push_back(std::move(file));
            else if (temps && file.front() == '.' && file.find(kTempMarker) != std::string::npos) temps->push_back(file);
            else if (file.front() != '.') spdlog::warn("ignoring {}: site files are named NAME.toml", (sites_dir_ / file).string());
        }
        if (ec) throw StoreError("cannot list " + sites_dir_.string() + ": " + ec.message());
        return files;
    }

    // All or nothing: the first bad file throws, and nothing was changed on disk.
    void load(std::vector<std::string>& leftovers) {
        std::unordered_map<std::string, std::string> domains;
        for (const auto& file : list_dir(read_only_ ? nullptr : &leftovers)) {
            const std::string shown = (sites_dir_ / file).string();
            const std::string name = *site_of_file(file);
            const auto text = read_file(dir_fd_.get(), file, shown);
            if (!text) continue;
            auto s = std::make_shared<const SiteRecord>(SiteFileReader(shown).read(*text, name));
            for (const auto& d : domains_of(*s)) {
                const auto [it, fresh] = domains.emplace(d, name);
                if (!fresh)
                    throw StoreError(shown + ": desired.domain: domain '" + d + "' is also served by site '" + it->second +
                                     "'; remove it from one of the two files");
            }
            sites_.emplace(name, std::move(s));
        }
        if (!read_only_) domains_ = std::move(domains);
    }

    std::unique_lock<std::mutex> commit_lock(std::string_view name) {
        std::mutex* m;
        {
            std::lock_guard lock(commit_locks_mu_);
            auto& slot = commit_locks_[std::string(name)];
            if (!slot) slot = std::make_unique<std::mutex>();
            // Never erased: a waiter may still hold the pointer when the site is removed, and
            // dropping it would let a second mutex for the same name run beside it.
            m = slot.get();
        }
        return std::unique_lock(*m);
    }

    void publish(const SiteRef& next) {
        std::unique_lock lock(mu_);
        sites_[next->name] = next;
    }

    // Shows a refused value in the site's status. Saving that is best effort: the refusal itself
    // is the answer the writer needs.
    Outcome refuse(std::unique_lock<std::mutex> guard, const SiteRef& cur, std::string_view field, int err, std::string reason) {
        auto next = std::make_shared<SiteRecord>(*cur);
        next->actual.error = refusal_text(field, reason);
        next->actual.error_from_write = true;
        next->actual.updated = Clock::now();
        if (Outcome out = persist(*next, cur.get()); !out.ok())
            spdlog::warn("site {}: the refusal is shown but not saved: {}", cur->name, out.reason);
        publish(next);
        guard.unlock();
        emit({Change::Kind::Actual, next->name, next->generation});
        return Outcome::fail(err, std::move(reason));
    }

    Outcome save_failure(const std::string& name, int e) const {
        return Outcome::fail(e, "could not save site '" + name + "' to " + (sites_dir_ / (name + std::string(kSuffix))).string() +
                                    ": " + errno_text(e));
    }

    // Temp file in the same dir, fsync, rename over: readers of the dir see the old file or the
    // new one, whole. The temp file is gone whether this fails or not.
    Outcome write_file(const SiteRecord& s) {
        const std::string text = render_site_file(s);
        const std::string file = s.name + std::string(kSuffix);
        std::string temp = (sites_dir_ / ("." + s.name + std::string(kTempMarker) + "XXXXXX")).string();
        auto fail = [&](int e) { return save_failure(s.name, e); };
        Fd fd(::mkostemp(temp.data(), O_CLOEXEC));
        if (!fd.valid()) return fail(errno);
        // Group-readable: an operator who opens the state dir to a monitoring group (chgrp, and
        // chmod 2750 so new files inherit the group) lets its read-only mounts read every site.
        // Nothing secret lives here: deploy_key_ref names a key, it is not one.
        int err = ::fchmod(fd.get(), 0640) == 0 ? 0 : errno;
        for (size_t done = 0; !err && done < text.size();) {
            const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
            if (n >= 0) done += static_cast<size_t>(n);
            else if (errno != EINTR) err = errno;
        }
        if (!err && ::fsync(fd.get()) != 0) err = errno;
        if (fd.close() != 0 && !err) err = errno;
        if (!err && ::renameat(AT_FDCWD, temp.c_str(), dir_fd_.get(), file.c_str()) != 0) err = errno;
        if (err) {
            ::unlink(temp.c_str());
            return fail(err);
        }
        return Outcome::success();
    }

    // Durable when it returns success. When only the final fsync of the dir fails, the new file
    // is already visible: `prev` is written back (or the new file removed) so that failing
    // changes nothing.
    Outcome persist(const SiteRecord& next, const SiteRecord* prev) {
        if (Outcome out = write_file(next); !out.ok()) return out;
        if (::fsync(dir_fd_.get()) == 0) return Outcome::success();
        const int e = errno;
        const std::string file = next.name + std::string(kSuffix);
        if (prev) {
            if (Outcome undo = write_file(*prev); !undo.ok()) spdlog::error("{}; it holds an unconfirmed change", undo.reason);
        } else if (::unlinkat(dir_fd_.get(), file.c_str(), 0) != 0) {
            spdlog::error("could not remove {} after a failed save: {}", (sites_dir_ / file).string(), errno_text(errno));
        }
        return save_failure(next.name, e);
    }

    void emit(const Change& change) {
        std::shared_ptr<const std::vector<Listener>> listeners;
        {
            std::lock_guard lock(listeners_mu_);
            listeners = listeners_;
        }
        for (const auto& l : *listeners) l(change);
    }

    // --- a read-only store follows the read-write one's files ---

    void start_watch() {
        inotify_fd_ = Fd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
        if (!inotify_fd_.valid()) throw StoreError("cannot watch " + sites_dir_.string() + ": " + errno_text(errno));
        if (::inotify_add_watch(inotify_fd_.get(), sites_dir_.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM) < 0)
            throw StoreError("cannot watch " + sites_dir_.string() + ": " + errno_text(errno));
        wake_fd_ = Fd(::eventfd(0, EFD_CLOEXEC));
        if (!wake_fd_.valid()) throw StoreError("cannot watch " + sites_dir_.string() + ": eventfd: " + errno_text(errno));
    }

    void follow() {
        alignas(inotify_event) char buf[16 * 1024];
        for (;;) {
            pollfd fds[2] = {{inotify_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
            if (::poll(fds, 2, -1) < 0) {
                if (errno == EINTR) continue;
                spdlog::error("stopped following {}: poll: {}", sites_dir_.string(), errno_text(errno));
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
                                      sites_dir_.string());
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
        for (auto& name : site_names()) names.insert(std::move(name));
        try {
            for (const auto& file : list_dir(nullptr)) names.insert(*site_of_file(file));
        } catch (const StoreError& e) {
            spdlog::warn("{}", e.what());
        }
        for (const auto& name : names) reload(name);
    }

    void reload(const std::string& name) {
        const std::string file = name + std::string(kSuffix);
        const std::string shown = (sites_dir_ / file).string();
        const SiteRef cur = site(name);
        SiteRef next;
        try {
            const auto text = read_file(dir_fd_.get(), file, shown);
            if (text) next = std::make_shared<const SiteRecord>(SiteFileReader(shown).read(*text, name));
        } catch (const StoreError& e) {
            spdlog::warn("keeping the previous state of site {}: {}", name, e.what());
            return;
        }
        if (!next) {
            if (!cur) return;
            {
                std::unique_lock lock(mu_);
                sites_.erase(name);
            }
            emit({Change::Kind::Removed, name, cur->generation});
            return;
        }
        if (cur && render_site_file(*cur) == render_site_file(*next)) return;
        publish(next);
        // Removed and created again between two looks: a different site under the same name.
        if (cur && cur->created != next->created) emit({Change::Kind::Removed, name, cur->generation});
        if (!cur || cur->created != next->created) {
            emit({Change::Kind::Created, name, next->generation});
            return;
        }
        if (desired_section(*cur) != desired_section(*next) || cur->generation != next->generation)
            emit({Change::Kind::Desired, name, next->generation});
        if (actual_section(*cur) != actual_section(*next)) emit({Change::Kind::Actual, name, next->generation});
    }

    const std::filesystem::path sites_dir_;
    const bool read_only_;
    const ValidationPolicy policy_;
    Fd lock_fd_;  // holds the flock (read-write only)
    Fd dir_fd_;   // sites/, for fsync and *at calls
    Fd inotify_fd_;
    Fd wake_fd_;

    mutable std::shared_mutex mu_;
    std::map<std::string, SiteRef, std::less<>> sites_;
    std::unordered_map<std::string, std::string> domains_;  // committed and reserved: domain -> site

    std::mutex commit_locks_mu_;
    std::unordered_map<std::string, std::unique_ptr<std::mutex>> commit_locks_;

    std::mutex listeners_mu_;
    std::shared_ptr<const std::vector<Listener>> listeners_ = std::make_shared<const std::vector<Listener>>();

    std::thread watcher_;
};

std::unique_ptr<Store> open_file_store(const FileStoreOptions& options) {
    return std::make_unique<FileStore>(options);
}

}  // namespace sitesfs
