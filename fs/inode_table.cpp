#include "fs/inode_table.hpp"

#include <algorithm>

namespace sitesfs::fs {

namespace {
const std::vector<fuse_ino_t> kNone;
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
    if (inserted && !node.site.empty()) by_site_[node.site].push_back(node.ino);
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
        auto& inos = s->second;
        if (auto at = std::find(inos.begin(), inos.end(), ino); at != inos.end()) {
            *at = inos.back();
            inos.pop_back();
        }
        if (inos.empty()) by_site_.erase(s);
    }
    nodes_.erase(it);
}

const std::vector<fuse_ino_t>& InodeTable::nodes_of(const std::string& site) const {
    auto it = by_site_.find(site);
    return it == by_site_.end() ? kNone : it->second;
}

void InodeTable::make_field(Node& node, const FieldSpec* field) {
    node.kind = NodeKind::Field;
    node.field = field;
    node.temp.reset();
}

}  // namespace sitesfs::fs
