// A small etcd v3 client over gRPC: the calls EtcdStore (store/etcd_store.hpp) needs, each with a
// deadline, and the errors sorted by what they mean for a write. There is no packaged C++ etcd
// client in Debian; etcd.proto (this folder) declares the subset of etcd's own rpc.proto we use,
// with its package, service and method names and field numbers, so the wire format is etcd's.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace sitesfs::etcd {

struct ClientOptions {
    // "127.0.0.1:2379", "http://10.0.0.1:2379" or "https://…"; every member the client may use.
    std::vector<std::string> endpoints;
    // Client TLS: all three empty for plaintext. ca alone: server-verified TLS; cert and key too:
    // mutual TLS. Paths to PEM files, read once at connect (never copied elsewhere).
    std::filesystem::path ca_file, cert_file, key_file;
    // etcd's user/password auth; empty user: none. The password is held in memory only.
    std::string user, password;
    // Every unary call's deadline.
    std::chrono::milliseconds timeout{5000};
};

// Why a call failed, by what it means for the caller.
struct Error {
    enum class Kind {
        // The request was refused before it could change anything: connection refused, no
        // endpoint reachable before the call was sent, permission denied, bad request.
        NotApplied,
        // The request may have been applied: a deadline or a broken connection after the request
        // left. A read-back (linearizable) once etcd answers settles it.
        Unknown,
        // Authentication failed: wrong user or password, or a client the server does not trust.
        Auth,
        // A watch or a range at a compacted revision; compact_revision says which.
        Compacted,
    };
    Kind kind;
    std::string message;  // a person's reason: "etcd 127.0.0.1:2379: deadline exceeded after 5 s", …
    int64_t compact_revision = 0;
};

template <class T>
using Result = std::variant<T, Error>;

struct KeyValue {
    std::string key;
    std::string value;
    int64_t create_revision = 0;
    int64_t mod_revision = 0;
    int64_t version = 0;
    int64_t lease = 0;
};

struct RangeRequest {
    std::string key;
    std::string range_end;  // empty: key alone; prefix_end(key): every key with that prefix
    int64_t revision = 0;   // 0: newest
    bool serializable = false;  // true: this member's view, answered without quorum
    bool keys_only = false;
    int64_t limit = 0;
};
struct RangeResponse {
    int64_t revision = 0;  // the store's revision the answer is from (header.revision)
    std::vector<KeyValue> kvs;
    bool more = false;
};

// One comparison of a txn's guard.
struct Compare {
    enum class Target { Version, CreateRevision, ModRevision, Value };
    enum class Result { Equal, NotEqual, Greater, Less };
    std::string key;
    Target target = Target::ModRevision;
    Result result = Result::Equal;
    int64_t number = 0;  // Version, CreateRevision, ModRevision
    std::string value;   // Value
};

struct Op {
    enum class Kind { Put, DeleteRange, Range };
    Kind kind = Kind::Put;
    std::string key;
    std::string value;      // Put
    std::string range_end;  // DeleteRange, Range: as in RangeRequest
    int64_t lease = 0;      // Put
};

struct TxnRequest {
    std::vector<Compare> compare;
    std::vector<Op> success;
    std::vector<Op> failure;
};
struct TxnResponse {
    int64_t revision = 0;  // header.revision: the revision of this txn's changes when it succeeded
    bool succeeded = false;
    // One entry per op of the branch taken; a Range op fills its kvs, others leave them empty.
    std::vector<RangeResponse> responses;
};

struct Event {
    enum class Type { Put, Delete };
    Type type;
    KeyValue kv;  // for Delete: key and mod_revision (the deletion's revision)
};

// A running watch; destroying it cancels the stream and joins its thread.
class Watch {
public:
    virtual ~Watch() = default;
};

struct WatchCallbacks {
    // Every event of one revision (one txn) arrives in one call, in revision order. `revision` is
    // the header's revision: everything up to it has been delivered.
    std::function<void(const std::vector<Event>& events, int64_t revision)> events;
    // The watch ended and will not resume by itself: compacted (Error::Compacted), auth, or the
    // client is closing. Called once, from the watch's thread; the caller re-lists and watches anew.
    std::function<void(const Error&)> ended;
    // The stream is (re)connected (true) or lost and being retried (false), for the caller's
    // "connected" report. Optional.
    std::function<void(bool connected)> connection;
};

class Client {
public:
    // Does not wait for a connection: the first call fails (NotApplied) when no endpoint answers.
    // Throws std::runtime_error for an option that cannot work (an unreadable CA file, no endpoint).
    static std::unique_ptr<Client> connect(const ClientOptions& options);
    virtual ~Client() = default;

    virtual Result<RangeResponse> range(const RangeRequest& request) = 0;
    virtual Result<TxnResponse> txn(const TxnRequest& request) = 0;
    // Puts `value` at `key`, attached to `lease` (0: none); returns the put's revision.
    virtual Result<int64_t> put(const std::string& key, const std::string& value, int64_t lease = 0) = 0;

    // Leases: granted with a TTL in seconds; kept alive by keep_alive(), which sends one refresh
    // and returns the TTL left (0: the lease is gone).
    virtual Result<int64_t> lease_grant(int64_t ttl_seconds) = 0;
    virtual Result<int64_t> lease_keep_alive(int64_t lease) = 0;
    virtual Result<bool> lease_revoke(int64_t lease) = 0;

    // Watches every key with `prefix` from `start_revision` (inclusive). The stream carries the
    // gRPC metadata `hasleader: true`, so a member cut off from its cluster ends the stream instead
    // of staying silent; lost connections are retried from the last delivered revision + 1.
    virtual std::unique_ptr<Watch> watch(const std::string& prefix, int64_t start_revision, WatchCallbacks callbacks) = 0;

    // The endpoint list as given, for reports.
    virtual const std::vector<std::string>& endpoints() const = 0;
};

// The end of the range of every key starting with `prefix` (etcd's prefix convention).
std::string prefix_end(const std::string& prefix);

}  // namespace sitesfs::etcd
