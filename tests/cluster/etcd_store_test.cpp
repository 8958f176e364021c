// EtcdStore against a real 3-member etcd (Debian's etcd-server) on loopback: two stores stand for
// two hosts, each with its own client, as two sitesfs daemons would be.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <mutex>
#include <thread>

#include "common/text.hpp"
#include "schemas/site_schema.hpp"
#include "store/etcd/etcd_store.hpp"
#include "store/site_file.hpp"
#include "tests/support/cannot_run.hpp"
#include "tests/support/etcd.hpp"

namespace sitesfs {
namespace {

namespace fsys = std::filesystem;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

std::string value_of(const Store& store, const std::string& site, FieldName field) {
    const SiteRef s = store.site(site);
    return s ? s->field(field).value : "<no site>";
}

class EtcdStoreTest : public ::testing::Test {
protected:
    // Fixtures for TLS or auth clusters start theirs with these options.
    virtual it::EtcdCluster::Options cluster_options() const { return {}; }

    void SetUp() override {
        if (!fsys::exists("/usr/bin/etcd") || !fsys::exists("/usr/bin/etcdctl"))
            SITESFS_CANNOT_RUN() << "etcd-server/etcd-client not installed (scripts/install-deps)";
        char tmpl[] = "/tmp/sitesfs-etcd-store-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
        dir_ = tmpl;
        cluster_ = std::make_unique<it::EtcdCluster>(dir_, cluster_options());
        std::string why;
        ASSERT_TRUE(cluster_->start(&why)) << why;
    }
    void TearDown() override {
        stores_.clear();
        cluster_.reset();
        if (!dir_.empty()) fsys::remove_all(dir_);
    }

    EtcdStoreOptions options(const std::string& host, std::vector<std::string> endpoints = {}) const {
        EtcdStoreOptions o;
        o.client.endpoints = endpoints.empty() ? cluster_->endpoints() : endpoints;
        o.client.timeout = 2s;
        o.host = host;
        o.lease_ttl = 2s;
        return o;
    }
    Store& open(const std::string& host, std::vector<std::string> endpoints = {}) {
        stores_.push_back(open_etcd_store(options(host, std::move(endpoints))));
        return *stores_.back();
    }

    fsys::path dir_;
    std::unique_ptr<it::EtcdCluster> cluster_;
    std::vector<std::unique_ptr<Store>> stores_;
};

TEST_F(EtcdStoreTest, AWriteOnOneHostIsSeenByTheOther) {
    Store& a = open("a");
    Store& b = open("b");
    ASSERT_TRUE(a.create_site("blog").ok());
    const Outcome out = a.write_field("blog", "domain", "blog.example.com\n");
    ASSERT_TRUE(out.ok()) << out.reason;
    // The writer's own mount shows it when write() returns; the other host once the watch brings it.
    EXPECT_EQ(value_of(a, "blog", "domain"), "blog.example.com");
    EXPECT_TRUE(eventually([&] { return value_of(b, "blog", "domain") == "blog.example.com"; })) << value_of(b, "blog", "domain");
    EXPECT_EQ(b.site("blog")->generation, a.site("blog")->generation);

    // Either host's change goes through the same guard.
    ASSERT_TRUE(b.write_field("blog", "branch", "main").ok());
    EXPECT_TRUE(eventually([&] { return value_of(a, "blog", "branch") == "main"; }));
    EXPECT_EQ(value_of(a, "blog", "domain"), "blog.example.com");
}

// Both requests reach every host: a redeploy as a new generation of the same settings, a refresh
// as an event each host hears once (and the asking host at once), storing nothing of the site.
TEST_F(EtcdStoreTest, ARedeployAndARefreshReachEveryHost) {
    Store& a = open("a");
    Store& b = open("b");
    // The stores outlive this body (the fixture closes them), and their watch threads call these.
    const auto refreshes_a = std::make_shared<std::atomic<int>>(0);
    const auto refreshes_b = std::make_shared<std::atomic<int>>(0);
    a.subscribe([refreshes_a](const Change& c) { *refreshes_a += c.kind == Change::Kind::Refresh && c.site == "blog"; });
    b.subscribe([refreshes_b](const Change& c) { *refreshes_b += c.kind == Change::Kind::Refresh && c.site == "blog"; });
    ASSERT_TRUE(a.create_site("blog").ok());
    ASSERT_TRUE(a.write_field("blog", "domain", "blog.example.com").ok());
    const uint64_t generation = a.site("blog")->generation;
    ASSERT_TRUE(eventually([&] { return b.site("blog") && b.site("blog")->generation == generation; }));
    ASSERT_TRUE(a.write_field("blog", "ctl", "refresh").ok());
    EXPECT_EQ(*refreshes_a, 1) << "the asking host, when write() returns";
    EXPECT_TRUE(eventually([&] { return *refreshes_b == 1; })) << *refreshes_b;
    EXPECT_EQ(a.site("blog")->generation, generation) << "a refresh stores nothing of the site";
    EXPECT_EQ(b.site("blog")->generation, generation);
    ASSERT_TRUE(b.write_field("blog", "ctl", "refresh").ok());
    EXPECT_TRUE(eventually([&] { return *refreshes_a == 2 && *refreshes_b == 2; })) << *refreshes_a << " " << *refreshes_b;

    ASSERT_TRUE(a.write_field("blog", "ctl", "redeploy").ok());
    EXPECT_EQ(a.site("blog")->generation, generation + 1);
    EXPECT_TRUE(eventually([&] { return b.site("blog") && b.site("blog")->generation == generation + 1; }));
    EXPECT_EQ(value_of(b, "blog", "domain"), "blog.example.com") << "the same settings";

    // A host that starts later does not hear old requests again, and a removed site leaves none.
    Store& c = open("c");
    const auto refreshes_c = std::make_shared<std::atomic<int>>(0);
    c.subscribe([refreshes_c](const Change& ch) { *refreshes_c += ch.kind == Change::Kind::Refresh; });
    ASSERT_TRUE(a.remove_site("blog").ok());
    EXPECT_TRUE(eventually([&] { return c.site("blog") == nullptr; }));
    EXPECT_EQ(*refreshes_c, 0);
    EXPECT_EQ(*refreshes_a, 2);
    EXPECT_TRUE(eventually([&] { return b.site("blog") == nullptr; }));
    EXPECT_EQ(b.write_field("blog", "ctl", "refresh").err, ENOENT);
    EXPECT_EQ(cluster_->etcdctl({"get", "--prefix", "--keys-only", "/sitesfs/refresh/"}), "");
}

TEST_F(EtcdStoreTest, ADomainIsClaimedOnceAcrossTheCluster) {
    Store& a = open("a");
    Store& b = open("b");
    ASSERT_TRUE(a.create_site("one").ok());
    ASSERT_TRUE(a.create_site("two").ok());
    ASSERT_TRUE(eventually([&] { return b.site("two") != nullptr; }));
    for (int round = 0; round < 10; ++round) {
        const std::string domain = "race" + std::to_string(round) + ".example.com";
        std::atomic<int> go{0};
        Outcome on_a, on_b;
        std::thread ta([&] { while (go.load() == 0) {} on_a = a.write_field("one", "domain", domain); });
        std::thread tb([&] { while (go.load() == 0) {} on_b = b.write_field("two", "domain", domain); });
        go = 1;
        ta.join();
        tb.join();
        EXPECT_NE(on_a.ok(), on_b.ok()) << "round " << round << ": a " << on_a.reason << " / b " << on_b.reason;
        const Outcome& lost = on_a.ok() ? on_b : on_a;
        EXPECT_EQ(lost.err, EEXIST) << lost.reason;
        EXPECT_THAT(lost.reason, HasSubstr(domain));
    }
}

TEST_F(EtcdStoreTest, StatusShowsEveryPlacedHostAndGoneHosts) {
    Store& a = open("a");
    Store& b = open("b");
    ASSERT_TRUE(a.create_site("blog").ok());
    ASSERT_TRUE(a.write_field("blog", "repo", "owner/blog").ok());
    ASSERT_TRUE(a.write_field("blog", "domain", "blog.example.com").ok());
    ASSERT_TRUE(eventually([&] { return b.site("blog") && b.site("blog")->generation == a.site("blog")->generation; }));
    const uint64_t gen = a.site("blog")->generation;
    ActualState live;
    live.state = SiteState::live;
    live.commit = std::string(40, 'a');
    ASSERT_TRUE(a.report("blog", gen, live).ok());
    // Only a is live: the site is not live until b is.
    ASSERT_TRUE(eventually([&] { return b.site("blog")->reports.size() == 2 && b.site("blog")->reports[0].actual.state == SiteState::live; }));
    EXPECT_NE(site_state(*b.site("blog")), SiteState::live);
    ASSERT_TRUE(b.report("blog", gen, live).ok());
    // a's watch may bring b's registration after its own writes (those a applies at once).
    ASSERT_TRUE(eventually([&] { return a.site("blog")->reports.size() == 2 && site_state(*a.site("blog")) == SiteState::live; }));
    const std::string status = find_field("status")->render(*a.site("blog"));
    EXPECT_THAT(status, HasSubstr("host: a live " + live.commit));
    EXPECT_THAT(status, HasSubstr("host: b live " + live.commit));

    // b stops: its lease goes with it, and a shows it gone.
    stores_.pop_back();
    ASSERT_TRUE(eventually([&] { return site_state(*a.site("blog")) != SiteState::live; }));
    EXPECT_THAT(find_field("status")->render(*a.site("blog")), HasSubstr("host: b gone"));
    EXPECT_THAT(a.describe(), HasSubstr("member: b gone"));
    EXPECT_THAT(a.describe(), HasSubstr("member: a alive"));
}

TEST_F(EtcdStoreTest, PlacementLimitsTheHostsASiteWaitsFor) {
    EtcdStoreOptions oa = options("a");
    oa.labels = {"eu"};
    stores_.push_back(open_etcd_store(oa));
    Store& a = *stores_.back();
    Store& b = open("b");
    ASSERT_TRUE(a.create_site("blog").ok());
    ASSERT_TRUE(a.write_field("blog", "hosts", "label:eu").ok());
    ASSERT_TRUE(eventually([&] { return value_of(b, "blog", "hosts") == "label:eu"; }));
    ASSERT_EQ(b.site("blog")->reports.size(), 1u);
    EXPECT_EQ(b.site("blog")->reports[0].host, "a");
}

TEST_F(EtcdStoreTest, AWatchThatMissedACompactionRelists) {
    Store& a = open("a", {cluster_->endpoint(0)});
    // b talks to the third member only, which is stopped while a writes and etcd compacts.
    Store& b = open("b", {cluster_->endpoint(2)});
    ASSERT_TRUE(a.create_site("blog").ok());
    ASSERT_TRUE(eventually([&] { return b.site("blog") != nullptr; }));
    cluster_->stop_member(2);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(a.write_field("blog", "branch", "b" + std::to_string(i)).ok());
    ASSERT_TRUE(a.create_site("shop").ok());
    ASSERT_TRUE(a.write_field("shop", "domain", "shop.example").ok());
    ASSERT_TRUE(a.write_field("shop", "branch", "live").ok());
    ASSERT_TRUE(a.remove_site("blog").ok());
    std::string why;
    ASSERT_TRUE(cluster_->compact(&why)) << why;
    ASSERT_TRUE(cluster_->restart_member(2, &why)) << why;
    EXPECT_TRUE(eventually([&] { return b.site("shop") != nullptr && b.site("blog") == nullptr; }, 15000ms))
        << b.describe();
    // b's view equals a linearizable read (etcdctl's default), site by site and field by field.
    const std::string prefix = "/sitesfs/sites/";
    std::vector<std::string> names;
    const std::string keys = cluster_->etcdctl({"get", "--prefix", "--keys-only", prefix});
    for (const auto key : split(keys, '\n'))
        if (!key.empty()) names.emplace_back(key.substr(prefix.size()));
    EXPECT_EQ(b.site_names(), names);
    for (const auto& name : names) {
        const SiteRecord held = parse_desired_value(cluster_->etcdctl({"get", "--print-value-only", prefix + name}), name, prefix + name);
        const SiteRef seen = b.site(name);
        ASSERT_NE(seen, nullptr) << name;
        EXPECT_EQ(render_desired_value(*seen), render_desired_value(held)) << name;
    }
    EXPECT_EQ(value_of(b, "shop", "branch"), "live");
}

TEST_F(EtcdStoreTest, QuorumLostWritesFailInBoundedTimeAndReadsCarryOn) {
    Store& a = open("a");
    ASSERT_TRUE(a.create_site("blog").ok());
    ASSERT_TRUE(a.write_field("blog", "branch", "main").ok());
    cluster_->kill_member(1);
    cluster_->kill_member(2);
    const auto start = std::chrono::steady_clock::now();
    const Outcome out = a.write_field("blog", "branch", "next");
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(out.ok());
    EXPECT_TRUE(out.err == kUnknownOutcomeErrno || out.err == kStoreUnreachableErrno) << out.err << " " << out.reason;
    EXPECT_LT(took, 2s + 3s);
    // A refresh etcd cannot take is not asked here either: the writer hears the one answer.
    const auto refreshes = std::make_shared<std::atomic<int>>(0);
    a.subscribe([refreshes](const Change& c) { *refreshes += c.kind == Change::Kind::Refresh; });
    const Outcome refresh = a.write_field("blog", "ctl", "refresh");
    EXPECT_EQ(refresh.err, kStoreUnreachableErrno) << refresh.reason;
    EXPECT_NE(refresh.reason.find("etcd did not take the refresh"), std::string::npos) << refresh.reason;
    EXPECT_EQ(*refreshes, 0);
    // Reads never wait on etcd.
    EXPECT_EQ(value_of(a, "blog", "domain"), "");
    EXPECT_FALSE(a.site("blog")->store_note.empty());
    std::string why;
    ASSERT_TRUE(cluster_->restart_member(1, &why)) << why;
    ASSERT_TRUE(cluster_->restart_member(2, &why)) << why;
    // The unknown write settles: the mount shows what etcd holds, whichever it is.
    ASSERT_TRUE(eventually([&] { return a.site("blog")->store_note.find("read back") != std::string::npos || out.err != kUnknownOutcomeErrno; }, 20000ms))
        << a.site("blog")->store_note;
    const std::string held = cluster_->etcdctl({"get", "--print-value-only", "/sitesfs/sites/blog"});
    const bool made = held.find("branch = \"next\"") != std::string::npos;
    EXPECT_TRUE(eventually([&] { return value_of(a, "blog", "branch") == (made ? "next" : "main"); }, 10000ms));
    // And writes work again.
    EXPECT_TRUE(eventually([&] { return a.write_field("blog", "branch", "after").ok(); }, 15000ms));
}

// What one writer saw of its writes: the index of every acknowledged one, and of every one whose
// outcome etcd did not tell (ETIMEDOUT).
struct WriteLog {
    std::set<int> acked, unknown;
    std::map<int, std::string> failed;  // index → errno and reason, of writes that changed nothing
    int last_acked() const { return acked.empty() ? 0 : *acked.rbegin(); }
    void record(int index, const Outcome& out) {
        if (out.ok())
            acked.insert(index);
        else if (out.unknown())
            unknown.insert(index);
        else
            failed[index] = std::to_string(out.err) + " " + out.reason;
    }
    std::string summary() const {
        std::string s = std::to_string(acked.size()) + " acked (last " + std::to_string(last_acked()) + "), unknown:";
        for (int i : unknown) s += " " + std::to_string(i);
        s += ", failed: " + std::to_string(failed.size());
        return s;
    }
};

// "v17" → 17 (with `head` = "v"); -1 for anything else.
int index_of(const std::string& value, const std::string& head) {
    if (!value.starts_with(head) || value.size() == head.size()) return -1;
    try {
        return std::stoi(value.substr(head.size()));
    } catch (const std::exception&) {
        return -1;
    }
}

// Both hosts write as fast as etcd takes it, each to its own site and both to a shared one, while
// the leader is killed and comes back. No acknowledged write may be lost or overwritten by an
// older one: what etcd ends up holding is the last acknowledged value or a later one whose outcome
// was unknown, and both hosts' caches end up equal to a linearizable read.
TEST_F(EtcdStoreTest, NoAcknowledgedWriteIsLostWhenTheLeaderIsKilledDuringWriteStorms) {
    Store& a = open("a");
    Store& b = open("b");
    for (const char* site : {"sa", "sb", "shared"}) ASSERT_TRUE(a.create_site(site).ok()) << site;
    ASSERT_TRUE(eventually([&] { return b.site("shared") != nullptr && b.site("sa") != nullptr && b.site("sb") != nullptr; }));

    std::atomic<bool> stop{false};
    WriteLog own[2], shared[2];
    auto storm = [&](Store& store, const std::string& site, const std::string& tag, WriteLog& own_log, WriteLog& shared_log) {
        for (int i = 1; !stop.load(); ++i) {
            own_log.record(i, store.write_field(site, "branch", "v" + std::to_string(i)));
            shared_log.record(i, store.write_field("shared", "path", tag + std::to_string(i)));
        }
    };
    std::thread ta(storm, std::ref(a), "sa", "a", std::ref(own[0]), std::ref(shared[0]));
    std::thread tb(storm, std::ref(b), "sb", "b", std::ref(own[1]), std::ref(shared[1]));
    std::this_thread::sleep_for(700ms);
    int leader = -1;
    eventually([&] { return (leader = cluster_->leader()) >= 0; }, 10000ms);
    if (leader >= 0) cluster_->kill_member(leader);
    // Long enough for a write caught by the kill to run into its 2 s timeout, and for writes to
    // go on under the new leader.
    std::this_thread::sleep_for(3s);
    stop = true;
    ta.join();
    tb.join();
    ASSERT_GE(leader, 0) << "no leader to kill";
    std::string why;
    ASSERT_TRUE(cluster_->restart_member(leader, &why)) << why;
    for (int h = 0; h < 2; ++h)
        EXPECT_GT(own[h].acked.size(), 10u) << "host " << (h == 0 ? "a" : "b") << " hardly wrote: " << own[h].summary();

    // The linearizable read: a fresh (read-only) store lists the prefix at etcd's current revision.
    EtcdStoreOptions fresh_options = options("reader");
    fresh_options.read_only = true;
    const auto fresh = open_etcd_store(fresh_options);
    const std::string sites[2] = {"sa", "sb"};
    for (int h = 0; h < 2; ++h) {
        const std::string held = value_of(*fresh, sites[h], "branch");
        SCOPED_TRACE(sites[h] + " holds " + held + "; " + own[h].summary());
        const int n = index_of(held, "v");
        ASSERT_GT(n, 0);
        EXPECT_GE(n, own[h].last_acked()) << "an acknowledged write was lost or overwritten by an older one";
        EXPECT_TRUE(own[h].acked.contains(n) || own[h].unknown.contains(n))
            << "etcd holds a write that was reported as not made: " << (own[h].failed.contains(n) ? own[h].failed.at(n) : "");
        if (n > own[h].last_acked()) {
            EXPECT_TRUE(own[h].unknown.contains(n));
        }
    }
    {
        const std::string held = value_of(*fresh, "shared", "path");
        SCOPED_TRACE("shared holds " + held + "; a: " + shared[0].summary() + "; b: " + shared[1].summary());
        ASSERT_FALSE(held.empty());
        const int writer = held[0] == 'a' ? 0 : held[0] == 'b' ? 1 : -1;
        ASSERT_GE(writer, 0);
        const int n = index_of(held, std::string(1, held[0]));
        ASSERT_GT(n, 0);
        const WriteLog& log = shared[writer];
        EXPECT_TRUE(log.acked.contains(n) || log.unknown.contains(n)) << "etcd holds a write that was reported as not made";
        // A writer's later acknowledged write was committed after this one: it would have won.
        EXPECT_GE(n, log.last_acked()) << "an older write overwrote an acknowledged one";
    }

    // Both hosts' views converge to the linearizable read.
    for (Store* store : {&a, &b})
        for (const auto& [site, field] : std::vector<std::pair<std::string, std::string>>{{"sa", "branch"}, {"sb", "branch"}, {"shared", "path"}})
            EXPECT_TRUE(eventually([&] { return value_of(*store, site, FieldName::known(field)) == value_of(*fresh, site, FieldName::known(field)); }, 10000ms))
                << store->host() << " " << site << ": " << value_of(*store, site, FieldName::known(field)) << " vs "
                << value_of(*fresh, site, FieldName::known(field));
}

class EtcdTlsStoreTest : public EtcdStoreTest {
protected:
    it::EtcdCluster::Options cluster_options() const override { return {.members = 1, .tls = true}; }
};

// The store's first list fails with a StoreError naming the cause, never an empty view.
std::string open_error(const EtcdStoreOptions& o) {
    try {
        (void)open_etcd_store(o);
    } catch (const StoreError& e) {
        return e.what();
    }
    return "<opened>";
}

TEST_F(EtcdTlsStoreTest, TheStoreNeedsTheCaThatSignedTheServers) {
    EtcdStoreOptions o = options("a");
    o.client.ca_file = cluster_->ca_file();
    {
        const auto store = open_etcd_store(o);
        ASSERT_TRUE(store->create_site("blog").ok());
        EXPECT_THAT(store->describe(), HasSubstr("https://"));
    }
    for (const fsys::path& ca : {fsys::path(), cluster_->wrong_ca_file()}) {
        SCOPED_TRACE("ca_file: " + (ca.empty() ? std::string("none (the system's roots)") : ca.string()));
        o.client.ca_file = ca;
        // Room for the handshake to fail before the deadline: gRPC loads the system's roots (some
        // 150 certificates) first, which takes seconds in a sanitized build; a deadline that comes
        // first says only "no answer".
        o.client.timeout = 10s;
        const auto start = std::chrono::steady_clock::now();
        const std::string error = open_error(o);
        EXPECT_THAT(error, HasSubstr("TLS"));
        EXPECT_THAT(error, HasSubstr("certificate"));
        EXPECT_LT(std::chrono::steady_clock::now() - start, 10s + 3s);
    }
}

class EtcdAuthStoreTest : public EtcdStoreTest {
protected:
    it::EtcdCluster::Options cluster_options() const override { return {.members = 1, .auth = true}; }
};

TEST_F(EtcdAuthStoreTest, TheStoreLogsInWithItsPasswordAndNamesTheUserWhenRefused) {
    EtcdStoreOptions o = options("a");
    o.client.user = cluster_->user();
    o.client.password = cluster_->password();
    {
        const auto store = open_etcd_store(o);
        ASSERT_TRUE(store->create_site("blog").ok());
        // Its registration reaches its own view through the watch.
        EXPECT_TRUE(eventually([&] { return store->describe().find("member: a alive") != std::string::npos; })) << store->describe();
    }
    o.client.password = cluster_->password() + "-wrong";
    const std::string error = open_error(o);
    EXPECT_THAT(error, HasSubstr("'" + cluster_->user() + "'"));
    EXPECT_THAT(error, HasSubstr("authentication failed"));
    EXPECT_THAT(error, ::testing::Not(HasSubstr(o.client.password)));
}

}  // namespace
}  // namespace sitesfs
