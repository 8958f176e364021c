// The Filesystem's core, shared by the operation files: the handles it keeps, the handler table,
// node resolution (site ids, stale nodes, a directory's children, absent names, temporary files),
// the content a reader sees, commits through the store, and turning store changes into kernel
// invalidations. Each operation's own logic is in the file named after it (filesystem.hpp).
#include "fs/filesystem.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>

#include "fs/handles.hpp"
#include "fs/ops.hpp"

namespace sitesfs::fs {

namespace {

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
        if (c.kind == Change::Kind::Refresh) return;  // asks the reconciler to act; shows nothing
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
        // current; a read-only mount opens files without telling sitesfs (init.cpp), so it has none.
        if (name == kMetricsName && options_.metrics && !options_.read_only) return Node{kMetricsIno, NodeKind::Export};
        // The store's own report (Store::describe): reachable by name, like .metrics, and cached
        // like the export, invalidated by every change, so a read-only mount serves it too.
        if (name == kStoreName) return Node{kStoreIno, NodeKind::Export};
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

std::optional<std::string> Filesystem::content(const Node& node) {
    switch (node.kind) {
        case NodeKind::Export:
            if (node.ino == kMetricsIno) return options_.metrics ? options_.metrics() : std::string();
            if (node.ino == kStoreIno) return store_.describe();
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
        // (see init.cpp).
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
    targets.push_back({kStoreIno, {}});
    return targets;
}

}  // namespace sitesfs::fs
