// The /sites filesystem: a low-level libfuse filesystem over a Store.
//
// Each operation's handler and its logic live in the file named after it (ops.hpp lists them):
// init.cpp, lookup.cpp (lookup, forget), attr.cpp (getattr, setattr, statfs), dir.cpp (opendir,
// readdir, readdirplus), mkdir.cpp, unlink.cpp (unlink, rmdir), create.cpp (create, mknod),
// link.cpp (symlink, link), open.cpp, read.cpp, write.cpp, release.cpp (flush, fsync, release),
// rename.cpp, poll.cpp. Each handler ends in exactly one fuse_reply_*. filesystem.cpp holds the
// core they share: the handles kept, node resolution, content, commits and store-change
// invalidation. The filesystem knows the site schema and the Store interface, nothing of git or
// proxies.
//
// Lock order (a thread may only take a lock to the right of one it holds):
//   Handle::mu  ->  Filesystem::mu_  ->  Store's internal locks  ->  Invalidator::mu_
//   ParkedReads::mu_  ->  Store's internal locks;  a parked read is answered (Handle::mu) with no
//   ParkedReads::mu_ held
//   PollWaits::mu_  ->  Filesystem::mu_  ->  Store's internal locks (a poll checks the content
//   under it); pollers are notified with no lock held, from the Invalidator's thread
// Store mutations (which fsync) are never called with mu_ held, so lookups and reads never wait
// behind a disk flush. Kernel cache invalidations run on the Invalidator's own thread, which
// holds no lock while it calls into the kernel (a handler that did could deadlock).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fs/inode_table.hpp"
#include "fs/invalidator.hpp"
#include "fs/parked_reads.hpp"
#include "fs/poll_waits.hpp"
#include "store/seed_format.hpp"
#include "store/store.hpp"

namespace sitesfs::fs {

struct FsOptions {
    bool read_only = false;
    uid_t uid = 0;
    gid_t gid = 0;
    mode_t file_mode = 0644;  // read-only fields get this without write bits
    mode_t dir_mode = 0755;
    double cache_timeout = 86400;  // entry/attr timeouts: changes are invalidated explicitly
    size_t max_value_bytes = 64 * 1024;
    size_t max_temp_bytes = 1024 * 1024;
    size_t max_temps_per_site = 64;
    std::chrono::milliseconds wait_timeout{300000};  // how long a read of `wait` may wait
    SeedGlobals export_globals;  // the [global] table of /sites/.sites.toml
    // The Prometheus text of /sites/.metrics; empty: no such file.
    std::function<std::string()> metrics;
};

struct DirEntry {
    std::string name;
    fuse_ino_t ino;
    mode_t type;   // S_IFDIR or S_IFREG
    off_t cookie;  // the READDIR offset that continues after this entry
};

struct Handle;

class Filesystem {
public:
    Filesystem(Store& store, FsOptions options);
    ~Filesystem();
    Filesystem(const Filesystem&) = delete;
    Filesystem& operator=(const Filesystem&) = delete;

    static const fuse_lowlevel_ops& operations();

    // Invalidation needs the session; call start() once mounted and stop() before unmounting.
    void start(fuse_session* session);
    void stop();

    // --- shared by the handler files ---
    Store& store() { return store_; }

    // Open files the kernel holds: open and create adopt a handle before replying, release
    // forgets it. A release still in flight when the session ends never arrives, so the
    // destructor does its work (commit a pending value, free) for the handles left.
    void adopt(Handle* h);
    void forget(Handle* h);
    const FsOptions& options() const { return options_; }
    ParkedReads& parked() { return parked_; }
    PollWaits& polls() { return polls_; }

    // A copy of the node behind `ino`, or nothing when the kernel's inode is gone or stale
    // (its site was removed).
    std::optional<Node> node(fuse_ino_t ino);
    // lookup.cpp: resolves `name` in `parent`, adds a lookup reference and fills `e`; returns an
    // errno.
    int lookup(fuse_ino_t parent, std::string_view name, fuse_entry_param& e);
    void forget(fuse_ino_t ino, uint64_t n);
    // lookup.cpp: the entry reply for a node the caller already holds a lookup reference to.
    void fill_entry(const Node& node, fuse_entry_param& e);
    // attr.cpp: attributes of a node; false when it no longer exists.
    bool attr(const Node& node, struct stat& st);
    // dir.cpp: the entries of a directory whose cookie is above `after`, in cookie order. Cookies
    // come from what an entry keeps while it exists (a site's id, a temporary file's number), not
    // from its position, so a listing read over several READDIRs neither repeats nor skips an
    // entry when others come or go meanwhile: there is no per-open snapshot to read it from.
    std::vector<DirEntry> list(const Node& dir, off_t after);
    // Learned in init: the kernel opens directories itself (FUSE_CAP_NO_OPENDIR_SUPPORT), and on
    // a read-only mount files too (FUSE_CAP_NO_OPEN_SUPPORT); such files have no Handle.
    void set_opendir_in_kernel(bool yes) { opendir_in_kernel_ = yes; }
    bool opendir_in_kernel() const { return opendir_in_kernel_; }
    void set_open_in_kernel(bool yes) { open_in_kernel_ = yes; }
    bool open_in_kernel() const { return open_in_kernel_; }

    // The content a reader of `node` sees (value plus newline for fields).
    std::optional<std::string> content(const Node& node);
    // Files whose content changes with no event to invalidate on: every read reaches the daemon.
    static bool uncached(const Node& node) { return node.ino == kMetricsIno; }

    // create.cpp: creating a name in a site: a field name this mount shows as absent comes back
    // (the node is that field; its writer's first value commits it), any other name is a
    // temporary file. `exclusive` (O_EXCL) refuses a field name that is present.
    struct Created {
        int err = 0;
        Node node;
        bool fresh = false;  // a field name that was absent
    };
    Created create(const Node& dir, std::string_view name, mode_t mode, const fuse_ctx* ctx, bool exclusive);
    // unlink.cpp: a temporary file goes; a read-write field's name becomes absent in this mount,
    // its value kept (a site's reports cannot be unlinked).
    int unlink(const Node& dir, std::string_view name);
    // rename.cpp: renames within one site directory: temp over field commits, field onto a new
    // name copies.
    int rename(const Node& dir, std::string_view from, std::string_view to, unsigned flags);
    // Mutates a temp file's data under mu_.
    template <class F>
    auto with_temp(const Node& node, F&& f) {
        std::lock_guard lock(mu_);
        return f(*node.temp);
    }

    // Site directories: mkdir.cpp makes one (and fills `e`), unlink.cpp removes one (rmdir).
    int make_site(std::string_view name, fuse_entry_param& e);
    int remove_site(std::string_view name);

    // Commits a field value through the store, logging a refusal with its reason.
    Outcome commit(const Node& field, std::string_view value);
    // Puts back `value` unless someone changed the field from `expected` meanwhile (logged).
    void restore(const Node& field, std::string_view value, std::string_view expected);

    fuse_ino_t site_ino(uint64_t id) const { return id * kSlotsPerSite; }
    fuse_ino_t field_ino(uint64_t id, size_t index) const { return id * kSlotsPerSite + 1 + index; }

private:
    uint64_t site_id_locked(const std::string& site);
    std::optional<Node> child_locked(const Node& dir, std::string_view name);
    // The node's site was removed (maybe re-created under the same name) since it was looked up.
    bool stale(const Node& node);
    bool stale_locked(const Node& node) const;
    std::vector<InvalTarget> on_change(const Change& change);  // runs on the invalidator thread
    std::shared_ptr<TempFile> temp_locked(const std::string& site, std::string_view name);
    bool drop_temp_locked(const std::string& site, std::string_view name);
    // Whether `field` is absent from the site's names; an unset field of a new site that has
    // gained a value since is present from then on.
    bool absent_locked(const std::string& site, const FieldSpec* field);
    void set_absent_locked(const Node& dir, const FieldSpec* field, bool absent);
    void settle_unset_locked(const std::string& site);
    void forget_site_locked(const std::string& site);
    Node field_node(const Node& dir, const FieldSpec* field) const;
    // Queues the invalidation of a site directory's cached listing (mu_ may be held).
    void listing_changed(const Node& dir);

    Store& store_;
    const FsOptions options_;
    const Timestamp mounted_;

    std::mutex mu_;
    InodeTable inodes_;
    std::unordered_map<std::string, uint64_t> site_ids_;
    uint64_t next_site_id_ = 1;
    uint64_t next_temp_ = 1;
    std::unordered_map<std::string, std::unordered_map<std::string, std::shared_ptr<TempFile>>> temps_;
    // Per site, the read-write fields whose names this mount shows as absent, and why: Unset, the
    // fields of a site made by mkdir here while they have no value (a new directory is empty, so
    // cp -r and tar can create each file; `commit` appears once something is served), and
    // Unlinked, each one unlinked or renamed away since. In memory only: the values are untouched
    // (docs/filesystem.md).
    enum class Absence { Unset, Unlinked };
    std::unordered_map<std::string, std::unordered_map<const FieldSpec*, Absence>> absent_;
    Timestamp root_changed_;

    ParkedReads parked_;
    PollWaits polls_;  // before invalidator_, whose thread wakes them: destroyed after it stopped
    std::shared_ptr<Invalidator> invalidator_;
    std::atomic<bool> opendir_in_kernel_{false};
    std::atomic<bool> open_in_kernel_{false};
    std::mutex handles_mu_;
    std::unordered_set<Handle*> handles_;
};

inline Filesystem& fs_of(fuse_req_t req) { return *static_cast<Filesystem*>(fuse_req_userdata(req)); }

}  // namespace sitesfs::fs
