// The filesystem and the store under concurrent load: many writers on one field and on many
// sites, mkdir/rmdir races, readers during writes. What must hold: no acknowledged write is lost
// (also across a restart), no read is torn, every failure is a documented errno, and the mount
// keeps answering (a watchdog fails the test, with the daemon's stacks, if it stops).
//
// SITESFS_CONCURRENCY_WRITES sets the writes (race rounds) per thread of every test. By default
// the writers on one field and on different sites make the 8 x 1,000 writes; the readers'
// test writes less (its reads are what it counts), and a long run raises it:
// SITESFS_CONCURRENCY_WRITES=1000 ctest -R Concurrency
#include <fcntl.h>
#include <gtest/gtest-spi.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/mount_fixture.hpp"
#include "tests/integration/mount_watchdog.hpp"

namespace sitesfs::it {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kWriters = 8;

// Iterations per thread: SITESFS_CONCURRENCY_WRITES when set, else the test's own default.
int writes_per_writer(int by_default) {
    if (const char* v = std::getenv("SITESFS_CONCURRENCY_WRITES")) {
        const int n = std::atoi(v);
        if (n > 0) return n;
    }
    return by_default;
}

// Runs body(0) .. body(n-1) on n threads and waits for all of them.
void on_threads(int n, const std::function<void(int)>& body) {
    std::vector<std::thread> threads;
    for (int t = 0; t < n; ++t) threads.emplace_back(body, t);
    for (auto& t : threads) t.join();
}

// The arguments streamed into one string (GCC 12 has no <format>).
template <typename... Args>
std::string cat(const Args&... args) {
    std::ostringstream s;
    (s << ... << args);
    return s.str();
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string chomp(std::string s) {
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

// One open(O_WRONLY|O_TRUNC)/write/close; acknowledged when all three succeeded (err == 0).
struct Attempt {
    std::string value;
    Clock::time_point start, end;
    int err = 0;
};

class Concurrency : public MountTest {
protected:
    void SetUp() override {
        MountTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        dog_ = std::make_unique<MountWatchdog>(mnt(), daemon_pid());
    }
    void TearDown() override {
        if (dog_) std::cout << "[counts] watchdog probes answered: " << dog_->probes() << "\n";
        dog_.reset();  // reports a hang as this test's failure
        MountTest::TearDown();
    }
    void restart_watched() {
        ASSERT_NO_FATAL_FAILURE(restart());
        dog_->watch(daemon_pid());
    }
    // The sites as `ls` lists them, as .sites.toml exports them, and as the store keeps them.
    std::set<std::string> listed() const {
        const auto lines = split_lines(sh("ls").out);
        return {lines.begin(), lines.end()};
    }
    std::set<std::string> exported() const {
        std::set<std::string> out;
        for (const auto& line : split_lines(read(".sites.toml")))
            if (line.starts_with("[sites.") && line.ends_with("]")) out.insert(line.substr(7, line.size() - 8));
        return out;
    }
    std::set<std::string> stored() const {
        std::set<std::string> out;
        for (const auto& e : stdfs::directory_iterator(state() / "sites")) {
            const auto name = e.path().filename().string();
            if (name.ends_with(".toml") && !name.starts_with(".")) out.insert(name.substr(0, name.size() - 5));
        }
        return out;
    }

    std::unique_ptr<MountWatchdog> dog_;
};

// 8 threads write unique values to the same field. Writes to one site are serialized by the
// store, so each acknowledged write is one new generation, and the field ends with one of them.
TEST_F(Concurrency, ManyWritersOnOneFieldKeepTheLastAcknowledgedValue) {
    ASSERT_NO_FATAL_FAILURE(make_site("blog", "blog.example.com"));
    const int generation0 = std::stoi(status_line("blog", "generation"));
    const int n = writes_per_writer(1000);
    std::vector<std::vector<Attempt>> attempts(kWriters);
    const auto t0 = Clock::now();
    on_threads(kWriters, [&](int w) {
        for (int i = 0; i < n && !dog_->tripped(); ++i) {
            Attempt a{cat("w", w, "-i", i, ".example.com"), Clock::now(), {}, 0};
            a.err = write_errno("blog/domain", a.value + "\n");
            a.end = Clock::now();
            attempts[w].push_back(std::move(a));
        }
    });
    const double took = seconds_since(t0);

    std::map<std::string, const Attempt*> by_value;
    int acked = 0;
    Clock::time_point last_start{};
    for (const auto& mine : attempts)
        for (const auto& a : mine) {
            by_value[a.value] = &a;
            if (a.err != 0) {
                ADD_FAILURE() << "writing " << a.value << ": " << std::strerror(a.err) << " (every value is valid)";
                continue;
            }
            ++acked;
            last_start = std::max(last_start, a.start);
        }
    std::cout << "[counts] one field, " << kWriters << " writers: " << kWriters * n << " writes attempted, " << acked
              << " acknowledged, in " << took << " s\n";
    ASSERT_EQ(acked, kWriters * n);

    // Which value may be last: every acknowledged write took effect at one instant inside its
    // [start, end]. If an acknowledged write B started after write A ended, B took effect after A,
    // and B's value (all values are distinct) replaced A's. So the final value must come from an
    // acknowledged write that had not ended when the last acknowledged write started (end >=
    // last_start). That is sound whatever the scheduling; overlapping writes may finish in any order.
    const std::string final_value = chomp(read("blog/domain"));
    const auto it = by_value.find(final_value);
    ASSERT_NE(it, by_value.end()) << "the field holds " << final_value << ", which no writer wrote";
    EXPECT_EQ(it->second->err, 0) << final_value << " was not acknowledged";
    EXPECT_GE(it->second->end, last_start) << final_value << " ended " << seconds_since(it->second->end)
                                           << " s ago, before a later acknowledged write started: that write was lost";
    // Each acknowledged write of a new value is exactly one generation: none lost, none doubled.
    EXPECT_EQ(std::stoi(status_line("blog", "generation")), generation0 + acked);

    ASSERT_NO_FATAL_FAILURE(restart_watched());
    EXPECT_EQ(chomp(read("blog/domain")), final_value) << "after a restart";
    EXPECT_EQ(std::stoi(status_line("blog", "generation")), generation0 + acked) << "after a restart";
}

// 8 threads, one site each, several fields each: every field ends with its writer's last
// acknowledged value, before and after a restart.
TEST_F(Concurrency, ManyWritersOnDifferentSitesEachKeepTheirLastValues) {
    for (int w = 0; w < kWriters; ++w)
        ASSERT_NO_FATAL_FAILURE(make_site(cat("site", w), cat("site", w, ".example.com")));
    const int generation0 = std::stoi(status_line("site0", "generation"));
    const int n = writes_per_writer(1000);
    // Every value is new for its field, so each acknowledged write is one generation.
    const std::vector<std::pair<std::string, std::function<std::string(int, int)>>> fields{
        {"domain", [](int w, int i) { return cat("w", w, "-i", i, ".example.com"); }},
        {"branch", [](int w, int i) { return cat("release/w", w, "-", i); }},
        {"path", [](int w, int i) { return cat("public/w", w, "/", i); }},
        {"repo", [](int w, int i) { return cat("https://github.com/user/w", w, "-", i); }},
        {"commit", [](int w, int i) { return cat(std::hex, std::setfill('0'), std::setw(4), w, std::setw(8), i); }},
    };
    std::vector<std::map<std::string, std::string>> last(kWriters);
    std::vector<std::vector<std::string>> failures(kWriters);
    std::vector<int> acked(kWriters, 0);
    const auto t0 = Clock::now();
    on_threads(kWriters, [&](int w) {
        const std::string site = cat("site", w);
        for (int i = 0; i < n && !dog_->tripped(); ++i) {
            const auto& [field, make] = fields[static_cast<size_t>(i) % fields.size()];
            const std::string value = make(w, i);
            if (const int err = write_errno(site + "/" + field, value + "\n"); err != 0) {
                failures[w].push_back(site + "/" + field + " = " + value + ": " + std::strerror(err));
                continue;
            }
            last[w][field] = value;
            ++acked[w];
        }
    });
    const double took = seconds_since(t0);
    int total = 0;
    for (int w = 0; w < kWriters; ++w) {
        total += acked[w];
        for (const auto& f : failures[w]) ADD_FAILURE() << f << " (every value is valid)";
    }
    std::cout << "[counts] " << kWriters << " sites, one writer each: " << kWriters * n << " writes attempted, "
              << total << " acknowledged, in " << took << " s\n";

    auto check_all = [&](const std::string& when) {
        for (int w = 0; w < kWriters; ++w) {
            const std::string site = cat("site", w);
            for (const auto& [field, value] : last[w]) {
                // `commit` reads the commit served; a pin shows in status as what is desired.
                if (field == "commit") EXPECT_EQ(status_line(site, "desired"), "commit " + value) << site << " " << when;
                else EXPECT_EQ(chomp(read(site + "/" + field)), value) << site << " " << when;
            }
            EXPECT_EQ(std::stoi(status_line(site, "generation")), generation0 + acked[w]) << site << " " << when;
        }
    };
    check_all("before the restart");
    ASSERT_NO_FATAL_FAILURE(restart_watched());
    check_all("after a restart");
}

// Threads create, remove and write into the same few sites. Every outcome is one that
// docs/filesystem.md names for the situation, and afterwards the listing, the export and the
// store agree, each listed site has exactly its files, and a restart brings back the same.
TEST_F(Concurrency, MkdirRmdirAndWritesRaceOnTheSameSites) {
    const std::vector<std::string> names{"r0", "r1", "r2"};
    constexpr int kThreads = 6;
    const int rounds = writes_per_writer(1000);
    enum Op { Mkdir, Rmdir, WriteDomain, WriteBranch, UnlinkField, TempFile, kOps };
    const char* op_names[kOps] = {"mkdir", "rmdir", "write domain", "write branch", "unlink a field", "temp file"};
    // What each operation may answer while another thread may remove or create the site at any moment.
    const std::set<int> allowed[kOps] = {
        {0, EEXIST},             // mkdir
        {0, ENOENT, ENOTEMPTY},  // rmdir (ENOTEMPTY: another thread's temporary file is in it)
        {0, ENOENT},             // open/write/close of a field of a site that is gone
        {0, ENOENT},
        {0, ENOENT},             // unlinking a field changes nothing; ENOENT once the site is gone
        {0, ENOENT},             // create, write, unlink an editor's temporary file
    };
    std::mutex mu;
    std::map<std::pair<int, int>, int> outcomes;  // (op, errno) -> count
    on_threads(kThreads, [&](int t) {
        std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 17u);
        std::map<std::pair<int, int>, int> mine;
        for (int i = 0; i < rounds && !dog_->tripped(); ++i) {
            const std::string& name = names[rng() % names.size()];
            const int op = static_cast<int>(rng() % kOps);
            const auto at = (mnt() / name).string();
            int err = 0;
            switch (op) {
            case Mkdir: err = ::mkdir(at.c_str(), 0755) == 0 ? 0 : errno; break;
            case Rmdir: err = ::rmdir(at.c_str()) == 0 ? 0 : errno; break;
            case WriteDomain: err = write_errno(name + "/domain", cat(name, "-t", t, "-", i, ".example.com\n")); break;
            case WriteBranch: err = write_errno(name + "/branch", cat("t", t, "-", i, "\n")); break;
            case UnlinkField: err = ::unlink((at + "/path").c_str()) == 0 ? 0 : errno; break;
            case TempFile: {
                const std::string temp = cat(name, "/.domain.t", t, ".swp");
                err = write_errno(temp, "scratch\n", O_CREAT | O_TRUNC);
                if (err == 0) {
                    const int gone = ::unlink((mnt() / temp).c_str()) == 0 ? 0 : errno;
                    if (gone != 0 && gone != ENOENT) err = gone;
                }
                break;
            }
            }
            ++mine[{op, err}];
        }
        std::lock_guard lock(mu);
        for (const auto& [k, v] : mine) outcomes[k] += v;
    });
    int total = 0;
    std::string table;
    for (const auto& [key, count] : outcomes) {
        const auto [op, err] = key;
        total += count;
        table += cat("  ", std::left, std::setw(15), op_names[op], " ", std::setw(26), err ? std::strerror(err) : "ok", " ", count, "\n");
        EXPECT_TRUE(allowed[op].contains(err)) << op_names[op] << " answered " << std::strerror(err) << " " << count << " times";
    }
    std::cout << "[counts] mkdir/rmdir race, " << kThreads << " threads on " << names.size() << " names: " << total
              << " operations\n" << table;
    for (int op : {Mkdir, Rmdir}) EXPECT_GT((outcomes[{op, 0}]), 0) << op_names[op] << " never succeeded: no race was run";

    // Invalidations of the kernel's caches are asynchronous: give them a moment.
    EXPECT_TRUE(eventually([&] { return listed() == stored() && exported() == stored(); }, 2s))
        << "ls: " << sh("ls | tr '\\n' ' '").out << "\n.sites.toml: " << read(".sites.toml");
    std::map<std::string, std::string> values;
    for (const auto& site : stored()) {
        // Sites made here list the settings created in them and not unlinked since; nothing else
        // (no temporary file is left).
        for (const auto& f : split_lines(sh("ls -A " + site).out)) {
            EXPECT_NE(std::find(kSiteFiles.begin(), kSiteFiles.end(), f), kSiteFiles.end()) << site << " lists " << f;
            values[site + "/" + f] = read(site + "/" + f);
        }
        const std::string domain = values.contains(site + "/domain") ? chomp(values[site + "/domain"]) : "";
        EXPECT_TRUE(domain.empty() || domain.starts_with(site + "-t")) << site << " holds another site's domain " << domain;
    }
    const auto before = stored();
    ASSERT_NO_FATAL_FAILURE(restart_watched());
    EXPECT_EQ(listed(), before) << "after a restart";
    EXPECT_EQ(exported(), before) << "after a restart";
    for (const auto& [file, value] : values) EXPECT_EQ(read(file), value) << file << " after a restart";
}

// A file opened before its site was removed belongs to that site, not to a new site made under
// the same name afterwards (maybe for someone else): its reads and its commits answer ENOENT.
TEST_F(Concurrency, AFileOpenedBeforeItsSiteWasRemovedNeverTouchesTheSiteMadeAfterIt) {
    ASSERT_NO_FATAL_FAILURE(make_site("blog", "old.example.com"));
    const int writer = ::open((mnt() / "blog/domain").c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    ASSERT_GE(writer, 0) << std::strerror(errno);
    const int unfinished = ::open((mnt() / "blog/branch").c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    ASSERT_GE(unfinished, 0) << std::strerror(errno);
    ASSERT_EQ(::write(unfinished, "dev", 3), 3) << std::strerror(errno);  // no newline: commits at close
    const int reader = ::open((mnt() / "blog/repo").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(reader, 0) << std::strerror(errno);

    // Syscalls, not a shell: a child process inherits the descriptors until its exec closes them,
    // and that close is a FLUSH, which would commit the value before the rmdir.
    ASSERT_EQ(::rmdir((mnt() / "blog").c_str()), 0) << std::strerror(errno);
    ASSERT_NO_FATAL_FAILURE(make_site("blog", "new.example.com", "user/new"));
    const std::string value = "stale.example.com\n";
    errno = 0;
    EXPECT_EQ(::write(writer, value.data(), value.size()), -1) << "the old site's writer committed into the new site";
    EXPECT_EQ(errno, ENOENT) << std::strerror(errno);
    ::close(writer);
    errno = 0;
    EXPECT_EQ(::close(unfinished), -1) << "the old site's writer committed into the new site at close";
    EXPECT_EQ(errno, ENOENT) << std::strerror(errno);
    EXPECT_EQ(read("blog/branch"), "\n");
    char buf[256];
    errno = 0;
    EXPECT_EQ(::pread(reader, buf, sizeof buf, 0), -1) << "the old site's reader read the new site";
    EXPECT_EQ(errno, ENOENT) << std::strerror(errno);
    ::close(reader);
    EXPECT_EQ(read("blog/domain"), "new.example.com\n");
    EXPECT_EQ(read("blog/repo"), "user/new\n");
    EXPECT_EQ(status_line("blog", "generation"), "3");
}

// Readers during writes, at a scale the sequential HeldAndFreshReadersAlwaysSeeWholeCurrentValues
// (tree_test.cpp) does not reach: values of different lengths change while fresh opens and
// long-held descriptors (pread at 0) read. A read is whole (one value written, or the initial one,
// with its newline), never a mix, never cut short, never an old tail after a shorter value.
TEST_F(Concurrency, ReadersDuringWritesOnlyEverSeeWholeValues) {
    ASSERT_NO_FATAL_FAILURE(make_site("blog", "blog.example.com"));
    ASSERT_EQ(write_errno("blog/branch", "main\n"), 0);
    const int n = writes_per_writer(150);
    struct Field {
        std::string name, initial;
        std::function<std::string(int, int)> value;  // lengths 4..40 in turn
    };
    const std::vector<Field> fields{
        {"domain", "blog.example.com",
         [](int w, int i) {
             return i % 3 == 0 ? cat("a", w, i, ".io")
                  : i % 3 == 1 ? cat("a-much-longer-host-name-", w, "-", i, ".example.com")
                               : cat("mid-", w, "-", i, ".example.org");
         }},
        {"branch", "main",
         [](int w, int i) { return i % 2 ? cat("b", w, i) : cat("feature/a-long-branch-name-", w, "-", i); }},
    };
    constexpr int kWritersPerField = 2;
    std::vector<std::set<std::string>> valid(fields.size());
    for (size_t f = 0; f < fields.size(); ++f) {
        valid[f].insert(fields[f].initial + "\n");
        for (int w = 0; w < kWritersPerField; ++w)
            for (int i = 0; i < n; ++i) valid[f].insert(fields[f].value(w, i) + "\n");
    }

    std::atomic<bool> writing{true};
    std::atomic<long> fresh_reads{0}, held_reads{0}, writes{0};
    std::mutex mu;
    std::vector<std::string> torn;
    long torn_count = 0;
    auto judge = [&](size_t f, const std::string& got, const char* how) {
        if (valid[f].contains(got)) return;
        std::string shown = got;
        std::replace(shown.begin(), shown.end(), '\0', '@');
        std::lock_guard lock(mu);
        ++torn_count;
        if (torn.size() < 10 || (got.size() > 0 && torn.size() < 20)) torn.push_back(cat(how, " read of ", fields[f].name, ": '", shown, "'"));
    };
    std::vector<std::thread> threads;
    for (size_t f = 0; f < fields.size(); ++f) {
        const auto path = mnt() / "blog" / fields[f].name;
        threads.emplace_back([&, f, path] {  // fresh opens, read to the end
            while (writing && !dog_->tripped()) {
                const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                    judge(f, std::string("<open: ") + std::strerror(errno) + ">", "fresh");
                    continue;
                }
                std::string got;
                char buf[4096];
                for (ssize_t r; (r = ::read(fd, buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(r));
                ::close(fd);
                judge(f, got, "fresh");
                ++fresh_reads;
            }
        });
        threads.emplace_back([&, f, path] {  // one descriptor held throughout
            const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                judge(f, std::string("<open: ") + std::strerror(errno) + ">", "held");
                return;
            }
            char buf[4096];
            while (writing && !dog_->tripped()) {
                const ssize_t r = ::pread(fd, buf, sizeof buf, 0);
                judge(f, r < 0 ? std::string("<pread: ") + std::strerror(errno) + ">" : std::string(buf, static_cast<size_t>(r)), "held");
                ++held_reads;
            }
            ::close(fd);
        });
    }
    std::vector<std::string> failed;
    on_threads(static_cast<int>(fields.size()) * kWritersPerField, [&](int t) {
        const auto& field = fields[static_cast<size_t>(t) / kWritersPerField];
        const int w = t % kWritersPerField;
        for (int i = 0; i < n && !dog_->tripped(); ++i) {
            if (const int err = write_errno("blog/" + field.name, field.value(w, i) + "\n"); err != 0) {
                std::lock_guard lock(mu);
                failed.push_back(field.value(w, i) + ": " + std::strerror(err));
            }
            ++writes;
        }
    });
    writing = false;
    for (auto& t : threads) t.join();
    std::cout << "[counts] readers during writes: " << writes << " writes, " << fresh_reads << " fresh reads and "
              << held_reads << " held-descriptor reads checked\n";
    EXPECT_TRUE(failed.empty()) << failed.size() << " writes failed, e.g. " << failed.front();
    EXPECT_TRUE(torn.empty()) << torn_count << " reads were not one whole value:\n" << [&] {
        std::string s;
        for (const auto& t : torn) s += "  " + t + "\n";
        return s;
    }();
    EXPECT_GT(fresh_reads.load(), 0);
    EXPECT_GT(held_reads.load(), 0);
}

// The watchdog itself: a daemon that stops answering (SIGSTOP stands in for a deadlock) is
// reported with its stacks, and the connection is aborted so that callers blocked on the mount
// fail instead of hanging the test.
class Watchdog : public MountTest {};

TEST_F(Watchdog, ReportsAMountThatStopsAnsweringAndUnblocksIt) {
    std::optional<MountWatchdog> dog(std::in_place, mnt(), daemon_pid(), 2s, 100ms);
    ASSERT_TRUE(eventually([&] { return dog->probes() >= 2; }, 10s)) << "the watchdog never saw the mount answer";
    ASSERT_EQ(kill(daemon_pid(), SIGSTOP), 0);
    // Every thread stopped first: one still on its way to the stop would serve a queued request.
    ASSERT_TRUE(eventually([&] {
        std::error_code ec;
        for (const auto& t : stdfs::directory_iterator("/proc/" + std::to_string(daemon_pid()) + "/task", ec)) {
            const std::string stat = slurp(t.path() / "stat");
            const auto paren = stat.rfind(')');
            if (paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'T') return false;
        }
        return !ec;
    }, 10s));
    // A caller stuck on the hung mount, as the test's own threads would be.
    std::atomic<int> blocked_errno{-1};
    std::thread blocked([&] {
        struct statfs sfs;
        blocked_errno = ::statfs(mnt().c_str(), &sfs) == 0 ? 0 : errno;
    });
    const bool tripped = eventually([&] { return dog->tripped(); }, 90s, 100ms);
    blocked.join();  // returns once the connection is aborted
    kill(daemon_pid(), SIGCONT);
    // The aborted connection ends the daemon: it is no longer the fixture's to stop.
    kill9();
    ASSERT_TRUE(tripped);
    // ECONNABORTED for a request that was queued when the connection was aborted.
    EXPECT_TRUE(blocked_errno == ECONNABORTED || blocked_errno == ENOTCONN) << std::strerror(blocked_errno.load());
    const std::string report = dog->report();
    EXPECT_NE(report.find("stopped answering for 2 s"), std::string::npos) << report;
    EXPECT_NE(report.find("deadlock?"), std::string::npos) << report;
    EXPECT_NE(report.find("thread stacks of the daemon"), std::string::npos) << report;
    EXPECT_NE(report.find("wchan"), std::string::npos) << "no per-thread kernel stacks:\n" << report;
    EXPECT_NE(report.find("aborted FUSE connection"), std::string::npos) << report;
    ::testing::TestPartResultArray failures;
    {
        ::testing::ScopedFakeTestPartResultReporter intercept(
            ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ALL_THREADS, &failures);
        dog.reset();
    }
    ASSERT_EQ(failures.size(), 1) << "the watchdog reports a hang as exactly one test failure";
    EXPECT_NE(std::string(failures.GetTestPartResult(0).message()).find("stopped answering"), std::string::npos);
}

}  // namespace
}  // namespace sitesfs::it
