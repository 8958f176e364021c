// The inode table: every inode the kernel holds a lookup reference to, with its lookup count.
//
// Inode numbers are derived, not allocated, for the fixed part of the tree, so that readdir can
// report the same d_ino that lookup will later return without creating table entries:
//   1                      the root (/sites)
//   2                      /sites/.sites.toml (the export)
//   3, 4                   /sites/.metrics, /sites/.store
//   SITE_ID*16             a site directory (site ids are handed out per mount, never reused)
//   SITE_ID*16 + 1 + i     field i of the site schema
//   kTempBit | n           an editor's temporary file
// Guarded by Filesystem::mu_ (see filesystem.hpp for the lock order).
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "schemas/site_schema.hpp"

namespace sitesfs::fs {

constexpr fuse_ino_t kRootIno = FUSE_ROOT_ID;
constexpr fuse_ino_t kExportIno = 2;   // /.sites.toml
constexpr fuse_ino_t kMetricsIno = 3;  // /.metrics
constexpr fuse_ino_t kStoreIno = 4;    // /.store
constexpr uint64_t kSlotsPerSite = 32;
constexpr fuse_ino_t kTempBit = fuse_ino_t{1} << 62;
inline constexpr std::string_view kExportName = ".sites.toml";
inline constexpr std::string_view kMetricsName = ".metrics";
inline constexpr std::string_view kStoreName = ".store";

// An editor's temporary file (vim's 4913 and .x.swp, sed's sedXXXXXX, emacs' x~): memory only,
// never desired state. Guarded by Filesystem::mu_.
struct TempFile {
    fuse_ino_t ino = 0;
    std::string name;   // empty once unlinked
    std::string data;
    mode_t mode = 0600;
    uid_t uid = 0;
    gid_t gid = 0;
    Timestamp mtime{};
    Timestamp ctime{};
    bool mtime_set = false;  // mtime was set explicitly (utimensat), to carry over a rename onto a field
};

// Export: a read-only file sitesfs generates in the root (.sites.toml, .metrics, .store), told apart by ino.
enum class NodeKind { Root, Export, SiteDir, Field, Temp };

struct Node {
    fuse_ino_t ino = 0;
    NodeKind kind = NodeKind::Root;
    std::string site;                  // SiteDir, Field, Temp
    uint64_t site_id = 0;              // SiteDir, Field, Temp
    const FieldSpec* field = nullptr;  // Field
    std::shared_ptr<TempFile> temp;    // Temp
    uint64_t nlookup = 0;
};

class InodeTable {
public:
    InodeTable();

    Node* find(fuse_ino_t ino);
    // Adds one lookup reference to `node` (inserting it when new) and returns the stored node.
    Node& remember(const Node& node);
    // Drops `n` lookup references; erases the node at zero (root and export stay).
    void forget(fuse_ino_t ino, uint64_t n);
    // Every node that belongs to a site, for invalidation when the site changes.
    const std::vector<fuse_ino_t>& nodes_of(const std::string& site) const;

    // A temp node whose file was renamed over a field becomes that field: the kernel may keep
    // using this inode number for the field's name until its dentry is invalidated.
    void make_field(Node& node, const FieldSpec* field);

private:
    std::unordered_map<fuse_ino_t, Node> nodes_;
    // A site has a dozen or so nodes: a vector costs 8 bytes a node where a set cost 48.
    std::unordered_map<std::string, std::vector<fuse_ino_t>> by_site_;
};

}  // namespace sitesfs::fs
