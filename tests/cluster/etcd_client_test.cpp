// The etcd client (store/etcd/client.hpp) against real etcd 3.4 clusters (tests/support/etcd.hpp):
// the calls, the watch across a killed member and a compaction, leases, and the errors sorted by
// what they mean for a write (refused, quorum lost, TLS, auth).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "store/etcd/client.hpp"
#include "tests/integration/mount_fixture.hpp"
#include "tests/support/caddy.hpp"
#include "tests/support/cannot_run.hpp"
#include "tests/support/etcd.hpp"

namespace sitesfs::etcd {
namespace {

namespace stdfs = std::filesystem;
using namespace std::chrono_literals;
using it::EtcdCluster;

bool etcd_installed() { return ::access("/usr/bin/etcd", X_OK) == 0 && ::access("/usr/bin/etcdctl", X_OK) == 0; }

#define REQUIRE_ETCD()                                                                                          \
    do {                                                                                                        \
        if (!etcd_installed()) SITESFS_CANNOT_RUN() << "etcd-server/etcd-client not installed (scripts/install-deps)"; \
    } while (0)

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

template <class T>
const T& ok(const Result<T>& r) {
    if (const auto* e = std::get_if<Error>(&r)) throw std::runtime_error("etcd call failed: " + e->message);
    return std::get<T>(r);
}

template <class T>
std::optional<Error> error_of(const Result<T>& r) {
    if (const auto* e = std::get_if<Error>(&r)) return *e;
    return std::nullopt;
}

const char* kind_name(Error::Kind k) {
    switch (k) {
        case Error::Kind::NotApplied: return "NotApplied";
        case Error::Kind::Unknown: return "Unknown";
        case Error::Kind::Auth: return "Auth";
        case Error::Kind::Compacted: return "Compacted";
    }
    return "?";
}

// A temp dir of the test's, removed with everything in it.
class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/sitesfs-etcd.XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        stdfs::remove_all(path_, ec);
    }
    const stdfs::path& path() const { return path_; }

private:
    stdfs::path path_;
};

// A cluster and its dir, destroyed in that order (the members hold files in the dir).
struct TestCluster {
    explicit TestCluster(EtcdCluster::Options options) : cluster(dir.path(), options) {}
    TempDir dir;
    EtcdCluster cluster;
};

ClientOptions options_for(const EtcdCluster& c, std::chrono::milliseconds timeout = 3s) {
    ClientOptions o;
    o.endpoints = c.endpoints();
    o.timeout = timeout;
    return o;
}

// What a watch delivered, for a test thread to wait on.
struct Recorder {
    struct Call {
        std::vector<Event> events;
        int64_t revision;
    };
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<Call> calls;  // with events only
    int64_t progress = 0;     // the last revision of an empty (progress) call
    std::optional<Error> ended;
    std::vector<bool> connection;

    WatchCallbacks callbacks() {
        return {
            [this](const std::vector<Event>& events, int64_t revision) {
                std::lock_guard lock(mutex);
                if (events.empty()) progress = revision;
                else calls.push_back({events, revision});
                changed.notify_all();
            },
            [this](const Error& e) {
                std::lock_guard lock(mutex);
                ended = e;
                changed.notify_all();
            },
            [this](bool connected) {
                std::lock_guard lock(mutex);
                connection.push_back(connected);
                changed.notify_all();
            },
        };
    }
    template <class Pred>
    bool wait(Pred pred, std::chrono::milliseconds deadline = 10s) {
        std::unique_lock lock(mutex);
        return changed.wait_for(lock, deadline, [&] { return pred(); });
    }
    size_t event_count() {
        size_t n = 0;
        for (const auto& c : calls) n += c.events.size();
        return n;
    }
};

TEST(PrefixEnd, EtcdConvention) {
    EXPECT_EQ(prefix_end("sites/"), "sites0");
    EXPECT_EQ(prefix_end("a"), "b");
    EXPECT_EQ(prefix_end(std::string("a\xff", 2)), "b");
    EXPECT_EQ(prefix_end(std::string("ab\xff\xff", 4)), "ac");
    EXPECT_EQ(prefix_end(std::string("\xff\xff", 2)), std::string(1, '\0'));
    EXPECT_EQ(prefix_end(""), std::string(1, '\0'));
}

// One cluster for every test of a suite (started in SetUpTestSuite), for tests that leave its
// members alone.
template <int Members, bool Tls, bool Auth>
class SharedClusterTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        if (!etcd_installed()) return;
        shared_ = new TestCluster({.members = Members, .tls = Tls, .auth = Auth});
        if (!shared_->cluster.start(&start_error_)) start_error_ = "cannot start the etcd cluster: " + start_error_;
    }
    static void TearDownTestSuite() {
        delete shared_;
        shared_ = nullptr;
    }
    void SetUp() override {
        REQUIRE_ETCD();
        ASSERT_TRUE(start_error_.empty()) << start_error_;
    }
    static EtcdCluster& cluster() { return shared_->cluster; }

private:
    static inline TestCluster* shared_ = nullptr;
    static inline std::string start_error_;
};

// A 3-member cluster; keys under a prefix of the test's name.
class EtcdTest : public SharedClusterTest<3, false, false> {
protected:
    void SetUp() override {
        SharedClusterTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        client_ = Client::connect(options_for(cluster()));
        prefix_ = std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "/";
    }
    std::string key(const std::string& name) const { return prefix_ + name; }
    int64_t current_revision() { return ok(client_->range({.key = "no-such-key"})).revision; }

    std::unique_ptr<Client> client_;
    std::string prefix_;
};

TEST_F(EtcdTest, PutRangeTxnRoundTrip) {
    const int64_t rev = ok(client_->put(key("a"), std::string("value\0with nul", 14)));
    const auto r = ok(client_->range({.key = key("a")}));
    ASSERT_EQ(r.kvs.size(), 1u);
    EXPECT_EQ(r.kvs[0].value, std::string("value\0with nul", 14));
    EXPECT_EQ(r.kvs[0].mod_revision, rev);
    EXPECT_EQ(r.kvs[0].create_revision, rev);
    EXPECT_EQ(r.kvs[0].version, 1);
    EXPECT_GE(r.revision, rev);

    // A txn whose success branch writes one key, deletes another and reads a third.
    ok(client_->put(key("gone"), "x"));
    TxnRequest t;
    t.compare.push_back({.key = key("a"), .target = Compare::Target::Value, .value = std::string("value\0with nul", 14)});
    t.success = {{.kind = Op::Kind::Put, .key = key("b"), .value = "B"},
                 {.kind = Op::Kind::DeleteRange, .key = key("gone")},
                 {.kind = Op::Kind::Range, .key = key("a")}};
    const auto tr = ok(client_->txn(t));
    EXPECT_TRUE(tr.succeeded);
    ASSERT_EQ(tr.responses.size(), 3u);
    ASSERT_EQ(tr.responses[2].kvs.size(), 1u);
    EXPECT_EQ(tr.responses[2].kvs[0].key, key("a"));
    EXPECT_TRUE(ok(client_->range({.key = key("gone")})).kvs.empty());
    const auto b = ok(client_->range({.key = key("b")}));
    ASSERT_EQ(b.kvs.size(), 1u);
    EXPECT_EQ(b.kvs[0].mod_revision, tr.revision);
}

TEST_F(EtcdTest, ModRevisionGuardRefusesAStaleWriter) {
    const int64_t first = ok(client_->put(key("site"), "v1"));
    TxnRequest update;
    update.compare.push_back({.key = key("site"), .target = Compare::Target::ModRevision, .number = first});
    update.success.push_back({.kind = Op::Kind::Put, .key = key("site"), .value = "v2"});
    update.failure.push_back({.kind = Op::Kind::Range, .key = key("site")});
    const auto won = ok(client_->txn(update));
    EXPECT_TRUE(won.succeeded);

    // A second writer that read v1 too: its guard fails, and the failure branch shows v2.
    update.success[0].value = "v3";
    const auto lost = ok(client_->txn(update));
    EXPECT_FALSE(lost.succeeded);
    ASSERT_EQ(lost.responses.size(), 1u);
    ASSERT_EQ(lost.responses[0].kvs.size(), 1u);
    EXPECT_EQ(lost.responses[0].kvs[0].value, "v2");
    EXPECT_EQ(lost.responses[0].kvs[0].mod_revision, won.revision);
}

TEST_F(EtcdTest, CreateOnlyClaimSucceedsOnce) {
    TxnRequest claim;
    claim.compare.push_back({.key = key("claim"), .target = Compare::Target::Version, .number = 0});
    claim.success.push_back({.kind = Op::Kind::Put, .key = key("claim"), .value = "first"});
    EXPECT_TRUE(ok(client_->txn(claim)).succeeded);
    claim.success[0].value = "second";
    EXPECT_FALSE(ok(client_->txn(claim)).succeeded);
    EXPECT_EQ(ok(client_->range({.key = key("claim")})).kvs.at(0).value, "first");
}

TEST_F(EtcdTest, PrefixRangeListsExactlyThePrefix) {
    ok(client_->put(key("dir/a"), "1"));
    ok(client_->put(key("dir/b"), "2"));
    ok(client_->put(key("dir/c/d"), "3"));
    ok(client_->put(key("dir0"), "outside: '0' follows '/'"));
    ok(client_->put(key("dia"), "outside, below"));
    const auto r = ok(client_->range({.key = key("dir/"), .range_end = prefix_end(key("dir/"))}));
    std::vector<std::string> keys;
    for (const auto& kv : r.kvs) keys.push_back(kv.key);
    EXPECT_EQ(keys, (std::vector<std::string>{key("dir/a"), key("dir/b"), key("dir/c/d")}));
    EXPECT_FALSE(r.more);
    const auto limited = ok(client_->range({.key = key("dir/"), .range_end = prefix_end(key("dir/")), .keys_only = true, .limit = 2}));
    EXPECT_EQ(limited.kvs.size(), 2u);
    EXPECT_TRUE(limited.more);
    EXPECT_TRUE(limited.kvs[0].value.empty());
}

TEST_F(EtcdTest, WatchDeliversOneTxnInOneCall) {
    const int64_t start = current_revision() + 1;
    Recorder rec;
    auto watch = client_->watch(key("w/"), start, rec.callbacks());
    TxnRequest t;
    t.success = {{.kind = Op::Kind::Put, .key = key("w/3"), .value = "c"},
                 {.kind = Op::Kind::Put, .key = key("w/1"), .value = "a"},
                 {.kind = Op::Kind::Put, .key = key("outside"), .value = "not watched"},
                 {.kind = Op::Kind::Put, .key = key("w/2"), .value = "b"}};
    const auto first = ok(client_->txn(t));
    TxnRequest del;
    del.success = {{.kind = Op::Kind::DeleteRange, .key = key("w/"), .range_end = prefix_end(key("w/"))}};
    const auto second = ok(client_->txn(del));

    ASSERT_TRUE(rec.wait([&] { return rec.calls.size() >= 2; })) << "calls: " << rec.calls.size();
    std::lock_guard lock(rec.mutex);
    ASSERT_EQ(rec.calls.size(), 2u);
    EXPECT_EQ(rec.calls[0].revision, first.revision);
    ASSERT_EQ(rec.calls[0].events.size(), 3u);
    EXPECT_EQ(rec.calls[0].events[0].kv.key, key("w/3"));
    EXPECT_EQ(rec.calls[0].events[1].kv.key, key("w/1"));
    EXPECT_EQ(rec.calls[0].events[2].kv.key, key("w/2"));
    EXPECT_EQ(rec.calls[0].events[2].kv.value, "b");
    for (const auto& e : rec.calls[0].events) {
        EXPECT_EQ(e.type, Event::Type::Put);
        EXPECT_EQ(e.kv.mod_revision, first.revision);
    }
    EXPECT_EQ(rec.calls[1].revision, second.revision);
    ASSERT_EQ(rec.calls[1].events.size(), 3u);
    for (const auto& e : rec.calls[1].events) EXPECT_EQ(e.type, Event::Type::Delete);
    EXPECT_EQ(rec.connection, std::vector<bool>{true});
    EXPECT_FALSE(rec.ended);
}

TEST_F(EtcdTest, WatchFromACompactedRevisionEnds) {
    const int64_t old = ok(client_->put(key("k"), "1"));
    ok(client_->put(key("k"), "2"));
    const int64_t latest = ok(client_->put(key("k"), "3"));
    std::string why;
    ASSERT_TRUE(cluster().compact(&why)) << why;

    const auto r = client_->range({.key = key("k"), .revision = old});
    const auto e = error_of(r);
    ASSERT_TRUE(e) << "a range at a compacted revision succeeded";
    EXPECT_EQ(e->kind, Error::Kind::Compacted) << e->message;

    Recorder rec;
    auto watch = client_->watch(key(""), old, rec.callbacks());
    ASSERT_TRUE(rec.wait([&] { return rec.ended.has_value(); })) << "the watch did not end";
    std::lock_guard lock(rec.mutex);
    EXPECT_EQ(rec.ended->kind, Error::Kind::Compacted) << rec.ended->message;
    EXPECT_GE(rec.ended->compact_revision, latest);
    EXPECT_TRUE(rec.calls.empty());
}

TEST_F(EtcdTest, LeaseRevokeAndExpiryRemoveTheKey) {
    const int64_t lease = ok(client_->lease_grant(30));
    ASSERT_NE(lease, 0);
    ok(client_->put(key("leased"), "alive", lease));
    EXPECT_EQ(ok(client_->range({.key = key("leased")})).kvs.at(0).lease, lease);
    const int64_t ttl = ok(client_->lease_keep_alive(lease));
    EXPECT_GT(ttl, 0);
    EXPECT_LE(ttl, 30);
    EXPECT_TRUE(ok(client_->lease_revoke(lease)));
    EXPECT_TRUE(ok(client_->range({.key = key("leased")})).kvs.empty());
    EXPECT_EQ(ok(client_->lease_keep_alive(lease)), 0) << "a revoked lease has no TTL left";
    EXPECT_FALSE(ok(client_->lease_revoke(lease))) << "revoking it again: already gone";

    // Not kept alive: etcd's shortest TTL here is 3 × election timeout (1.5 s, rounded up).
    const int64_t short_lease = ok(client_->lease_grant(1));
    ok(client_->put(key("expiring"), "soon gone", short_lease));
    EXPECT_TRUE(it::eventually([&] { return ok(client_->range({.key = key("expiring")})).kvs.empty(); }, 15s, 200ms))
        << "the key outlived its lease";
}

// Every endpoint a closed port: refused before anything was sent, within the deadline.
TEST(EtcdRefused, AllEndpointsRefuseNotApplied) {
    ClientOptions o;
    o.endpoints = {"http://127.0.0.1:" + std::to_string(it::free_port()), "127.0.0.1:" + std::to_string(it::free_port())};
    o.timeout = 2s;
    auto client = Client::connect(o);
    const auto started = std::chrono::steady_clock::now();
    const auto put = error_of(client->put("k", "v"));
    const auto elapsed = std::chrono::steady_clock::now() - started;
    const auto range = error_of(client->range({.key = "k"}));
    ASSERT_TRUE(put && range);
    EXPECT_EQ(put->kind, Error::Kind::NotApplied) << kind_name(put->kind) << ": " << put->message;
    EXPECT_EQ(range->kind, Error::Kind::NotApplied) << range->message;
    EXPECT_TRUE(contains(put->message, o.endpoints[1])) << put->message;
    EXPECT_TRUE(contains(put->message, o.endpoints[0])) << put->message;
    EXPECT_LT(elapsed, o.timeout + 3s);
}

TEST(EtcdRefused, ConnectRefusesOptionsThatCannotWork) {
    EXPECT_THROW(Client::connect({}), std::runtime_error);
    ClientOptions o;
    o.endpoints = {"https://127.0.0.1:1"};
    o.ca_file = "/nonexistent/ca.crt";
    EXPECT_THROW(Client::connect(o), std::runtime_error);
}

// Each test here kills members: a cluster of its own.
class EtcdFailoverTest : public ::testing::Test {
protected:
    void SetUp() override {
        REQUIRE_ETCD();
        c_ = std::make_unique<TestCluster>(EtcdCluster::Options{.members = 3});
        std::string why;
        ASSERT_TRUE(c_->cluster.start(&why)) << why;
    }
    void TearDown() override { c_.reset(); }
    EtcdCluster& cluster() { return c_->cluster; }
    std::unique_ptr<TestCluster> c_;
};

TEST_F(EtcdFailoverTest, WatchResumesAfterItsMemberIsKilled) {
    // The watch's client lists member 0 first, so its stream is on member 0; the writer uses
    // the two members that stay up.
    auto watcher = Client::connect(options_for(cluster()));
    ClientOptions wo = options_for(cluster(), 2s);
    wo.endpoints = {cluster().endpoint(1), cluster().endpoint(2)};
    auto writer = Client::connect(wo);
    const int64_t start = ok(writer->range({.key = "x"})).revision + 1;
    Recorder rec;
    auto watch = watcher->watch("keys/", start, rec.callbacks());
    ASSERT_TRUE(rec.wait([&] { return !rec.connection.empty(); }));

    // Create-only puts, retried until the guard says the key exists: one event per key whatever
    // a retry after an Unknown did.
    constexpr int kKeys = 40;
    const auto create = [&](int n) {
        char name[16];
        std::snprintf(name, sizeof name, "keys/%03d", n);
        TxnRequest t;
        t.compare.push_back({.key = name, .target = Compare::Target::Version, .number = 0});
        t.success.push_back({.kind = Op::Kind::Put, .key = name, .value = std::to_string(n)});
        std::string last;
        const bool done = it::eventually(
            [&] {
                const auto r = writer->txn(t);
                if (const auto* e = std::get_if<Error>(&r)) return last = e->message, false;
                return true;
            },
            20s, 100ms);
        ASSERT_TRUE(done) << "cannot create " << name << ": " << last;
    };
    for (int n = 0; n < kKeys / 2; ++n) create(n);
    ASSERT_TRUE(rec.wait([&] { return rec.event_count() >= kKeys / 2; }));
    cluster().kill_member(0);
    for (int n = kKeys / 2; n < kKeys; ++n) create(n);

    ASSERT_TRUE(rec.wait([&] { return rec.event_count() >= kKeys; }, 20s)) << "events: " << rec.event_count();
    std::this_thread::sleep_for(300ms);  // a duplicate would arrive now
    std::lock_guard lock(rec.mutex);
    std::vector<std::string> keys;
    int64_t previous = 0;
    for (const auto& call : rec.calls)
        for (const auto& e : call.events) {
            keys.push_back(e.kv.key);
            EXPECT_GT(e.kv.mod_revision, previous) << "out of order or repeated at " << e.kv.key;
            previous = e.kv.mod_revision;
        }
    ASSERT_EQ(keys.size(), static_cast<size_t>(kKeys));
    for (int n = 0; n < kKeys; ++n) {
        char name[16];
        std::snprintf(name, sizeof name, "keys/%03d", n);
        EXPECT_EQ(keys[n], name);
    }
    // Lost once, found again on another member.
    ASSERT_GE(rec.connection.size(), 3u);
    EXPECT_EQ(rec.connection.front(), true);
    EXPECT_EQ(rec.connection[1], false);
    EXPECT_EQ(rec.connection.back(), true);
    EXPECT_FALSE(rec.ended) << rec.ended->message;
}

TEST_F(EtcdFailoverTest, QuorumLostMakesWritesUnknownThenRecovers) {
    auto client = Client::connect(options_for(cluster(), 2s));
    ok(client->put("before", "1"));
    cluster().kill_member(1);
    cluster().kill_member(2);
    const auto started = std::chrono::steady_clock::now();
    const auto e = error_of(client->put("during", "maybe"));
    const auto elapsed = std::chrono::steady_clock::now() - started;
    ASSERT_TRUE(e) << "a put without quorum succeeded";
    EXPECT_EQ(e->kind, Error::Kind::Unknown) << kind_name(e->kind) << ": " << e->message;
    EXPECT_TRUE(contains(e->message, cluster().endpoint(0))) << e->message;
    EXPECT_LT(elapsed, 2s + 3s);

    std::string why;
    ASSERT_TRUE(cluster().restart_member(1, &why)) << why;
    ASSERT_TRUE(cluster().restart_member(2, &why)) << why;
    // Applied or not, as etcd decided: the client works again and reads a definite answer.
    std::string last;
    EXPECT_TRUE(it::eventually(
        [&] {
            const auto r = client->put("after", "2");
            if (const auto* err = std::get_if<Error>(&r)) return last = err->message, false;
            return true;
        },
        20s, 200ms))
        << last;
    const auto during = client->range({.key = "during"});
    ASSERT_FALSE(error_of(during)) << error_of(during)->message;
    EXPECT_LE(std::get<RangeResponse>(during).kvs.size(), 1u);
}

class EtcdTlsTest : public SharedClusterTest<1, true, false> {};

TEST_F(EtcdTlsTest, ClientWithTheCaWorks) {
    ClientOptions o = options_for(cluster());
    o.ca_file = cluster().ca_file();
    auto client = Client::connect(o);
    ok(client->put("tls", "yes"));
    EXPECT_EQ(ok(client->range({.key = "tls"})).kvs.at(0).value, "yes");

    // Mutual TLS: the same, with a client certificate the server's CA signed.
    o.cert_file = cluster().client_cert();
    o.key_file = cluster().client_key();
    EXPECT_EQ(ok(Client::connect(o)->range({.key = "tls"})).kvs.at(0).value, "yes");
}

TEST_F(EtcdTlsTest, ClientWithoutTheCaIsRefusedSayingWhy) {
    ClientOptions o = options_for(cluster(), 2s);
    o.ca_file = cluster().wrong_ca_file();
    auto client = Client::connect(o);
    const auto e = error_of(client->put("tls", "no"));
    ASSERT_TRUE(e) << "a client that does not trust the server's certificate wrote";
    EXPECT_NE(e->kind, Error::Kind::Unknown) << e->message;
    EXPECT_TRUE(contains(e->message, "TLS") && contains(e->message, "certificate")) << e->message;
    EXPECT_TRUE(contains(e->message, cluster().endpoint(0))) << e->message;
}

class EtcdAuthTest : public SharedClusterTest<1, false, true> {};

TEST_F(EtcdAuthTest, RightPasswordWorksForCallsAndWatches) {
    ClientOptions o = options_for(cluster());
    o.user = cluster().user();
    o.password = cluster().password();
    auto client = Client::connect(o);
    const int64_t rev = ok(client->put("auth/a", "1"));
    EXPECT_EQ(ok(client->range({.key = "auth/a"})).kvs.at(0).value, "1");
    Recorder rec;
    auto watch = client->watch("auth/", rev, rec.callbacks());
    ASSERT_TRUE(rec.wait([&] { return !rec.calls.empty() || rec.ended; }));
    std::lock_guard lock(rec.mutex);
    ASSERT_FALSE(rec.ended) << rec.ended->message;
    EXPECT_EQ(rec.calls.at(0).revision, rev);
}

TEST_F(EtcdAuthTest, WrongPasswordIsAnAuthErrorNamingTheUser) {
    ClientOptions o = options_for(cluster());
    o.user = cluster().user();
    o.password = "not-" + cluster().password();
    auto client = Client::connect(o);
    const auto e = error_of(client->put("auth/b", "2"));
    ASSERT_TRUE(e) << "a wrong password wrote";
    EXPECT_EQ(e->kind, Error::Kind::Auth) << kind_name(e->kind) << ": " << e->message;
    EXPECT_TRUE(contains(e->message, "'root'")) << e->message;
    EXPECT_TRUE(contains(e->message, "authentication failed")) << e->message;

    // No user at all: etcd refuses the call itself.
    const auto anonymous = error_of(Client::connect(options_for(cluster()))->put("auth/b", "2"));
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->kind, Error::Kind::Auth) << kind_name(anonymous->kind) << ": " << anonymous->message;
}

}  // namespace
}  // namespace sitesfs::etcd
