#include "store/etcd/client.hpp"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "etcd.grpc.pb.h"

namespace sitesfs::etcd {

namespace pb = ::etcdserverpb;
// gRPC takes deadlines as system_clock time points only.
using Clock = std::chrono::system_clock;

std::string prefix_end(const std::string& prefix) {
    std::string end = prefix;
    while (!end.empty()) {
        auto& last = reinterpret_cast<unsigned char&>(end.back());
        if (last < 0xff) {
            ++last;
            return end;
        }
        end.pop_back();
    }
    // Every byte was 0xff (or the prefix was empty): no key is above the prefix's range, and "\0"
    // is etcd's "to the end of the key space".
    return std::string(1, '\0');
}

namespace {

std::string duration_text(std::chrono::milliseconds d) {
    if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
    return std::to_string(d.count()) + " ms";
}

bool contains(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

std::string read_pem(const std::filesystem::path& file, const char* what) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in || text.str().empty())
        throw std::runtime_error(std::string("etcd client: cannot read the ") + what + " " + file.string());
    return text.str();
}

// One member: the URL as given (for messages) and a channel of its own. A channel per member
// rather than one load-balanced channel: each member's certificate is checked against its own
// host name, a refused call says which member refused it, and the client decides itself when a
// member is skipped (only when the request cannot have reached it).
struct Member {
    std::string url;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<pb::KV::Stub> kv;
    std::unique_ptr<pb::Watch::Stub> watch;
    std::unique_ptr<pb::Lease::Stub> lease;
    std::unique_ptr<pb::Auth::Stub> auth;
};

// A call that failed at one member, before the classification into an Error.
struct Failure {
    grpc::Status status;
    size_t member;
    bool sent;  // false: the request cannot have reached etcd
};

// gRPC fails a call it could not hand to any connection with "failed to connect to all
// addresses" (pick_first, 1.51), also when the channel was already in TRANSIENT_FAILURE; a broken
// connection after the request left reads differently ("Socket closed", "Connection reset by
// peer", "GOAWAY", "keepalive watchdog timeout"). The channel's state before the call is not
// used: it can recover and break again during the call, and a write called "not sent" is tried
// on the next member, so a wrong guess would apply it twice.
bool never_sent(const grpc::Status& status) {
    return status.error_code() == grpc::StatusCode::UNAVAILABLE &&
           contains(status.error_message(), "failed to connect to all addresses");
}

bool tls_failure(const grpc::Status& status) {
    const std::string& m = status.error_message();
    return contains(m, "andshake") || contains(m, "CERTIFICATE_VERIFY_FAILED") || contains(m, "SSL_ERROR") ||
           contains(m, "certificate");
}

bool invalid_token(const grpc::Status& status) {
    return status.error_code() == grpc::StatusCode::UNAUTHENTICATED || contains(status.error_message(), "invalid auth token");
}

KeyValue from_pb(const ::mvccpb::KeyValue& kv) {
    return {kv.key(), kv.value(), kv.create_revision(), kv.mod_revision(), kv.version(), kv.lease()};
}

RangeResponse from_pb(const pb::RangeResponse& r) {
    RangeResponse out;
    out.revision = r.header().revision();
    out.more = r.more();
    out.kvs.reserve(r.kvs_size());
    for (const auto& kv : r.kvs()) out.kvs.push_back(from_pb(kv));
    return out;
}

void to_pb(const RangeRequest& r, pb::RangeRequest* out) {
    out->set_key(r.key);
    out->set_range_end(r.range_end);
    out->set_revision(r.revision);
    out->set_serializable(r.serializable);
    out->set_keys_only(r.keys_only);
    out->set_limit(r.limit);
}

void to_pb(const Op& op, pb::RequestOp* out) {
    switch (op.kind) {
        case Op::Kind::Put: {
            auto* put = out->mutable_request_put();
            put->set_key(op.key);
            put->set_value(op.value);
            put->set_lease(op.lease);
            break;
        }
        case Op::Kind::DeleteRange: {
            auto* del = out->mutable_request_delete_range();
            del->set_key(op.key);
            del->set_range_end(op.range_end);
            break;
        }
        case Op::Kind::Range: {
            auto* range = out->mutable_request_range();
            range->set_key(op.key);
            range->set_range_end(op.range_end);
            break;
        }
    }
}

void to_pb(const Compare& c, pb::Compare* out) {
    out->set_key(c.key);
    switch (c.result) {
        case Compare::Result::Equal: out->set_result(pb::Compare::EQUAL); break;
        case Compare::Result::NotEqual: out->set_result(pb::Compare::NOT_EQUAL); break;
        case Compare::Result::Greater: out->set_result(pb::Compare::GREATER); break;
        case Compare::Result::Less: out->set_result(pb::Compare::LESS); break;
    }
    switch (c.target) {
        case Compare::Target::Version:
            out->set_target(pb::Compare::VERSION);
            out->set_version(c.number);
            break;
        case Compare::Target::CreateRevision:
            out->set_target(pb::Compare::CREATE);
            out->set_create_revision(c.number);
            break;
        case Compare::Target::ModRevision:
            out->set_target(pb::Compare::MOD);
            out->set_mod_revision(c.number);
            break;
        case Compare::Target::Value:
            out->set_target(pb::Compare::VALUE);
            out->set_value(c.value);
            break;
    }
}

// What the members share: channels, the auth token, which member answered last.
class Connection {
public:
    explicit Connection(const ClientOptions& options) : options_(options) {
        if (options.endpoints.empty()) throw std::runtime_error("etcd client: no endpoint given");
        bool any_https = false, any_http = false;
        for (const auto& e : options.endpoints) (e.rfind("https://", 0) == 0 ? any_https : any_http) = true;
        // An "http://" member next to "https://" ones is a typo that would send the password in
        // the clear.
        if (any_https && any_http && options.endpoints.size() > 1)
            for (const auto& e : options.endpoints)
                if (e.rfind("http://", 0) == 0)
                    throw std::runtime_error("etcd client: endpoint " + e + " is plain http next to https ones; use one scheme");
        const bool tls = any_https || !options.ca_file.empty();
        if (options.cert_file.empty() != options.key_file.empty())
            throw std::runtime_error("etcd client: a client certificate needs both cert_file and key_file");
        std::shared_ptr<grpc::ChannelCredentials> credentials;
        if (tls) {
            grpc::SslCredentialsOptions ssl;
            // Empty: gRPC's default roots (the system's), for a server with a public certificate.
            if (!options.ca_file.empty()) ssl.pem_root_certs = read_pem(options.ca_file, "CA file");
            if (!options.cert_file.empty()) {
                ssl.pem_cert_chain = read_pem(options.cert_file, "client certificate");
                ssl.pem_private_key = read_pem(options.key_file, "client key");
            }
            credentials = grpc::SslCredentials(ssl);
        } else {
            credentials = grpc::InsecureChannelCredentials();
        }
        grpc::ChannelArguments args;
        // A dead peer (a cable pulled, not a closed socket) is found within ~9 s. etcd refuses
        // pings more often than every 5 s (--grpc-keepalive-min-time) with a GOAWAY, and pings
        // without a call in flight count against that, so they are off; a watch is a call.
        args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 6000);
        args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 3000);
        args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
        args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
        // A restarted member is used again within 2 s, not gRPC's default of up to 2 minutes.
        args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
        args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
        // gRPC reads this as the shortest time a connection attempt may take (its TCP and TLS
        // handshakes and the first SETTINGS frame): as long as a call may, not 100 ms, or a loaded
        // host or a distant member never finishes a TLS handshake. A refused connection still
        // fails at once.
        args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(std::max<int64_t>(1000, options.timeout.count())));
        // Within etcd's own limits (1.5 MiB a request by default); a large listing can exceed
        // gRPC's default 4 MiB receive limit.
        args.SetMaxReceiveMessageSize(64 << 20);
        for (const auto& url : options.endpoints) {
            std::string target = url;
            for (const char* scheme : {"http://", "https://"})
                if (target.rfind(scheme, 0) == 0) target = target.substr(std::string(scheme).size());
            while (!target.empty() && target.back() == '/') target.pop_back();
            if (target.empty()) throw std::runtime_error("etcd client: endpoint \"" + url + "\" names no host");
            auto m = std::make_unique<Member>();
            m->url = url;
            m->channel = grpc::CreateCustomChannel(target, credentials, args);
            m->kv = pb::KV::NewStub(m->channel);
            m->watch = pb::Watch::NewStub(m->channel);
            m->lease = pb::Lease::NewStub(m->channel);
            m->auth = pb::Auth::NewStub(m->channel);
            members_.push_back(std::move(m));
        }
    }

    const ClientOptions& options() const { return options_; }
    size_t size() const { return members_.size(); }
    Member& member(size_t i) { return *members_[i]; }
    size_t preferred() const { return preferred_.load(); }
    void prefer(size_t i) { preferred_.store(i % members_.size()); }

    std::string token() {
        std::lock_guard lock(mutex_);
        return token_;
    }

    // A context for one call to member `i`: the deadline, the token, fail-fast.
    void prepare(grpc::ClientContext& ctx, Clock::time_point deadline, const std::string& token) const {
        ctx.set_deadline(deadline);
        // A call fails at once when its member cannot be reached, so that the next member is
        // tried within the same deadline.
        ctx.set_wait_for_ready(false);
        if (!token.empty()) ctx.AddMetadata("token", token);
    }

    // A token from etcd for the configured user (none without a user); nullopt on success.
    std::optional<Error> authenticate(Clock::time_point deadline, const std::string& stale) {
        if (options_.user.empty()) return std::nullopt;
        std::lock_guard lock(auth_mutex_);
        // Another thread already replaced the token this caller found stale.
        if (const auto current = token(); !current.empty() && current != stale) return std::nullopt;
        std::vector<Failure> failures;
        for (size_t k = 0; k < members_.size(); ++k) {
            const size_t i = (preferred() + k) % members_.size();
            Member& m = *members_[i];
            grpc::ClientContext ctx;
            prepare(ctx, deadline, "");
            pb::AuthenticateRequest request;
            request.set_name(options_.user);
            request.set_password(options_.password);
            pb::AuthenticateResponse response;
            const grpc::Status status = m.auth->Authenticate(&ctx, request, &response);
            if (status.ok()) {
                std::lock_guard token_lock(mutex_);
                token_ = response.token();
                return std::nullopt;
            }
            if (contains(status.error_message(), "authentication failed"))
                return Error{Error::Kind::Auth,
                             "etcd refused user '" + options_.user + "': authentication failed, invalid user ID or password (" +
                                 m.url + ")"};
            failures.push_back({status, i, !never_sent(status)});
            // Authenticating changes nothing a retry could double: any failure moves on.
            if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) break;
        }
        Error e = classify(failures, "authenticate as '" + options_.user + "'", /*write=*/false);
        if (e.kind != Error::Kind::Auth) e.message = "cannot log in to etcd as '" + options_.user + "': " + e.message;
        return e;
    }

    // Runs `call(member, ctx)` on the preferred member and, while the request cannot have reached
    // etcd (or may be repeated: `write` false), on the next ones, all within one deadline.
    template <class Call>
    std::optional<Error> run(const std::string& what, bool write, Call&& call) {
        const auto deadline = Clock::now() + options_.timeout;
        std::string token = this->token();
        if (!options_.user.empty() && token.empty()) {
            if (auto e = authenticate(deadline, "")) return e;
            token = this->token();
        }
        bool reauthenticated = false;
        std::vector<Failure> failures;
        const size_t start = preferred();
        for (size_t k = 0; k < members_.size(); ++k) {
            const size_t i = (start + k) % members_.size();
            Member& m = *members_[i];
            grpc::ClientContext ctx;
            prepare(ctx, deadline, token);
            const grpc::Status status = call(m, ctx);
            if (status.ok()) {
                prefer(i);
                return std::nullopt;
            }
            // etcd's simple tokens expire (5 min idle by default) and a restarted member forgets
            // them: log in again once and repeat the call, which etcd refused without applying.
            if (!options_.user.empty() && !reauthenticated && invalid_token(status)) {
                reauthenticated = true;
                if (auto e = authenticate(deadline, token)) return e;
                token = this->token();
                --k;
                continue;
            }
            const bool sent = !never_sent(status);
            failures.push_back({status, i, sent});
            if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) break;
            const bool member_trouble = status.error_code() == grpc::StatusCode::UNAVAILABLE;
            if (!member_trouble) break;  // etcd's own answer; another member answers the same
            if (sent && write) break;    // may have been applied: the caller must find out
        }
        if (!failures.empty()) prefer(failures.back().member + 1);
        return classify(failures, what, write);
    }

    // The Error for a call's failures at one or more members; the last one decides, earlier
    // ones (members skipped as unreachable) are listed in the message.
    Error classify(const std::vector<Failure>& failures, const std::string& what, bool write) const {
        const Failure& last = failures.back();
        const grpc::Status& s = last.status;
        const std::string& url = members_[last.member]->url;
        const std::string& text = s.error_message();
        std::string message;
        const bool none_reached = std::none_of(failures.begin(), failures.end(), [](const Failure& f) { return f.sent; });
        if (none_reached && !tls_failure(s)) {
            message = "etcd: " + what + ": no member could be reached (";
            for (const auto& f : failures) message += members_[f.member]->url + ": " + f.status.error_message() + "; ";
            message.resize(message.size() - 2);
            return {Error::Kind::NotApplied, message + ")"};
        }
        if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
            message = "etcd " + url + ": " + what + ": no answer within " + duration_text(options_.timeout) + " (deadline exceeded)";
        else
            message = "etcd " + url + ": " + what + " failed: " + text;
        if (failures.size() > 1) {
            message += " (skipped:";
            for (size_t k = 0; k + 1 < failures.size(); ++k)
                message += " " + members_[failures[k].member]->url + ": " + failures[k].status.error_message() + ";";
            message.back() = ')';
        }
        if (s.error_code() == grpc::StatusCode::UNAVAILABLE && tls_failure(s))
            return {Error::Kind::Auth, "etcd " + url + ": TLS handshake failed (is ca_file the CA that signed the server's certificate?): " + text};
        if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED || contains(text, "authentication failed") ||
            contains(text, "user name is empty") || contains(text, "invalid auth token"))
            return {Error::Kind::Auth, message};
        if (s.error_code() == grpc::StatusCode::OUT_OF_RANGE && contains(text, "compacted"))
            return {Error::Kind::Compacted, message};
        if (!write || !last.sent) return {Error::Kind::NotApplied, message};
        switch (s.error_code()) {
            case grpc::StatusCode::DEADLINE_EXCEEDED:
            case grpc::StatusCode::UNAVAILABLE:
            case grpc::StatusCode::CANCELLED:
            case grpc::StatusCode::UNKNOWN:
            case grpc::StatusCode::INTERNAL:
            case grpc::StatusCode::ABORTED:
                break;
            default:
                // etcd's refusals (permission denied, a bad request, too large) come before the
                // proposal; its timeouts come after, whatever code they carry.
                if (!contains(text, "timed out") && !contains(text, "leader changed"))
                    return {Error::Kind::NotApplied, message};
        }
        return {Error::Kind::Unknown, message + "; the request may have been applied"};
    }

private:
    ClientOptions options_;
    std::vector<std::unique_ptr<Member>> members_;
    std::atomic<size_t> preferred_{0};
    std::mutex mutex_;       // token_
    std::mutex auth_mutex_;  // one login at a time
    std::string token_;
};

Error auth_error(Connection& c, const std::string& what, const grpc::Status& s, size_t member) {
    return c.classify({Failure{s, member, true}}, what, false);
}

class WatchImpl final : public Watch {
public:
    WatchImpl(std::shared_ptr<Connection> connection, std::string prefix, int64_t start_revision, WatchCallbacks callbacks)
        : connection_(std::move(connection)),
          prefix_(std::move(prefix)),
          next_revision_(start_revision),
          callbacks_(std::move(callbacks)) {
        thread_ = std::thread([this] { loop(); });
    }

    ~WatchImpl() override {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
            if (ctx_) ctx_->TryCancel();
        }
        wake_.notify_all();
        thread_.join();
    }

private:
    enum class Outcome { Lost, Ended, Stopped };

    void report(bool connected) {
        if (reported_ == connected) return;
        reported_ = connected;
        if (callbacks_.connection) callbacks_.connection(connected);
    }

    void loop() {
        auto backoff = std::chrono::milliseconds(100);
        size_t member = connection_->preferred();
        bool reauthenticated = false;
        for (;;) {
            bool created = false;
            grpc::Status status;
            const Outcome outcome = stream(member, &created, &status);
            if (outcome != Outcome::Lost) return;
            if (created) backoff = std::chrono::milliseconds(100);
            if (invalid_token(status) && !connection_->options().user.empty()) {
                if (!reauthenticated) {
                    reauthenticated = true;
                    const auto stale = connection_->token();
                    if (auto e = connection_->authenticate(Clock::now() + connection_->options().timeout, stale)) {
                        if (e->kind == Error::Kind::Auth) return end(*e);
                    }
                    continue;
                }
                return end(auth_error(*connection_, "watch " + prefix_, status, member));
            }
            if (status.error_code() == grpc::StatusCode::UNAVAILABLE && tls_failure(status))
                return end(auth_error(*connection_, "watch " + prefix_, status, member));
            if (created) reauthenticated = false;
            report(false);
            // The next member: the one this stream was on may be the one that is gone.
            member = (member + 1) % connection_->size();
            std::unique_lock lock(mutex_);
            if (wake_.wait_for(lock, backoff, [&] { return stopping_; })) return;
            backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
        }
    }

    void end(const Error& e) {
        if (callbacks_.ended) callbacks_.ended(e);
    }

    Outcome stream(size_t index, bool* created, grpc::Status* status) {
        Member& m = connection_->member(index);
        auto ctx = std::make_shared<grpc::ClientContext>();
        // No deadline: a watch lives as long as its owner wants; keepalive finds a dead peer.
        std::string token = connection_->token();
        if (!connection_->options().user.empty() && token.empty()) {
            if (auto e = connection_->authenticate(Clock::now() + connection_->options().timeout, "")) {
                if (e->kind == Error::Kind::Auth) {
                    end(*e);
                    return Outcome::Ended;
                }
                *status = grpc::Status(grpc::StatusCode::UNAVAILABLE, e->message);
                return Outcome::Lost;
            }
            token = connection_->token();
        }
        if (!token.empty()) ctx->AddMetadata("token", token);
        // Without it a member cut off from the quorum keeps the stream open and silent.
        ctx->AddMetadata("hasleader", "true");
        {
            std::lock_guard lock(mutex_);
            if (stopping_) return Outcome::Stopped;
            ctx_ = ctx;
        }
        auto rw = m.watch->Watch(ctx.get());
        pb::WatchRequest request;
        auto* create = request.mutable_create_request();
        create->set_key(prefix_);
        create->set_range_end(prefix_end(prefix_));
        create->set_start_revision(next_revision_);
        create->set_progress_notify(true);
        Outcome outcome = Outcome::Lost;
        if (rw->Write(request)) {
            pb::WatchResponse response;
            while (rw->Read(&response)) {
                if (response.compact_revision() > 0) {
                    Error e{Error::Kind::Compacted,
                            "etcd " + m.url + ": watch of " + prefix_ + " from revision " + std::to_string(next_revision_) +
                                ": compacted up to revision " + std::to_string(response.compact_revision()),
                            response.compact_revision()};
                    end(e);
                    outcome = Outcome::Ended;
                    break;
                }
                if (response.canceled()) {
                    Error e{Error::Kind::NotApplied,
                            "etcd " + m.url + ": watch of " + prefix_ + " cancelled by the server: " + response.cancel_reason()};
                    if (contains(response.cancel_reason(), "permission denied") || contains(response.cancel_reason(), "auth"))
                        e.kind = Error::Kind::Auth;
                    end(e);
                    outcome = Outcome::Ended;
                    break;
                }
                if (response.created()) {
                    *created = true;
                    // "From now": everything up to the creation's revision is behind us.
                    if (next_revision_ == 0) next_revision_ = response.header().revision() + 1;
                    connection_->prefer(index);
                    report(true);
                    continue;
                }
                deliver(response);
            }
        }
        {
            std::lock_guard lock(mutex_);
            ctx_.reset();
            if (stopping_) outcome = Outcome::Stopped;
        }
        if (outcome != Outcome::Lost) ctx->TryCancel();
        *status = rw->Finish();
        return outcome;
    }

    // One call per revision: etcd may batch several revisions into one response, and a
    // revision's events are never split across responses (fragment is off).
    void deliver(const pb::WatchResponse& response) {
        if (response.events_size() == 0) {
            // A progress notification: nothing of ours changed up to this revision.
            const int64_t revision = response.header().revision();
            if (revision >= next_revision_) {
                next_revision_ = revision + 1;
                if (callbacks_.events) callbacks_.events({}, revision);
            }
            return;
        }
        std::vector<Event> batch;
        int64_t revision = 0;
        const auto flush = [&] {
            if (batch.empty()) return;
            // A resumed stream may repeat what an earlier one delivered; skip it.
            if (revision >= next_revision_) {
                next_revision_ = revision + 1;
                if (callbacks_.events) callbacks_.events(batch, revision);
            }
            batch.clear();
        };
        for (const auto& ev : response.events()) {
            if (ev.kv().mod_revision() != revision) flush();
            revision = ev.kv().mod_revision();
            batch.push_back({ev.type() == ::mvccpb::Event::DELETE ? Event::Type::Delete : Event::Type::Put, from_pb(ev.kv())});
        }
        flush();
    }

    std::shared_ptr<Connection> connection_;
    const std::string prefix_;
    int64_t next_revision_;  // the watch thread's: the first revision not delivered yet (0: "now")
    WatchCallbacks callbacks_;
    std::optional<bool> reported_;
    std::mutex mutex_;  // stopping_, ctx_
    std::condition_variable wake_;
    bool stopping_ = false;
    std::shared_ptr<grpc::ClientContext> ctx_;
    std::thread thread_;
};

class ClientImpl final : public Client {
public:
    explicit ClientImpl(const ClientOptions& options) : connection_(std::make_shared<Connection>(options)) {}

    Result<RangeResponse> range(const RangeRequest& request) override {
        pb::RangeRequest req;
        to_pb(request, &req);
        pb::RangeResponse resp;
        if (auto e = connection_->run("range " + request.key, false, [&](Member& m, grpc::ClientContext& ctx) {
                return m.kv->Range(&ctx, req, &resp);
            }))
            return *e;
        return from_pb(resp);
    }

    Result<TxnResponse> txn(const TxnRequest& request) override {
        pb::TxnRequest req;
        for (const auto& c : request.compare) to_pb(c, req.add_compare());
        for (const auto& op : request.success) to_pb(op, req.add_success());
        for (const auto& op : request.failure) to_pb(op, req.add_failure());
        pb::TxnResponse resp;
        const std::string what = "txn" + (request.compare.empty() ? std::string() : " on " + request.compare.front().key);
        if (auto e = connection_->run(what, true, [&](Member& m, grpc::ClientContext& ctx) {
                return m.kv->Txn(&ctx, req, &resp);
            }))
            return *e;
        TxnResponse out;
        out.revision = resp.header().revision();
        out.succeeded = resp.succeeded();
        for (const auto& r : resp.responses()) {
            if (r.has_response_range()) out.responses.push_back(from_pb(r.response_range()));
            else out.responses.push_back({});
        }
        return out;
    }

    Result<int64_t> put(const std::string& key, const std::string& value, int64_t lease) override {
        pb::PutRequest req;
        req.set_key(key);
        req.set_value(value);
        req.set_lease(lease);
        pb::PutResponse resp;
        if (auto e = connection_->run("put " + key, true, [&](Member& m, grpc::ClientContext& ctx) {
                return m.kv->Put(&ctx, req, &resp);
            }))
            return *e;
        return resp.header().revision();
    }

    Result<int64_t> lease_grant(int64_t ttl_seconds) override {
        pb::LeaseGrantRequest req;
        req.set_ttl(ttl_seconds);
        pb::LeaseGrantResponse resp;
        if (auto e = connection_->run("lease grant", true, [&](Member& m, grpc::ClientContext& ctx) {
                return m.lease->LeaseGrant(&ctx, req, &resp);
            }))
            return *e;
        if (!resp.error().empty())
            return Error{Error::Kind::NotApplied, "etcd refused a lease of " + std::to_string(ttl_seconds) + " s: " + resp.error()};
        return resp.id();
    }

    // A refresh is harmless to repeat, so it counts as a read: any member that answers will do.
    Result<int64_t> lease_keep_alive(int64_t lease) override {
        pb::LeaseKeepAliveResponse resp;
        const std::string what = "keep lease " + std::to_string(lease) + " alive";
        if (auto e = connection_->run(what, false, [&](Member& m, grpc::ClientContext& ctx) {
                auto rw = m.lease->LeaseKeepAlive(&ctx);
                pb::LeaseKeepAliveRequest req;
                req.set_id(lease);
                const bool answered = rw->Write(req) && rw->WritesDone() && rw->Read(&resp);
                // etcd ends the stream when the client has closed its side.
                grpc::Status status = rw->Finish();
                if (answered) return grpc::Status::OK;
                if (status.ok()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the keep-alive stream ended without an answer");
                return status;
            }))
            return *e;
        return std::max<int64_t>(resp.ttl(), 0);
    }

    Result<bool> lease_revoke(int64_t lease) override {
        pb::LeaseRevokeRequest req;
        req.set_id(lease);
        pb::LeaseRevokeResponse resp;
        bool gone = false;
        const std::string what = "revoke lease " + std::to_string(lease);
        if (auto e = connection_->run(what, true, [&](Member& m, grpc::ClientContext& ctx) {
                grpc::Status s = m.lease->LeaseRevoke(&ctx, req, &resp);
                // Expired or revoked already: what the caller wanted.
                if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
                    gone = true;
                    return grpc::Status::OK;
                }
                return s;
            }))
            return *e;
        return !gone;
    }

    std::unique_ptr<Watch> watch(const std::string& prefix, int64_t start_revision, WatchCallbacks callbacks) override {
        return std::make_unique<WatchImpl>(connection_, prefix, start_revision, std::move(callbacks));
    }

    const std::vector<std::string>& endpoints() const override { return connection_->options().endpoints; }

private:
    // Shared with the watches, which may outlive the client.
    std::shared_ptr<Connection> connection_;
};

}  // namespace

std::unique_ptr<Client> Client::connect(const ClientOptions& options) { return std::make_unique<ClientImpl>(options); }

}  // namespace sitesfs::etcd
