#include "hooks/git_repo.hpp"

#include <fcntl.h>
#include <git2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>

#include "common/fd.hpp"

namespace sitesfs::hooks {

namespace {

// The only refs a fetch writes: no remote-tracking branches, no tags.
constexpr const char* kFollowedRef = "refs/sitesfs/followed";
constexpr const char* kPinnedRef = "refs/sitesfs/pinned";
// Followed by a submodule commit's 40 hex digits: one ref per commit (fetch_module_commit).
constexpr const char* kModulesRefs = "refs/sitesfs/modules/";

std::string libgit2_message() {
    const git_error* e = git_error_last();
    return e && e->message ? e->message : "unknown libgit2 error";
}

[[noreturn]] void fail(const std::string& doing) { throw GitError(doing + ": " + libgit2_message()); }

void check(int rc, const std::string& doing) {
    if (rc < 0) fail(doing);
}

template <auto Free>
struct Freer {
    template <typename T>
    void operator()(T* p) const { Free(p); }
};
using RepoPtr = std::unique_ptr<git_repository, Freer<git_repository_free>>;
using RemotePtr = std::unique_ptr<git_remote, Freer<git_remote_free>>;
using ConfigPtr = std::unique_ptr<git_config, Freer<git_config_free>>;
using ObjectPtr = std::unique_ptr<git_object, Freer<git_object_free>>;
using CommitPtr = std::unique_ptr<git_commit, Freer<git_commit_free>>;
using TreePtr = std::unique_ptr<git_tree, Freer<git_tree_free>>;
using BlobPtr = std::unique_ptr<git_blob, Freer<git_blob_free>>;
using OdbPtr = std::unique_ptr<git_odb, Freer<git_odb_free>>;
using ReferencePtr = std::unique_ptr<git_reference, Freer<git_reference_free>>;
using EntryPtr = std::unique_ptr<git_tree_entry, Freer<git_tree_entry_free>>;

struct Buf {
    git_buf buf = GIT_BUF_INIT;
    Buf() = default;
    Buf(const Buf&) = delete;
    Buf& operator=(const Buf&) = delete;
    ~Buf() { git_buf_dispose(&buf); }
};

std::string hex(const git_oid& oid) {
    char out[GIT_OID_HEXSZ + 1];
    git_oid_tostr(out, sizeof out, &oid);
    return out;
}

bool is_hex(const std::string& s) {
    return s.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

git_oid full_oid(const std::string& sha, const std::string& what) {
    git_oid oid;
    if (sha.size() != GIT_OID_HEXSZ || !is_hex(sha) || git_oid_fromstrn(&oid, sha.data(), sha.size()) < 0)
        throw GitError(what + ": '" + sha + "' is not a full commit id (40 hex digits)");
    return oid;
}

// ---- remotes ----

// Shared by all callbacks of one remote operation (their `payload`).
struct CallbackState {
    const RemoteOptions* options;
    std::string url;
    std::string refused;  // why remote_ready would not let the connection happen
    std::string host_key;  // why the server's host key was not accepted
    std::string auth;      // why no (further) credential was offered
    int key_offers = 0;
    std::string broken;   // what the cancellation check threw
    bool cancelled = false;
};

// Returns true when the operation must stop. Exceptions cannot cross libgit2's C frames.
bool should_stop(CallbackState& s) {
    if (s.cancelled || !s.refused.empty() || !s.broken.empty()) return true;
    if (!s.options->cancelled) return false;
    try {
        s.cancelled = s.options->cancelled();
    } catch (const std::exception& e) {
        s.broken = std::string("checking for cancellation failed: ") + e.what();
    }
    return s.cancelled || !s.broken.empty();
}

// The last word on the URL: libgit2 calls this with the URL it is about to connect to, so a URL that
// was rewritten or changed after validation is refused before any connection exists.
int on_remote_ready(git_remote* remote, int, void* payload) {
    auto& s = *static_cast<CallbackState*>(payload);
    if (should_stop(s)) return -1;
    const char* url = git_remote_url(remote);
    if (url == nullptr || *url == '\0') {
        s.refused = "the remote has no URL";
        return -1;
    }
    const Checked checked = check_repo(url, s.options->policy);
    if (!checked.ok) {
        s.refused = checked.reason;
        return -1;
    }
    return 0;
}

// The port of an ssh:// URL (22 for scp-like ones), for the known-hosts entry.
int ssh_port(const std::string& url) {
    if (!url.starts_with("ssh://")) return 22;
    const size_t start = url.find('@', 6) != std::string::npos && url.find('@', 6) < url.find('/', 6) ? url.find('@', 6) + 1 : 6;
    const std::string authority = url.substr(start, url.find('/', start) - start);
    const size_t colon = authority.rfind(':');
    if (colon == std::string::npos || authority.back() == ']') return 22;
    try {
        return std::stoi(authority.substr(colon + 1));
    } catch (const std::exception&) {
        return 22;
    }
}

// SSH host keys are checked against sitesfs's own pins, never left to libgit2 (which would read
// $HOME/.ssh/known_hosts); TLS certificates are left to libgit2's verification.
int on_certificate(git_cert* cert, int, const char* host, void* payload) {
    auto& s = *static_cast<CallbackState*>(payload);
    if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2) return GIT_PASSTHROUGH;
    const auto* key = reinterpret_cast<const git_cert_hostkey*>(cert);
    if (!s.options->known_hosts) {
        s.host_key = "no known-hosts store is configured for SSH";
        return -1;
    }
    if (!(key->type & GIT_CERT_SSH_SHA256)) {
        s.host_key = "the server offered no SHA-256 host key fingerprint";
        return -1;
    }
    try {
        s.options->known_hosts->check(host ? host : "", ssh_port(s.url), key->hash_sha256);
    } catch (const std::exception& e) {
        s.host_key = e.what();
        return -1;
    }
    return 0;
}

// Offers the deploy key once. libgit2 calls again after every refusal and would loop forever.
int on_credentials(git_credential** out, const char*, const char* username, unsigned int allowed, void* payload) {
    auto& s = *static_cast<CallbackState*>(payload);
    const std::string user = username && *username ? username : "git";
    if (allowed & GIT_CREDENTIAL_USERNAME) return git_credential_username_new(out, user.c_str());
    if (!s.options->key) {
        s.auth = "the server wants credentials; set deploy_key_ref for a private repository";
        return -1;
    }
    if (!(allowed & GIT_CREDENTIAL_SSH_MEMORY)) {
        s.auth = "the server does not accept an SSH key (use an ssh:// or git@host: URL with a deploy key)";
        return -1;
    }
    if (s.key_offers++ > 0) {
        s.auth = "the server refused deploy key " + s.options->key_ref + " for user '" + user + "'";
        return -1;
    }
    return git_credential_ssh_key_memory_new(out, user.c_str(), nullptr, s.options->key->c_str(), nullptr);
}

int on_sideband(const char*, int, void* payload) {
    return should_stop(*static_cast<CallbackState*>(payload)) ? -1 : 0;
}

int on_transfer(const git_indexer_progress*, void* payload) {
    return should_stop(*static_cast<CallbackState*>(payload)) ? -1 : 0;
}

git_remote_callbacks callbacks(CallbackState& state) {
    git_remote_callbacks cb;
    git_remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
    cb.remote_ready = on_remote_ready;
    cb.sideband_progress = on_sideband;
    cb.transfer_progress = on_transfer;
    cb.certificate_check = on_certificate;
    cb.credentials = on_credentials;
    cb.payload = &state;
    return cb;
}

// An SSH URL (ssh:// or scp-like user@host:path): libssh2 drives the socket itself.
bool uses_ssh(const std::string& url) {
    if (url.find("://") != std::string::npos) return url.starts_with("ssh://");
    return !url.starts_with('/') && url.find(':') != std::string::npos;
}

// One remote operation: the callbacks' state, and the limits its connections obey (in force on
// this thread while it lives).
struct Operation {
    CallbackState state;
    StreamSettings settings;
    StreamScope scope{settings};

    Operation(const RemoteOptions& options, const std::string& url) : state{&options, url} {
        settings.limits = options.timeouts;
        settings.stop = [this] { return should_stop(state); };
        settings.watch = uses_ssh(url);
        settings.cancelled = &options.cancelled;
    }
    Operation(const Operation&) = delete;
    Operation& operator=(const Operation&) = delete;
};

// After a failed libgit2 call during a remote operation: throws our own reason when a callback or
// the stream stopped it (libgit2 then only says "callback returned -1" or what libssh2 saw of a
// closed socket); returns when libgit2's own error is the reason.
void throw_own_reason(Operation& op, const std::string& url, const std::string& doing) {
    const CallbackState& state = op.state;
    if (!state.refused.empty()) throw GitError(doing + " refused: " + state.refused);
    if (!state.host_key.empty()) throw GitError(doing + ": " + state.host_key);
    if (!state.auth.empty()) throw GitError(doing + ": " + state.auth);
    if (!state.broken.empty()) throw GitError(doing + ": " + state.broken);
    {
        StreamReport& report = *op.settings.report;
        const std::lock_guard lock(report.mu);
        if (!report.failure.empty()) throw GitError(doing + ": " + report.failure);
        if (report.cancelled) throw GitError(doing + ": cancelled");
    }
    if (state.cancelled) throw GitError(doing + ": cancelled");
    // libgit2 only recognises a plain path as a repository when the directory exists, and otherwise
    // says "unsupported URL protocol".
    std::error_code ec;
    if (url.starts_with('/') && !std::filesystem::is_directory(url, ec))
        throw GitError(doing + ": there is no repository directory at " + url);
}

// A failed libgit2 call during a remote operation: our reason, or libgit2's.
[[noreturn]] void remote_failed(Operation& op, const std::string& url, const std::string& doing) {
    throw_own_reason(op, url, doing);
    fail(doing);
}

void connect(git_remote* remote, Operation& op, const std::string& url, const std::string& doing) {
    git_remote_connect_options opts;
    git_remote_connect_options_init(&opts, GIT_REMOTE_CONNECT_OPTIONS_VERSION);
    opts.callbacks = callbacks(op.state);
    opts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
    if (git_remote_connect_ext(remote, GIT_DIRECTION_FETCH, &opts) < 0) remote_failed(op, url, doing);
}

struct RemoteRef {
    std::string name;  // refs/heads/...
    std::string sha;
};

// The advertised ref for `branch`, or for the remote's default branch when `branch` is empty.
RemoteRef find_branch(git_remote* remote, const std::string& url, const std::string& branch,
                      const std::string& doing) {
    const git_remote_head** heads = nullptr;
    size_t count = 0;
    check(git_remote_ls(&heads, &count, remote), doing);
    std::string name = "refs/heads/" + branch;
    if (branch.empty()) {
        Buf target;
        const int rc = git_remote_default_branch(&target.buf, remote);
        if (rc == GIT_ENOTFOUND)
            throw GitError(url + " has no default branch (its HEAD names no branch); set a branch");
        check(rc, doing + ": finding the default branch");
        name.assign(target.buf.ptr, target.buf.size);
    }
    for (size_t i = 0; i < count; ++i)
        if (name == heads[i]->name) return {name, hex(heads[i]->oid)};
    throw GitError(branch.empty() ? url + " names " + name + " as its default branch, but does not have it"
                                  : "branch '" + branch + "' not found on " + url);
}

// An in-memory remote of this repository (no name, nothing in its config) that never applies
// url.*.insteadOf, so the URL that was checked is the URL that is fetched.
RemotePtr repo_remote(git_repository* repo, const std::string& url, const std::string& doing) {
    git_remote_create_options opts;
    git_remote_create_options_init(&opts, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    opts.repository = repo;
    opts.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    git_remote* remote = nullptr;
    check(git_remote_create_with_opts(&remote, url.c_str(), &opts), doing);
    return RemotePtr(remote);
}

// Fetches one refspec into this repository over `remote` (connected or not); false when it failed
// (then report it with remote_failed).
[[nodiscard]] bool fetch(git_remote* remote, Operation& op, const std::string& refspec) {
    git_fetch_options opts;
    git_fetch_options_init(&opts, GIT_FETCH_OPTIONS_VERSION);
    opts.callbacks = callbacks(op.state);
    opts.prune = GIT_FETCH_NO_PRUNE;
    opts.update_fetchhead = 0;
    opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    opts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
    char* spec = const_cast<char*>(refspec.c_str());
    const git_strarray specs{&spec, 1};
    return git_remote_fetch(remote, &specs, &opts, nullptr) >= 0;
}

// Whether the fetch of commit `oid` that just failed was told the server has no such commit. git
// upload-pack (over SSH, and wherever its words get through) refuses a want it does not have with
// "not our ref SHA"; it says the same of a commit no ref of its reaches, which for a deploy is no
// different. libgit2's local transport skips a want the remote lacks and then cannot point the ref
// at it.
bool server_lacks_commit(git_repository* repo, const git_oid& oid) {
    const git_error* e = git_error_last();
    if (e == nullptr || e->message == nullptr) return false;
    if (std::string_view(e->message).find("not our ref " + hex(oid)) != std::string_view::npos) return true;
    if (e->klass != GIT_ERROR_REFERENCE) return false;
    git_odb* raw = nullptr;
    if (git_repository_odb(&raw, repo) < 0) return false;
    const OdbPtr odb(raw);
    return git_odb_exists(odb.get(), &oid) == 0;
}

// Whether the fetch by id that just failed was refused by libgit2 itself: it asks for an id only
// when the server advertises allow-tip-sha1-in-want or allow-reachable-sha1-in-want, which git
// upload-pack does not by default.
bool server_takes_no_ids() {
    const git_error* e = git_error_last();
    return e != nullptr && e->klass == GIT_ERROR_INVALID && e->message != nullptr &&
           std::string_view(e->message) == "cannot fetch a specific object from the remote repository";
}

// fetch_commit_into: the server does not let a client ask for a commit by id. A GitError to every
// caller but fetch_module_commit, which then fetches the default branch.
struct NoFetchByIdError : GitError {
    using GitError::GitError;
};

std::string ref_target(git_repository* repo, const char* ref, const std::string& doing) {
    git_oid oid;
    check(git_reference_name_to_id(&oid, repo, ref), doing + ": reading " + ref);
    return hex(oid);
}

// ---- reading and writing a tree ----

// Why a tree entry of this name is never written (nor anything under it), or "" when it may be.
std::string unwritten_name(const std::string& name) {
    if (ReleaseWriter::is_unsafe_name(name)) return "not a safe file name";
    if (ReleaseWriter::is_dot_git(name)) return ".git is never written";
    return "";
}

CommitPtr lookup_commit(git_repository* repo, const git_oid& oid, const std::string& doing) {
    git_commit* raw = nullptr;
    check(git_commit_lookup(&raw, repo, &oid), doing);
    return CommitPtr(raw);
}

TreePtr commit_tree(const git_commit* commit, const std::string& doing) {
    git_tree* raw = nullptr;
    check(git_commit_tree(&raw, commit), doing);
    return TreePtr(raw);
}

TreePtr lookup_tree(git_repository* repo, const git_oid& oid, const std::string& doing) {
    git_tree* raw = nullptr;
    check(git_tree_lookup(&raw, repo, &oid), doing);
    return TreePtr(raw);
}

// The tree of commit `sha` (40 hex), which must be in `repo`.
TreePtr tree_of(git_repository* repo, const std::string& sha, const std::string& doing) {
    const git_oid oid = full_oid(sha, doing);
    return commit_tree(lookup_commit(repo, oid, "reading commit " + sha).get(), "reading the tree of commit " + sha);
}

// Collects the gitlinks under `tree`. Identical subtrees cost nothing in git, so a small crafted
// repository can repeat one subtree exponentially often: a subtree found to hold no gitlink is
// remembered and not walked again, and one that holds some adds at least one to `out` per walk,
// which `max` bounds.
class GitlinkCollector {
public:
    GitlinkCollector(git_repository* repo, size_t max) : repo_(repo), max_(max) {}

    // Returns whether `tree` holds a gitlink.
    bool walk(const git_tree* tree, const std::string& prefix, int depth) {
        ReleaseWriter::check_depth(depth, shown_name(prefix));
        bool found = false;
        const size_t count = git_tree_entrycount(tree);
        for (size_t i = 0; i < count && out.size() <= max_; ++i) {
            const git_tree_entry* entry = git_tree_entry_byindex(tree, i);
            const std::string name = git_tree_entry_name(entry);
            if (!unwritten_name(name).empty()) continue;
            const std::string path = prefix.empty() ? name : prefix + "/" + name;
            const git_oid& id = *git_tree_entry_id(entry);
            if (git_tree_entry_filemode(entry) == GIT_FILEMODE_COMMIT) {
                out.push_back({path, hex(id)});
                found = true;
            } else if (git_tree_entry_filemode(entry) == GIT_FILEMODE_TREE) {
                const std::string raw_id(reinterpret_cast<const char*>(id.id), GIT_OID_RAWSZ);
                if (plain_.contains(raw_id)) continue;
                const TreePtr sub = lookup_tree(repo_, id, "reading directory " + shown_name(path) + " from git");
                if (walk(sub.get(), path, depth + 1)) found = true;
                else plain_.insert(raw_id);
            }
        }
        return found;
    }

    std::vector<Gitlink> out;

private:
    git_repository* repo_;
    size_t max_;
    std::set<std::string> plain_;  // raw ids of trees without gitlinks
};

class TreeWriter {
public:
    TreeWriter(git_repository* repo, const TreeLimits& limits, Submodules submodules, TreeReport& report)
        : repo_(repo), writer_(limits, report), submodules_(submodules), report_(report) {
        git_odb* odb = nullptr;
        check(git_repository_odb(&odb, repo), "opening the object database");
        odb_.reset(odb);
    }

    // `modules`: how many submodules deep `tree` is (0 in the commit being written).
    void write_dir(const git_tree* tree, int dirfd, const std::string& prefix, int depth, int modules) {
        writer_.check_depth(depth, prefix);
        const size_t count = git_tree_entrycount(tree);
        for (size_t i = 0; i < count; ++i) {
            const git_tree_entry* entry = git_tree_entry_byindex(tree, i);
            const std::string name = git_tree_entry_name(entry);
            const std::string path = prefix.empty() ? shown_name(name) : prefix + "/" + shown_name(name);
            if (const std::string why = unwritten_name(name); !why.empty()) {
                report_.skipped.push_back(path + ": " + why);
                continue;
            }
            const git_filemode_t mode = git_tree_entry_filemode(entry);
            switch (mode) {
            case GIT_FILEMODE_TREE:
                write_subdir(lookup_tree(repo_, *git_tree_entry_id(entry), "reading directory " + path + " from git"),
                             dirfd, name, path, depth, modules);
                break;
            case GIT_FILEMODE_BLOB:
            case GIT_FILEMODE_BLOB_EXECUTABLE:
                write_file(*git_tree_entry_id(entry), dirfd, name, path, mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644);
                break;
            case GIT_FILEMODE_LINK:
                write_file(*git_tree_entry_id(entry), dirfd, name, path, 0644);
                report_.skipped.push_back(path + ": symbolic link, written as a plain file holding the link text");
                break;
            case GIT_FILEMODE_COMMIT:
                if (submodules_ == Submodules::Recursive) {
                    write_submodule(*git_tree_entry_id(entry), dirfd, name, path, depth, modules + 1);
                    break;
                }
                report_.skipped.push_back(path + ": submodule (commit " + hex(*git_tree_entry_id(entry)).substr(0, 12) +
                                          ") is not fetched");
                break;
            default: {
                char octal[16];
                std::snprintf(octal, sizeof octal, "%o", static_cast<unsigned>(mode));
                report_.skipped.push_back(path + ": unknown git file mode " + octal);
            }
            }
        }
    }

private:
    // The submodule's commit was fetched into this repository (fetch_module_commit), so its tree
    // is written like a directory of the superproject.
    void write_submodule(const git_oid& commit, int dirfd, const std::string& name, const std::string& path, int depth,
                         int modules) {
        if (modules > kMaxSubmoduleDepth)
            throw GitError("submodules nest deeper than " + std::to_string(kMaxSubmoduleDepth) + " levels at " + path);
        git_object* raw = nullptr;
        const int rc = git_object_lookup(&raw, repo_, &commit, GIT_OBJECT_COMMIT);
        if (rc == GIT_ENOTFOUND)
            throw GitError("submodule " + path + ": commit " + hex(commit) +
                           " is not in the repository; its submodules were not fetched");
        check(rc, "reading commit " + hex(commit) + " of submodule " + path);
        const CommitPtr sub(reinterpret_cast<git_commit*>(raw));
        write_subdir(commit_tree(sub.get(), "reading the tree of submodule " + path), dirfd, name, path, depth, modules);
    }

    void write_subdir(const TreePtr& subtree, int dirfd, const std::string& name, const std::string& path, int depth,
                      int modules) {
        const Fd fd = writer_.make_dir(dirfd, name, path);
        write_dir(subtree.get(), fd.get(), path, depth + 1, modules);
    }

    void write_file(const git_oid& id, int dirfd, const std::string& name, const std::string& path, mode_t mode) {
        // The size comes from the object header, so an oversized blob is refused before it is inflated.
        size_t size = 0;
        git_object_t type = GIT_OBJECT_INVALID;
        check(git_odb_read_header(&size, &type, odb_.get(), &id), "reading " + path + " from git");
        Fd fd = writer_.make_file(dirfd, name, path, mode, size);
        git_blob* raw = nullptr;
        check(git_blob_lookup(&raw, repo_, &id), "reading " + path + " from git");
        const BlobPtr blob(raw);
        ReleaseWriter::write_all(fd.get(), {static_cast<const char*>(git_blob_rawcontent(blob.get())),
                                            static_cast<size_t>(git_blob_rawsize(blob.get()))}, path);
        writer_.close_file(fd, size, path);
    }

    git_repository* repo_;
    ReleaseWriter writer_;
    Submodules submodules_;
    TreeReport& report_;
    OdbPtr odb_;
};

}  // namespace

void init_git() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (git_libgit2_init() < 0) fail("starting libgit2");
        // An empty search path means no file at that level: the host's /etc/gitconfig, ~/.gitconfig
        // and ~/.config/git/config can neither rewrite URLs (insteadOf) nor change fetch behaviour.
        for (const int level : {GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_GLOBAL, GIT_CONFIG_LEVEL_XDG,
                                GIT_CONFIG_LEVEL_PROGRAMDATA})
            check(git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, level, ""), "switching off the host's git configuration");
        register_git_stream();
    });
}

GitRepo::GitRepo(const std::filesystem::path& dir) : dir_(dir) {
    git_repository* raw = nullptr;
    int rc = git_repository_open_ext(&raw, dir.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE, nullptr);
    if (rc == GIT_ENOTFOUND) {
        git_repository_init_options opts;
        git_repository_init_options_init(&opts, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
        // No template: nothing from the host's git installation (sample hooks, info/exclude) is copied in.
        opts.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKDIR;
        rc = git_repository_init_ext(&raw, dir.c_str(), &opts);
        check(rc, "creating the git repository " + dir.string());
    } else {
        check(rc, "opening the git repository " + dir.string());
    }
    RepoPtr repo(raw);
    // The whole history, with paths outside the served one and whatever a private repo holds:
    // only sitesfs reads it (Caddy serves releases), so it is closed to everyone else, also when
    // an older sitesfs made it open.
    if (::chmod(dir.c_str(), 0700) != 0)
        throw GitError("closing the git repository " + dir.string() + " to other users: " + std::strerror(errno));
    git_config* cfg = nullptr;
    check(git_repository_config(&cfg, repo.get()), "opening the configuration of " + dir.string());
    const ConfigPtr config(cfg);
    check(git_config_set_bool(config.get(), "core.symlinks", 0), "setting core.symlinks in " + dir.string());
    repo_ = repo.release();
}

GitRepo::~GitRepo() { git_repository_free(repo_); }

std::string GitRepo::remote_head(const std::string& url, const std::string& branch, const RemoteOptions& options) {
    const std::string doing = "ls-remote " + url;
    // Before the remote: the remote's streams are closed when it goes (TLS sends close_notify then),
    // and still use the operation's settings.
    Operation op(options, url);
    git_remote* raw = nullptr;
    check(git_remote_create_detached(&raw, url.c_str()), doing);
    const RemotePtr remote(raw);
    connect(remote.get(), op, url, doing);
    return find_branch(remote.get(), url, branch, doing).sha;
}

std::string GitRepo::fetch_branch(const std::string& url, const std::string& branch, const RemoteOptions& options) {
    return fetch_branch_into(url, branch, options, kFollowedRef);
}

std::string GitRepo::fetch_branch_into(const std::string& url, const std::string& branch, const RemoteOptions& options,
                                       const std::string& ref_name) {
    const std::string doing = "fetch " + url;
    Operation op(options, url);  // outlives the remote, as in remote_head
    const RemotePtr remote = repo_remote(repo_, url, doing);
    // Connect and list first: the default branch has to be named in the refspec, and a missing
    // branch is reported as such rather than as a refspec that matched nothing.
    connect(remote.get(), op, url, doing);
    const RemoteRef ref = find_branch(remote.get(), url, branch, doing);
    if (!fetch(remote.get(), op, "+" + ref.name + ":" + ref_name)) remote_failed(op, url, doing);
    return ref_target(repo_, ref_name.c_str(), doing);
}

std::string GitRepo::fetch_commit(const std::string& url, const std::string& sha40, const RemoteOptions& options) {
    return fetch_commit_into(url, sha40, options, kPinnedRef);
}

std::string GitRepo::fetch_commit_into(const std::string& url, const std::string& sha40, const RemoteOptions& options,
                                       const std::string& ref_name) {
    const std::string doing = "fetch " + url;
    const git_oid oid = full_oid(sha40, doing);
    Operation op(options, url);  // outlives the remote, as in remote_head
    const RemotePtr remote = repo_remote(repo_, url, doing);
    if (!fetch(remote.get(), op, "+" + hex(oid) + ":" + ref_name)) {
        const std::string failed = doing + " commit " + hex(oid);
        throw_own_reason(op, url, failed);
        const std::string reason = libgit2_message();  // before looking into the object database
        if (server_takes_no_ids()) throw NoFetchByIdError(failed + ": " + reason);
        if (server_lacks_commit(repo_, oid))
            throw NoSuchCommitError("commit " + hex(oid) + " is not in " + url +
                                    ": asked the server for it by id; it has no such commit");
        throw GitError(failed + ": " + reason);
    }
    const std::string got = ref_target(repo_, ref_name.c_str(), doing);
    if (find_commit(got).empty()) throw GitError(doing + ": " + got + " is not a commit");
    return got;
}

bool GitRepo::fetch_module_commit(const std::string& url, const std::string& sha40, const RemoteOptions& options) {
    const git_oid oid = full_oid(sha40, "fetch " + url);
    const std::string ref_name = kModulesRefs + hex(oid);
    // git upload-pack gives out a commit by id only when one of its refs points at it, unless it is
    // configured otherwise (uploadpack.allowReachableSHA1InWant): by default it takes no ids at
    // all, with allowTipSHA1InWant it answers "not our ref". A submodule's commit is usually on
    // the default branch, below its tip.
    try {
        fetch_commit_into(url, sha40, options, ref_name);
        return true;
    } catch (const NoSuchCommitError&) {
    } catch (const NoFetchByIdError&) {
    }
    const std::string doing = "fetch " + url;
    fetch_branch_into(url, "", options, ref_name);
    if (find_commit(sha40).empty()) {
        check(git_reference_remove(repo_, ref_name.c_str()), doing + ": removing " + ref_name);
        return false;
    }
    // The ref keeps the commit, not the branch it came with.
    git_reference* raw = nullptr;
    check(git_reference_create(&raw, repo_, ref_name.c_str(), &oid, 1, nullptr), doing + ": setting " + ref_name);
    const ReferencePtr ref(raw);
    return true;
}

std::string GitRepo::find_commit(const std::string& hexdigits) const {
    if (hexdigits.size() < 7 || hexdigits.size() > GIT_OID_HEXSZ || !is_hex(hexdigits))
        throw GitError("'" + hexdigits + "' is not a commit id: write 7 to 40 hex digits");
    git_oid oid;
    check(git_oid_fromstrn(&oid, hexdigits.data(), hexdigits.size()), "reading commit id " + hexdigits);
    git_object* raw = nullptr;
    // Looked up as any type, so that a prefix naming a tree or blob is reported as what it is.
    const int rc = git_object_lookup_prefix(&raw, repo_, &oid, hexdigits.size(), GIT_OBJECT_ANY);
    if (rc == GIT_ENOTFOUND) return "";
    if (rc == GIT_EAMBIGUOUS)
        throw GitError("commit prefix " + hexdigits + " is ambiguous; write more digits");
    check(rc, "looking up commit " + hexdigits);
    const ObjectPtr object(raw);
    if (git_object_type(object.get()) != GIT_OBJECT_COMMIT)
        throw GitError(hexdigits + " names a " + git_object_type2string(git_object_type(object.get())) +
                       ", not a commit");
    return hex(*git_object_id(object.get()));
}

std::optional<std::string> GitRepo::read_file(const std::string& sha, const std::string& path, uint64_t max_bytes) const {
    const TreePtr tree = tree_of(repo_, sha, "reading " + shown_name(path) + " of commit " + sha);
    const std::string where = shown_name(path) + " in commit " + sha;
    git_tree_entry* raw = nullptr;
    const int rc = git_tree_entry_bypath(&raw, tree.get(), path.c_str());
    if (rc == GIT_ENOTFOUND) return std::nullopt;
    check(rc, "looking up " + where);
    const EntryPtr entry(raw);
    const git_filemode_t mode = git_tree_entry_filemode(entry.get());
    if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE)
        throw GitError(where + " is not a regular file" + (mode == GIT_FILEMODE_LINK ? " but a symbolic link" : ""));
    git_odb* rawodb = nullptr;
    check(git_repository_odb(&rawodb, repo_), "opening the object database");
    const OdbPtr odb(rawodb);
    size_t size = 0;
    git_object_t type = GIT_OBJECT_INVALID;
    check(git_odb_read_header(&size, &type, odb.get(), git_tree_entry_id(entry.get())), "reading " + where);
    if (size > max_bytes)
        throw GitError(where + " has " + std::to_string(size) + " bytes; at most " + std::to_string(max_bytes) +
                       " are read");
    git_blob* rawblob = nullptr;
    check(git_blob_lookup(&rawblob, repo_, git_tree_entry_id(entry.get())), "reading " + where);
    const BlobPtr blob(rawblob);
    return std::string(static_cast<const char*>(git_blob_rawcontent(blob.get())),
                       static_cast<size_t>(git_blob_rawsize(blob.get())));
}

std::vector<Gitlink> GitRepo::gitlinks(const std::string& sha, size_t max) const {
    const TreePtr tree = tree_of(repo_, sha, "listing the submodules of " + sha);
    GitlinkCollector collector(repo_, max);
    collector.walk(tree.get(), "", 0);
    return std::move(collector.out);
}

TreeReport GitRepo::write_tree(const std::string& sha, const std::filesystem::path& dir, const TreeLimits& limits,
                               Submodules submodules) const {
    const TreePtr tree = tree_of(repo_, sha, "writing the tree of " + sha);

    if (::mkdir(dir.c_str(), 0755) < 0)
        throw GitError("creating the release directory " + dir.string() + ": " + std::strerror(errno));
    const Fd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (root.get() < 0 || ::fchmod(root.get(), 0755) < 0)
        throw GitError("opening the release directory " + dir.string() + ": " + std::strerror(errno));

    TreeReport report;
    TreeWriter(repo_, limits, submodules, report).write_dir(tree.get(), root.get(), "", 0, 0);
    return report;
}

}  // namespace sitesfs::hooks
