#include "store/etcd/migrate.hpp"

#include "store/file_store.hpp"
#include "store/site_dir.hpp"
#include "store/site_edit.hpp"
#include "store/site_file.hpp"

namespace sitesfs {

namespace {

std::unique_ptr<etcd::Client> connect(const EtcdStoreOptions& o) {
    try {
        return etcd::Client::connect(o.client);
    } catch (const std::exception& e) {
        throw StoreError(std::string("etcd: ") + e.what());
    }
}

}  // namespace

MigrationReport copy_file_store_to_etcd(const std::filesystem::path& state_dir, const EtcdStoreOptions& o) {
    const SiteDir dir = SiteDir::open_writable(state_dir);
    const LoadedSites loaded = load_sites(dir, false);
    const auto client = connect(o);
    const std::string host = o.host.empty() ? local_host_name() : o.host;
    MigrationReport report;
    for (const SiteRef& s : loaded.sites) {
        etcd::TxnRequest txn;
        const std::string site_key = o.prefix + "sites/" + s->name;
        txn.compare.push_back({site_key, etcd::Compare::Target::Version, etcd::Compare::Result::Equal, 0, {}});
        txn.success.push_back({etcd::Op::Kind::Put, site_key, render_desired_value(*s), {}});
        for (const auto& d : domains_of(*s)) {
            const std::string claim = o.prefix + "domains/" + d;
            txn.compare.push_back({claim, etcd::Compare::Target::Version, etcd::Compare::Result::Equal, 0, {}});
            txn.success.push_back({etcd::Op::Kind::Put, claim, s->name, {}});
        }
        if (s->actual.state != SiteState::none)
            txn.success.push_back({etcd::Op::Kind::Put, o.prefix + "actual/" + s->name + "/" + host, render_actual_value(s->actual), {}});
        const auto result = client->txn(txn);
        if (const auto* e = std::get_if<etcd::Error>(&result)) {
            // An unknown outcome is settled by running the copy again: a site already there is
            // refused, not copied twice.
            report.refused.push_back(s->name + ": " + e->message);
        } else if (!std::get<etcd::TxnResponse>(result).succeeded) {
            report.refused.push_back(s->name + ": etcd already has the site or one of its domains");
        } else {
            report.copied.push_back(s->name);
        }
    }
    return report;
}

MigrationReport copy_etcd_to_file_store(const EtcdStoreOptions& o, const std::filesystem::path& state_dir) {
    const SiteDir dir = SiteDir::open_writable(state_dir);
    if (!load_sites(dir, false).sites.empty())
        throw StoreError(dir.path().string() + " already holds sites; copy into an empty state dir");
    EtcdStoreOptions follower = o;
    follower.read_only = true;  // a copy, not a host: it must not register
    const auto store = open_etcd_store(follower);
    std::vector<SiteRecord> records;
    for (const auto& name : store->site_names())
        if (const SiteRef s = store->site(name)) {
            SiteRecord r = *s;
            r.reports.clear();
            r.store_note.clear();
            records.push_back(std::move(r));
        }
    MigrationReport report;
    const std::vector<Outcome> saved = dir.save_new(records);
    for (size_t i = 0; i < records.size(); ++i)
        (saved[i].ok() ? report.copied : report.refused).push_back(saved[i].ok() ? records[i].name : records[i].name + ": " + saved[i].reason);
    return report;
}

}  // namespace sitesfs
