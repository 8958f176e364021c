#include "fs/filesystem.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>

#include "fs/handles.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs {

namespace {

timespec to_timespec(Timestamp t) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

void set_times(struct stat& st, Timestamp m, Timestamp c) {
    st.st_mtim = st.st_atim = to_timespec(m);
    st.st_ctim = to_timespec(c);
}

// READDIR cookies: 1 and 2 are . and ..; the root's export is 3 and a site's is 3 + its id; in a
// site, field i is 3 + i and a temporary file 3 + kSlotsPerSite + its number.
constexpr off_t kDotCookies = 2;

void sort_by_cookie(std::vector<DirEntry>::iterator from, std::vector<DirEntry>::iterator to) {
    std::sort(from, to, [](const DirEntry& a, const DirEntry& b) { return a.cookie < b.cookie; });
}

// Whether a change of `kind` can alter what `field` shows or its mtime (see ChangedBy).
bool reaches(Change::Kind kind, const FieldSpec& field) {
    switch (kind) {
        case Change::Kind::Desired:
        case Change::Kind::Times:
            return field.changed_by != ChangedBy::Reports;
        case Change::Kind::Actual:
            return field.changed_by != ChangedBy::Writes;
        default:
            return true;
    }
}

}  // namespace

Filesystem::Filesystem(Store& store, FsOptions options)
    : store_(store),
      options_(std::move(options)),
      mounted_(Clock::now()),
      root_changed_(mounted_),
      parked_(
          [this](const FieldSpec& field, const std::string& site, uint64_t generation, int& err) {
              const SiteRef s = store_.site(site);
              if (!s) err = ENOENT;
              if (!s || !field.settled(*s, generation)) return std::optional<std::string>();
              return std::optional<std::string>(field.render(*s) + "\n");
          },
          options_.wait_timeout) {
    static_assert(kSlotsPerSite > 1);
    if (site_fields().size() + 1 > kSlotsPerSite) throw std::logic_error("site schema has too many fields");
    invalidator_ = std::make_shared<Invalidator>([this](const Change& c) { return on_change(c); });
    // The store outlives us; a weak reference keeps its listener harmless after we are gone.
    store_.subscribe([weak = std::weak_ptr<Invalidator>(invalidator_)](const Change& c) {
        if (auto inv = weak.lock()) inv->push(c);
    });
}

Filesystem::~Filesystem() {
    stop();
    for (Handle* h : handles_) {
        if (h->kind == HandleKind::FieldWriter) {
            std::lock_guard lock(h->mu);
            commit_pending(*this, *h);
        }
        delete h;
    }
}

void Filesystem::adopt(Handle* h) {
    std::lock_guard lock(handles_mu_);
    handles_.insert(h);
}

void Filesystem::forget(Handle* h) {
    std::lock_guard lock(handles_mu_);
    handles_.erase(h);
}

void Filesystem::start(fuse_session* session) {
    parked_.start();
    invalidator_->start(session);
}

void Filesystem::stop() {
    invalidator_->stop();
    parked_.stop();
}

const fuse_lowlevel_ops& Filesystem::operations() {
    static const fuse_lowlevel_ops table = [] {
        fuse_lowlevel_ops o{};
        o.init = ops::init;
        o.lookup = ops::lookup;
        o.forget = ops::forget;
        o.forget_multi = ops::forget_multi;
        o.getattr = ops::getattr;
        o.setattr = ops::setattr;
        o.statfs = ops::statfs;
        o.opendir = ops::opendir;
        o.readdir = ops::readdir;
        o.readdirplus = ops::readdirplus;
        o.mkdir = ops::mkdir;
        o.rmdir = ops::rmdir;
        o.open = ops::open;
        o.create = ops::create;
        o.mknod = ops::mknod;
        o.flush = ops::flush;
        o.fsync = ops::fsync;
        o.release = ops::release;
        o.read = ops::read;
        o.write = ops::write;
        o.rename = ops::rename;
        o.unlink = ops::unlink;
        o.symlink = ops::symlink;
        o.link = ops::link;
        return o;
    }();
    return table;
}

void ops::init(void* userdata, fuse_conn_info* conn) {
    auto& fs = *static_cast<Filesystem*>(userdata);
    // The kernel must not merge or defer writes: write() has to return our verdict on the value.
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    // A listing the kernel cached while a site came or went (the READDIR answered before the
    // change, the cache filled after its invalidation) is dropped at the next opendir only because
    // the kernel then compares the directory's mtime, which every such change moves.
    if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA) conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
    fs.set_opendir_in_kernel(conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT);
    // Read-only, no open needs state of its own (no writers; `wait` and .metrics are not served,
    // see child_locked), so files open in the kernel too: no OPEN and no RELEASE per file.
    fs.set_open_in_kernel(fs.options().read_only && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT));
}

uint64_t Filesystem::site_id_locked(const std::string& site) {
    auto [it, inserted] = site_ids_.try_emplace(site, next_site_id_);
    if (inserted) ++next_site_id_;
    return it->second;
}

bool Filesystem::stale_locked(const Node& node) const {
    if (node.site.empty() || node.kind == NodeKind::Temp) return false;
    auto it = site_ids_.find(node.site);
    return it == site_ids_.end() || it->second != node.site_id || !store_.site(node.site);
}

std::optional<Node> Filesystem::node(fuse_ino_t ino) {
    std::lock_guard lock(mu_);
    const Node* n = inodes_.find(ino);
    if (!n || stale_locked(*n)) return std::nullopt;
    return *n;
}

std::shared_ptr<TempFile> Filesystem::temp_locked(const std::string& site, std::string_view name) {
    auto s = temps_.find(site);
    if (s == temps_.end()) return nullptr;
    auto t = s->second.find(std::string(name));
    return t == s->second.end() ? nullptr : t->second;
}

std::optional<Node> Filesystem::child_locked(const Node& dir, std::string_view name) {
    if (dir.kind == NodeKind::Root) {
        if (name == kExportName) return Node{kExportIno, NodeKind::Export};
        // .metrics changes with every read, and only a per-open direct_io read serves it whole and
        // current; a read-only mount opens files without telling sitesfs (init), so it has none.
        if (name == kMetricsName && options_.metrics && !options_.read_only) return Node{kMetricsIno, NodeKind::Export};
        if (!store_.site(name)) return std::nullopt;
        std::string site(name);
        const uint64_t id = site_id_locked(site);
        return Node{site_ino(id), NodeKind::SiteDir, site, id};
    }
    if (dir.kind != NodeKind::SiteDir) return std::nullopt;
    const auto fields = site_fields();
    for (size_t i = 0; i < fields.size(); ++i) {
        if (fields[i].name != name) continue;
        // A waiting file needs a handle per open (the generation it waits for); see .metrics above.
        if (fields[i].settled && options_.read_only) return std::nullopt;
        if (absent_locked(dir.site, &fields[i])) return std::nullopt;
        return Node{field_ino(dir.site_id, i), NodeKind::Field, dir.site, dir.site_id, &fields[i]};
    }
    if (auto temp = temp_locked(dir.site, name))
        return Node{temp->ino, NodeKind::Temp, dir.site, dir.site_id, nullptr, temp};
    return std::nullopt;
}

int Filesystem::lookup(fuse_ino_t parent, std::string_view name, fuse_entry_param& e) {
    Node found;
    {
        std::lock_guard lock(mu_);
        const Node* dir = inodes_.find(parent);
        if (!dir || stale_locked(*dir)) return ENOENT;
        if (dir->kind != NodeKind::Root && dir->kind != NodeKind::SiteDir) return ENOTDIR;
        auto child = child_locked(*dir, name);
        if (!child) return ENOENT;
        found = inodes_.remember(*child);
    }
    fill_entry(found, e);
    return 0;
}

void Filesystem::fill_entry(const Node& node, fuse_entry_param& e) {
    e = fuse_entry_param{};
    e.ino = node.ino;
    e.attr_timeout = e.entry_timeout = options_.cache_timeout;
    if (uncached(node)) e.attr_timeout = 0;
    attr(node, e.attr);
}

void Filesystem::forget(fuse_ino_t ino, uint64_t n) {
    std::lock_guard lock(mu_);
    inodes_.forget(ino, n);
}

bool Filesystem::attr(const Node& node, struct stat& st) {
    st = {};
    st.st_ino = node.ino;
    st.st_uid = options_.uid;
    st.st_gid = options_.gid;
    st.st_blksize = 4096;
    st.st_nlink = 1;
    switch (node.kind) {
        case NodeKind::Root: {
            st.st_mode = S_IFDIR | options_.dir_mode;
            st.st_nlink = 2 + store_.site_count();
            std::lock_guard lock(mu_);
            set_times(st, root_changed_, root_changed_);
            break;
        }
        case NodeKind::Export: {
            st.st_mode = S_IFREG | (options_.file_mode & ~0222);
            st.st_size = static_cast<off_t>(content(node).value_or("").size());
            std::lock_guard lock(mu_);
            set_times(st, root_changed_, root_changed_);
            break;
        }
        case NodeKind::SiteDir: {
            auto site = store_.site(node.site);
            if (!site) return false;
            st.st_mode = S_IFDIR | options_.dir_mode;
            st.st_nlink = 2;
            set_times(st, site->created, site->created);
            break;
        }
        case NodeKind::Field: {
            auto site = store_.site(node.site);
            if (!site) return false;
            st.st_mode = S_IFREG | (is_writable(*node.field) ? options_.file_mode : options_.file_mode & ~0222);
            st.st_size = static_cast<off_t>(node.field->render(*site).size() + 1);
            const Timestamp changed = node.field->changed(*site);
            set_times(st, changed, changed);
            break;
        }
        case NodeKind::Temp: {
            std::lock_guard lock(mu_);
            const TempFile& t = *node.temp;
            st.st_mode = S_IFREG | t.mode;
            st.st_uid = t.uid;
            st.st_gid = t.gid;
            st.st_size = static_cast<off_t>(t.data.size());
            set_times(st, t.mtime, t.ctime);
            break;
        }
    }
    st.st_blocks = (st.st_size + 511) / 512;
    return true;
}

std::vector<DirEntry> Filesystem::list(const Node& dir, off_t after) {
    std::vector<DirEntry> out;
    auto add = [&](std::string_view name, fuse_ino_t ino, mode_t type, off_t cookie) {
        if (cookie > after) out.push_back({std::string(name), ino, type, cookie});
    };
    add(".", dir.ino, S_IFDIR, 1);
    add("..", kRootIno, S_IFDIR, 2);
    if (dir.kind == NodeKind::Root) {
        // .metrics is reachable by name but not listed, like a site's `wait`: it changes on every
        // read, so tar, find and backups of the tree should not pick it up.
        add(kExportName, kExportIno, S_IFREG, kDotCookies + 1);
        const auto names = store_.site_names();
        std::lock_guard lock(mu_);
        const auto sites = out.size();
        for (const auto& name : names) {
            const uint64_t id = site_id_locked(name);
            add(name, site_ino(id), S_IFDIR, kDotCookies + 1 + static_cast<off_t>(id));
        }
        sort_by_cookie(out.begin() + static_cast<ptrdiff_t>(sites), out.end());
        return out;
    }
    const auto fields = site_fields();
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < fields.size(); ++i)
        if (is_listed(fields[i]) && !absent_locked(dir.site, &fields[i]))
            add(fields[i].name, field_ino(dir.site_id, i), S_IFREG, kDotCookies + 1 + static_cast<off_t>(i));
    const auto temps = out.size();
    if (auto s = temps_.find(dir.site); s != temps_.end())
        for (const auto& [name, temp] : s->second) {
            const auto number = static_cast<off_t>(temp->ino & ~kTempBit);
            add(name, temp->ino, S_IFREG, kDotCookies + 1 + static_cast<off_t>(kSlotsPerSite) + number);
        }
    sort_by_cookie(out.begin() + static_cast<ptrdiff_t>(temps), out.end());
    return out;
}

std::optional<std::string> Filesystem::content(const Node& node) {
    switch (node.kind) {
        case NodeKind::Export:
            if (node.ino == kMetricsIno) return options_.metrics ? options_.metrics() : std::string();
            return export_seed_toml(store_, options_.export_globals);
        case NodeKind::Field: {
            auto site = store_.site(node.site);
            if (!site || stale(node)) return std::nullopt;  // not another incarnation's value
            return node.field->render(*site) + "\n";
        }
        case NodeKind::Temp: {
            std::lock_guard lock(mu_);
            return node.temp->data;
        }
        default:
            return std::nullopt;
    }
}

Filesystem::Created Filesystem::create(const Node& dir, std::string_view name, mode_t mode, const fuse_ctx* ctx,
                                      bool exclusive) {
    if (dir.kind == NodeKind::Root) {
        spdlog::info("refused to create '{}' in the root: only site directories live there (mkdir)", name);
        return {EPERM, {}};
    }
    if (dir.kind != NodeKind::SiteDir) return {ENOTDIR, {}};
    if (name.size() > 255) return {ENAMETOOLONG, {}};
    std::lock_guard lock(mu_);
    if (stale_locked(dir)) return {ENOENT, {}};
    if (const FieldSpec* f = find_field(name)) {
        if (!is_writable(*f)) return {EACCES, {}};
        const bool fresh = absent_locked(dir.site, f);
        if (exclusive && !fresh) return {EEXIST, {}};
        set_absent_locked(dir, f, false);
        return {0, inodes_.remember(field_node(dir, f)), fresh};
    }
    if (temp_locked(dir.site, name)) return {EEXIST, {}};
    auto& site_temps = temps_[dir.site];
    if (site_temps.size() >= options_.max_temps_per_site) {
        spdlog::warn("site {}: refused temporary file '{}': already {} temporary files", dir.site, name,
                     site_temps.size());
        return {ENOSPC, {}};
    }
    auto temp = std::make_shared<TempFile>();
    temp->ino = kTempBit | next_temp_++;
    temp->name = std::string(name);
    temp->mode = mode & 07777;
    temp->uid = ctx->uid;
    temp->gid = ctx->gid;
    temp->mtime = temp->ctime = Clock::now();
    site_temps.emplace(temp->name, temp);
    listing_changed(dir);
    Node& node = inodes_.remember(Node{temp->ino, NodeKind::Temp, dir.site, dir.site_id, nullptr, temp});
    return {0, node};
}

int Filesystem::unlink(const Node& dir, std::string_view name) {
    if (dir.kind != NodeKind::SiteDir) return dir.kind == NodeKind::Root ? EPERM : ENOTDIR;
    std::lock_guard lock(mu_);
    if (stale_locked(dir)) return ENOENT;
    if (const FieldSpec* f = find_field(name)) {
        // Reports are sitesfs's to write; they are not listed, so rm -r never meets them.
        if (!is_writable(*f)) return EPERM;
        // The name goes and the value stays: tar, install, mv and cp --remove-destination unlink,
        // then create the name anew, which brings it back with their value; rm -r unlinks every
        // file before its rmdir. Clearing the value would leave a site half-undone if the create
        // never came.
        if (absent_locked(dir.site, f)) return ENOENT;
        set_absent_locked(dir, f, true);
        return 0;
    }
    if (!drop_temp_locked(dir.site, name)) return ENOENT;
    listing_changed(dir);
    return 0;
}

bool Filesystem::absent_locked(const std::string& site, const FieldSpec* field) {
    auto s = absent_.find(site);
    if (s == absent_.end()) return false;
    auto a = s->second.find(field);
    if (a == s->second.end()) return false;
    if (a->second == Absence::Unlinked) return true;
    settle_unset_locked(site);
    s = absent_.find(site);
    return s != absent_.end() && s->second.contains(field);
}

// Called on every change of the site, and on a lookup, so that a value that came and went
// between two lookups (a commit served, then the domain emptied) still made the name appear.
void Filesystem::settle_unset_locked(const std::string& site) {
    auto s = absent_.find(site);
    if (s == absent_.end()) return;
    const SiteRef rec = store_.site(site);
    if (!rec) return;
    std::erase_if(s->second, [&](const auto& a) { return a.second == Absence::Unset && !a.first->render(*rec).empty(); });
    if (s->second.empty()) absent_.erase(s);
}

void Filesystem::set_absent_locked(const Node& dir, const FieldSpec* field, bool absent) {
    if (absent) {
        auto& reason = absent_[dir.site][field];
        if (reason == Absence::Unlinked) return;
        reason = Absence::Unlinked;
    } else {
        auto s = absent_.find(dir.site);
        if (s == absent_.end() || s->second.erase(field) == 0) return;
        if (s->second.empty()) absent_.erase(s);
    }
    listing_changed(dir);
    invalidator_->push(InvalTarget{dir.ino, std::string(field->name)});
}

void Filesystem::forget_site_locked(const std::string& site) {
    site_ids_.erase(site);
    temps_.erase(site);
    absent_.erase(site);
}

// `field` is a row of site_fields(), so its index is its place in that table.
Node Filesystem::field_node(const Node& dir, const FieldSpec* field) const {
    const auto index = static_cast<size_t>(field - site_fields().data());
    return Node{field_ino(dir.site_id, index), NodeKind::Field, dir.site, dir.site_id, field};
}

// The kernel drops a cached listing after a create, unlink or rename it sent itself, but only by
// a version of its own checked at the next rewind; invalidating it makes what sitesfs lists the
// one authority, whichever way the change came.
void Filesystem::listing_changed(const Node& dir) { invalidator_->push(InvalTarget{dir.ino, {}}); }

bool Filesystem::drop_temp_locked(const std::string& site, std::string_view name) {
    auto s = temps_.find(site);
    if (s == temps_.end()) return false;
    auto t = s->second.find(std::string(name));
    if (t == s->second.end()) return false;
    t->second->name.clear();
    s->second.erase(t);
    if (s->second.empty()) temps_.erase(s);
    return true;
}

int Filesystem::rename(const Node& dir, std::string_view from, std::string_view to, unsigned flags) {
    if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE)) return EINVAL;
    if (dir.kind != NodeKind::SiteDir) {
        spdlog::info("refused to rename '{}' to '{}': sites cannot be renamed; mkdir the new one", from, to);
        return EPERM;
    }
    if (from == to) return 0;
    const FieldSpec* from_field = find_field(from);
    const FieldSpec* to_field = find_field(to);
    if (from_field && to_field) return EINVAL;
    if (to_field) {
        if (!is_writable(*to_field)) return EACCES;
        std::shared_ptr<TempFile> temp;
        std::string value;
        std::optional<Timestamp> explicit_time;
        {
            std::lock_guard lock(mu_);
            if ((flags & RENAME_NOREPLACE) && !absent_locked(dir.site, to_field)) return EEXIST;
            temp = temp_locked(dir.site, from);
            if (!temp) return ENOENT;
            value = temp->data;
            if (temp->mtime_set) explicit_time = temp->mtime;
        }
        const Node field = field_node(dir, to_field);
        if (auto outcome = commit(field, value); !outcome.ok()) return outcome.err;
        if (explicit_time) {
            if (Outcome out = store_.set_field_time(dir.site, to_field->name, *explicit_time); !out.ok())
                spdlog::warn("site {}: {} keeps its own time, not the renamed file's: {}", dir.site, to_field->name, out.reason);
        }
        {
            std::lock_guard lock(mu_);
            if (temp_locked(dir.site, from) == temp && drop_temp_locked(dir.site, from)) listing_changed(dir);
            if (Node* n = inodes_.find(temp->ino)) inodes_.make_field(*n, to_field);
            set_absent_locked(dir, to_field, false);
        }
        // The kernel now maps `to` to the temp's inode; make it look the field up again.
        invalidator_->push(InvalTarget{dir.ino, std::string(to)});
        return 0;
    }
    std::lock_guard lock(mu_);
    if (stale_locked(dir)) return ENOENT;
    if ((flags & RENAME_NOREPLACE) && temp_locked(dir.site, to)) return EEXIST;
    std::shared_ptr<TempFile> moved;
    if (from_field) {
        // Editors rename the original away before writing a new one (vim's backupcopy=no): the
        // new name gets a temporary copy of the content, and the field's name becomes absent as
        // after an unlink (the value stays) until the editor creates it again.
        if (!is_writable(*from_field)) return EPERM;
        if (absent_locked(dir.site, from_field)) return ENOENT;
        auto site = store_.site(dir.site);
        if (!site) return ENOENT;
        moved = std::make_shared<TempFile>();
        moved->ino = kTempBit | next_temp_++;
        moved->data = from_field->render(*site) + "\n";
        moved->mode = options_.file_mode;
        moved->uid = options_.uid;
        moved->gid = options_.gid;
        moved->mtime = moved->ctime = from_field->changed(*site);
        set_absent_locked(dir, from_field, true);
    } else {
        moved = temp_locked(dir.site, from);
        if (!moved) return ENOENT;
        drop_temp_locked(dir.site, from);
    }
    if (temp_locked(dir.site, to)) drop_temp_locked(dir.site, to);
    moved->name = std::string(to);
    moved->ctime = Clock::now();
    temps_[dir.site].emplace(moved->name, moved);
    listing_changed(dir);
    invalidator_->push(InvalTarget{dir.ino, std::string(to)});
    return 0;
}

int Filesystem::make_site(std::string_view name, fuse_entry_param& e) {
    if (auto outcome = store_.create_site(name); !outcome.ok()) {
        spdlog::warn("mkdir {} refused: {}", name, outcome.reason);
        return outcome.err;
    }
    if (const int err = lookup(kRootIno, name, e)) return err;
    std::lock_guard lock(mu_);
    const Node* dir = inodes_.find(e.ino);
    if (!dir) return ENOENT;
    for (const auto& f : site_fields())
        if (is_writable(f)) absent_[dir->site].emplace(&f, Absence::Unset);
    return 0;
}

int Filesystem::remove_site(std::string_view name) {
    {
        std::lock_guard lock(mu_);
        if (auto s = temps_.find(std::string(name)); s != temps_.end() && !s->second.empty()) {
            spdlog::info("rmdir {} refused: temporary files are still open in it ({})", name,
                         s->second.begin()->first);
            return ENOTEMPTY;
        }
    }
    if (auto outcome = store_.remove_site(name); !outcome.ok()) {
        spdlog::warn("rmdir {} refused: {}", name, outcome.reason);
        return outcome.err;
    }
    std::lock_guard lock(mu_);
    forget_site_locked(std::string(name));
    return 0;
}

namespace {
Outcome logged(const Node& field, Outcome outcome) {
    if (!outcome.ok()) spdlog::warn("site {}: write to {} refused: {}", field.site, field.field->name, outcome.reason);
    return outcome;
}
}  // namespace

bool Filesystem::stale(const Node& node) {
    std::lock_guard lock(mu_);
    return stale_locked(node);
}

// A file opened before its site was removed must not write into a new site of the same name
// (another incarnation, maybe for someone else): it answers ENOENT, as the removed site's paths do.
// The store is asked by name, so a removal and re-creation in the instant between this check and
// the commit is not caught; only a handle kept across both can hit that.
Outcome Filesystem::commit(const Node& field, std::string_view value) {
    if (stale(field)) return logged(field, Outcome::fail(ENOENT, "site '" + field.site + "' was removed after this file was opened"));
    return logged(field, store_.write_field(field.site, field.field->name, value));
}

void Filesystem::restore(const Node& field, std::string_view value, std::string_view expected) {
    if (stale(field)) return;
    const Outcome out = store_.restore_field(field.site, field.field->name, value, expected);
    if (out.ok()) spdlog::info("site {}: {} put back to its value before the refused write", field.site, field.field->name);
    else spdlog::warn("site {}: {} not put back after the refused write: {}", field.site, field.field->name, out.reason);
}

std::vector<InvalTarget> Filesystem::on_change(const Change& change) {
    parked_.recheck(change.site);
    std::vector<InvalTarget> targets;
    const bool came_or_went = change.kind == Change::Kind::Created || change.kind == Change::Kind::Removed;
    std::lock_guard lock(mu_);
    if (came_or_went) {
        // Moved before the root's invalidation is sent: the kernel checks a cached listing's mtime
        // (see init).
        root_changed_ = Clock::now();
        targets.push_back({kRootIno, {}});
        if (change.kind == Change::Kind::Removed) {
            targets.push_back({kRootIno, change.site});
            if (!store_.site(change.site)) forget_site_locked(change.site);
        }
    }
    // A new site's listing grows as its unset fields gain values (commit, once served).
    const bool names_may_change = absent_.contains(change.site);
    settle_unset_locked(change.site);
    // A site directory that came or went takes its cached listing with it, which a process inside
    // a removed one could otherwise still read. Files keep what the kernel cached when the change
    // cannot reach them (a report leaves repo alone), sparing a GETATTR and a READ each.
    for (fuse_ino_t ino : inodes_.nodes_of(change.site)) {
        const Node* n = inodes_.find(ino);
        if (!n) continue;
        const bool listing = n->kind == NodeKind::SiteDir && (came_or_went || names_may_change);
        if (n->kind == NodeKind::Field ? reaches(change.kind, *n->field) : listing) targets.push_back({ino, {}});
    }
    if (change.kind != Change::Kind::Actual) targets.push_back({kExportIno, {}});
    return targets;
}

}  // namespace sitesfs::fs
