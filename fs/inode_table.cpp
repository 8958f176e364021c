#include "fs/inode_table.hpp"

namespace sitesfs::fs {

namespace {
const std::set<fuse_ino_t> kNone;
}

InodeTable::InodeTable() {
    nodes_[kRootIno] = Node{kRootIno, NodeKind::Root};
    nodes_[kExportIno] = Node{kExportIno, NodeKind::Export};
    nodes_[kMetricsIno] = Node{kMetricsIno, NodeKind::Export};
    nodes_[kStoreIno] = Node{kStoreIno, NodeKind::Export};
}

Node* InodeTable::find(fuse_ino_t ino) {
    auto it = nodes_.find(ino);
    return it == nodes_.end() ? nullptr : &it->second;
}

Node& InodeTable::remember(const Node& node) {
    auto [it, inserted] = nodes_.try_emplace(node.ino, node);
    if (inserted && !node.site.empty()) by_site_[node.site].insert(node.ino);
    ++it->second.nlookup;
    return it->second;
}

void InodeTable::forget(fuse_ino_t ino, uint64_t n) {
    auto it = nodes_.find(ino);
    if (it == nodes_.end()) return;
    Node& node = it->second;
    node.nlookup = n >= node.nlookup ? 0 : node.nlookup - n;
    if (node.nlookup > 0 || node.kind == NodeKind::Root || node.kind == NodeKind::Export) return;
    if (auto s = by_site_.find(node.site); s != by_site_.end()) {
        s->second.erase(ino);
        if (s->second.empty()) by_site_.erase(s);
    }
    nodes_.erase(it);
}

const std::set<fuse_ino_t>& InodeTable::nodes_of(const std::string& site) const {
    auto it = by_site_.find(site);
    return it == by_site_.end() ? kNone : it->second;
}

void InodeTable::make_field(Node& node, const FieldSpec* field) {
    node.kind = NodeKind::Field;
    node.field = field;
    node.temp.reset();
}

}  // namespace sitesfs::fs
