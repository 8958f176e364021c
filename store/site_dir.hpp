// The file store's disk: STATE_DIR/sites/, one file per site, each replaced atomically (a temp file
// in the same dir, fsync, rename, fsync the dir), so a committed write costs the same with 10 or
// 10,000 sites and a crash leaves each file old or new, whole. A writable SiteDir holds an flock
// on the state dir for its lifetime (no lock file: the kernel drops it when the process dies).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/fd.hpp"
#include "common/files.hpp"
#include "schemas/site_record.hpp"
#include "store/store.hpp"

namespace sitesfs {

class SiteDir;

// Every site file, parsed and checked, and the domains they claim; all or nothing (the first bad
// file, or a domain in two files, throws StoreError naming the file).
struct LoadedSites {
    std::vector<SiteRef> sites;
    std::unordered_map<std::string, std::string> domains;  // domain -> site
    std::vector<std::string> temps;                         // with_temps: left by interrupted writes
};
LoadedSites load_sites(const SiteDir& dir, bool with_temps);

class SiteDir {
public:
    // Creates the state dir and sites/ (0700) if needed and locks it; throws StoreError when
    // another read-write sitesfs holds it or the dir is unusable. Closes both dirs to other users.
    static SiteDir open_writable(const std::filesystem::path& state_dir);
    // Takes no lock and writes nothing; sites/ must exist.
    static SiteDir open_readonly(const std::filesystem::path& state_dir);

    const std::filesystem::path& path() const { return sites_dir_; }
    int fd() const { return dir_fd_.get(); }

    // The site files' names (NAME.toml); with `temps`, also the temp files an interrupted write
    // left. Other names are logged and ignored. Throws StoreError.
    std::vector<std::string> list(std::vector<std::string>* temps) const;
    // The file's bytes, or nullopt when it is gone (a reader races the writer's removals).
    // Throws StoreError naming the file.
    std::optional<std::string> read(const std::string& file) const;
    // Removes temp files `list` reported; only at start, before any write.
    void remove_leftovers(const std::vector<std::string>& temps) const;

    // Durable when it returns success. When only the final fsync of the dir fails, the new file
    // is already visible: `prev` is written back (or the new file removed) so that failing
    // changes nothing.
    Outcome save(const SiteRecord& next, const SiteRecord* prev) const;
    // Removes the site's file durably; on failure the file is back.
    Outcome remove(const SiteRecord& cur) const;
    // New sites' files, made durable together: every temp file is written, then one syncfs
    // flushes them all, then each is renamed into place and the dir is fsynced once. A crash
    // leaves each file whole or absent (unrenamed temps are removed at the next start). One
    // outcome per site, in order; success only when the whole batch is durable. A batch of one is
    // saved as save() does.
    std::vector<Outcome> save_new(const std::vector<SiteRecord>& sites) const;

private:
    SiteDir(std::filesystem::path sites_dir, Fd lock_fd, Fd dir_fd);
    std::unique_ptr<TempFile> write_temp(const SiteRecord& s, bool sync) const;
    Outcome write_file(const SiteRecord& s) const;
    Outcome failure(const std::string& site, int e) const;

    std::filesystem::path sites_dir_;
    Fd lock_fd_;  // holds the flock (writable only)
    Fd dir_fd_;   // sites/, for fsync and *at calls
};

}  // namespace sitesfs
