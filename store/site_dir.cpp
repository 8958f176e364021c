#include "store/site_dir.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "common/files.hpp"
#include "schemas/validators.hpp"
#include "store/site_file.hpp"

namespace sitesfs {

namespace {

// Temp files are .NAME.toml.tmp.XXXXXX: a dot file, so never taken for a site.
constexpr std::string_view kTempInfix = ".tmp";
constexpr std::string_view kTempMarker = ".toml.tmp.";

std::string errno_text(int e) { return std::strerror(e); }

// The state dir holds every site's desired state and the deploy history: not for every user
// of the host. A dir made before sitesfs (mkdir under umask 022, an old install) loses the
// bits for others; the group's stay, for a monitoring group (docs/store.md).
void close_to_others(int fd, const std::filesystem::path& dir) {
    struct stat st;
    if (::fstat(fd, &st) != 0 || (st.st_mode & 0007) == 0) return;
    const mode_t mode = st.st_mode & 07770;
    if (::fchmod(fd, mode) != 0)
        throw StoreError("cannot close " + dir.string() + " to other users (chmod o-rwx): " + errno_text(errno));
    spdlog::warn("{} was open to every user (mode {:04o}); it is {:04o} now", dir.string(), st.st_mode & 07777, mode);
}

}  // namespace

SiteDir::SiteDir(std::filesystem::path sites_dir, Fd lock_fd, Fd dir_fd)
    : sites_dir_(std::move(sites_dir)), lock_fd_(std::move(lock_fd)), dir_fd_(std::move(dir_fd)) {}

// The flock is on the state dir itself (no lock file to go stale). Directories are created only
// once the lock is held.
SiteDir SiteDir::open_writable(const std::filesystem::path& state_dir) {
    const auto sites_dir = state_dir / "sites";
    if (::mkdir(state_dir.c_str(), 0700) != 0 && errno != EEXIST)
        throw StoreError("cannot create the state dir " + state_dir.string() + ": " + errno_text(errno));
    Fd lock_fd(::open(state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!lock_fd.valid()) throw StoreError("state dir " + state_dir.string() + ": " + errno_text(errno));
    // A sitesfs that is still exiting (a restart; a killed one whose wedged mount this start just
    // aborted) holds the lock for a moment longer: it is given that moment, not forever.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (::flock(lock_fd.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) throw StoreError("cannot lock the state dir " + state_dir.string() + ": " + errno_text(errno));
        if (std::chrono::steady_clock::now() >= give_up)
            throw StoreError("state dir " + state_dir.string() + " is in use by another read-write sitesfs");
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (::mkdirat(lock_fd.get(), "sites", 0700) == 0) {
        if (::fsync(lock_fd.get()) != 0) throw StoreError("cannot make " + sites_dir.string() + " durable: " + errno_text(errno));
    } else if (errno != EEXIST) {
        throw StoreError("cannot create " + sites_dir.string() + ": " + errno_text(errno));
    }
    Fd dir_fd(::openat(lock_fd.get(), "sites", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd.valid()) throw StoreError(sites_dir.string() + ": " + errno_text(errno));
    close_to_others(lock_fd.get(), state_dir);
    close_to_others(dir_fd.get(), sites_dir);
    return SiteDir(sites_dir, std::move(lock_fd), std::move(dir_fd));
}

SiteDir SiteDir::open_readonly(const std::filesystem::path& state_dir) {
    const auto sites_dir = state_dir / "sites";
    Fd dir_fd(::open(sites_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd.valid() && errno == ENOENT)
        throw StoreError(sites_dir.string() + " does not exist: start a read-write sitesfs on this state dir first");
    if (!dir_fd.valid()) throw StoreError(sites_dir.string() + ": " + errno_text(errno));
    return SiteDir(sites_dir, Fd(), std::move(dir_fd));
}

std::vector<std::string> SiteDir::list(std::vector<std::string>* temps) const {
    std::vector<std::string> files;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(sites_dir_, ec); !ec && it != std::filesystem::directory_iterator();
         it.increment(ec)) {
        std::string file = it->path().filename().string();
        if (site_of_file(file)) files.push_back(std::move(file));
        else if (temps && file.front() == '.' && file.find(kTempMarker) != std::string::npos) temps->push_back(file);
        else if (file.front() != '.') spdlog::warn("ignoring {}: site files are named NAME.toml", (sites_dir_ / file).string());
    }
    if (ec) throw StoreError("cannot list " + sites_dir_.string() + ": " + ec.message());
    return files;
}

std::optional<std::string> SiteDir::read(const std::string& file) const {
    try {
        return read_file_at(dir_fd_.get(), file, sites_dir_ / file);
    } catch (const FileError& e) {
        throw StoreError(e.what());
    }
}

void SiteDir::remove_leftovers(const std::vector<std::string>& temps) const {
    for (const auto& temp : temps) {
        spdlog::info("removing {}, left by an interrupted write", (sites_dir_ / temp).string());
        if (::unlinkat(dir_fd_.get(), temp.c_str(), 0) != 0)
            spdlog::warn("could not remove {}: {}", (sites_dir_ / temp).string(), errno_text(errno));
    }
}

Outcome SiteDir::failure(const std::string& site, int e) const {
    return Outcome::fail(e, "could not save site '" + site + "' to " + (sites_dir_ / site_file_name(site)).string() + ": " + errno_text(e));
}

// The site's bytes in a new temp file of the same dir, fsynced when `sync` (a batch flushes them
// all at once instead). Group-readable: an operator who opens the state dir to a monitoring group
// (chgrp, and chmod 2750 so new files inherit the group) lets its read-only mounts read every
// site. Nothing secret lives here: deploy_key_ref names a key, it is not one.
std::unique_ptr<TempFile> SiteDir::write_temp(const SiteRecord& s, bool sync) const {
    auto temp = std::make_unique<TempFile>(sites_dir_ / site_file_name(s.name), kTempInfix);
    temp->write_all(render_site_file(s), 0640);
    temp->finish(sync);
    return temp;
}

// Temp file, fsync, rename over: readers of the dir see the old file or the new one, whole.
// The temp file is gone whether this fails or not.
Outcome SiteDir::write_file(const SiteRecord& s) const {
    try {
        write_temp(s, true)->place(sites_dir_ / site_file_name(s.name));
        return Outcome::success();
    } catch (const FileError& e) {
        return failure(s.name, e.err);
    }
}

Outcome SiteDir::save(const SiteRecord& next, const SiteRecord* prev) const {
    if (Outcome out = write_file(next); !out.ok()) return out;
    if (::fsync(dir_fd_.get()) == 0) return Outcome::success();
    const int e = errno;
    const std::string file = site_file_name(next.name);
    if (prev) {
        if (Outcome undo = write_file(*prev); !undo.ok()) spdlog::error("{}; it holds an unconfirmed change", undo.reason);
    } else if (::unlinkat(dir_fd_.get(), file.c_str(), 0) != 0) {
        spdlog::error("could not remove {} after a failed save: {}", (sites_dir_ / file).string(), errno_text(errno));
    }
    return failure(next.name, e);
}

Outcome SiteDir::remove(const SiteRecord& cur) const {
    const std::string file = site_file_name(cur.name);
    auto fail = [&](int e) {
        return Outcome::fail(e, "could not remove site '" + cur.name + "' (" + (sites_dir_ / file).string() + "): " + errno_text(e));
    };
    if (::unlinkat(dir_fd_.get(), file.c_str(), 0) != 0) return fail(errno);
    if (::fsync(dir_fd_.get()) != 0) {
        const int e = errno;
        // The removal is visible but may not survive a crash; put the file back so that failing
        // changes nothing.
        if (Outcome undo = write_file(cur); !undo.ok()) spdlog::error("{}; {} is missing", undo.reason, file);
        return fail(e);
    }
    return Outcome::success();
}

std::vector<Outcome> SiteDir::save_new(const std::vector<SiteRecord>& sites) const {
    if (sites.empty()) return {};
    // One site (a mkdir) is saved like any change: its own fsyncs cost less than a syncfs of the
    // whole file system.
    if (sites.size() == 1) return {save(sites.front(), nullptr)};
    std::vector<Outcome> out(sites.size());
    std::vector<std::unique_ptr<TempFile>> temps(sites.size());
    for (size_t i = 0; i < sites.size(); ++i) {
        try {
            temps[i] = write_temp(sites[i], false);
        } catch (const FileError& e) {
            out[i] = failure(sites[i].name, e.err);
        }
    }
    // One flush for every temp file's data, before any of them is renamed into place: what a
    // crash leaves under a site's name is always whole.
    if (::syncfs(dir_fd_.get()) != 0) {
        const int e = errno;
        for (size_t i = 0; i < sites.size(); ++i)
            if (out[i].ok()) out[i] = failure(sites[i].name, e);
        return out;
    }
    std::vector<size_t> placed;
    for (size_t i = 0; i < sites.size(); ++i) {
        if (!temps[i]) continue;
        try {
            temps[i]->place(sites_dir_ / site_file_name(sites[i].name));
            placed.push_back(i);
        } catch (const FileError& e) {
            out[i] = failure(sites[i].name, e.err);
        }
    }
    if (placed.empty() || ::fsync(dir_fd_.get()) == 0) return out;
    // The files are visible but their names may not survive a crash: take them all back, so
    // that failing changes nothing.
    const int e = errno;
    for (const size_t i : placed) {
        const std::string file = site_file_name(sites[i].name);
        if (::unlinkat(dir_fd_.get(), file.c_str(), 0) != 0)
            spdlog::error("could not remove {} after a failed save: {}", (sites_dir_ / file).string(), errno_text(errno));
        out[i] = failure(sites[i].name, e);
    }
    return out;
}

LoadedSites load_sites(const SiteDir& dir, bool with_temps) {
    LoadedSites out;
    for (const auto& file : dir.list(with_temps ? &out.temps : nullptr)) {
        const std::string shown = (dir.path() / file).string();
        const std::string name = *site_of_file(file);
        const auto text = dir.read(file);
        if (!text) continue;
        auto s = std::make_shared<const SiteRecord>(parse_site_file(*text, name, shown));
        for (const auto& d : split_domains(s->field("domain").value)) {
            const auto [it, fresh] = out.domains.emplace(d, name);
            if (!fresh)
                throw StoreError(shown + ": desired.domain: domain '" + d + "' is also served by site '" + it->second +
                                 "'; remove it from one of the two files");
        }
        out.sites.push_back(std::move(s));
    }
    return out;
}

}  // namespace sitesfs
