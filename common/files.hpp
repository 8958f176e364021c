// The file operations every part shares: read a whole file, and replace one so that a crash
// leaves the old bytes or the new ones, never a mix. Errors name the file and the system's reason,
// and keep the errno for a caller that passes it on (the store answers a writer with it).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sitesfs {

struct FileError : std::runtime_error {
    FileError(int e, const std::string& what) : std::runtime_error(what), err(e) {}
    int err;
};

// The file's bytes; nullopt when it does not exist.
std::optional<std::string> read_file(const std::filesystem::path& file);

// One line of /proc/self/mountinfo: where, what, and the device (a FUSE mount's minor is its
// connection's number under /sys/fs/fuse/connections).
struct MountEntry {
    std::string point;   // unescaped
    std::string fstype;  // "fuse.sitesfs", "ext4", ...
    unsigned major = 0, minor = 0;
};
// In mount order: a later entry on the same point is mounted over an earlier one.
std::vector<MountEntry> read_mountinfo();
// The same for `name` in the directory `dir_fd`; `shown` is the path errors name.
std::optional<std::string> read_file_at(int dir_fd, const std::string& name, const std::filesystem::path& shown);

// fsync of a directory, so a rename or unlink in it is durable.
void fsync_dir(const std::filesystem::path& dir);

// A new file DIR/.NAME.XXXXXX next to `target` (O_EXCL), or DIR/.NAME.INFIX.XXXXXX with an
// infix; removed unless placed.
class TempFile {
public:
    explicit TempFile(const std::filesystem::path& target, std::string_view infix = {});
    ~TempFile();
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;

    const std::filesystem::path& path() const { return path_; }
    void write_all(const std::string& bytes, mode_t mode);  // mode exactly, whatever the umask
    // fsync (with `sync`) and close; close() reports a deferred write error (quota, NFS). A batch
    // of files can skip the fsync and flush them all at once (syncfs) before placing any.
    void finish(bool sync);
    // Renames it over `target` (after finish): the temp file is the target now, but the rename is
    // durable only once the directory is fsynced.
    void place(const std::filesystem::path& target);
    // finish(true), place, fsync the directory.
    void commit(const std::filesystem::path& target);

private:
    [[noreturn]] void fail(const char* what) const;
    std::filesystem::path path_;
    int fd_ = -1;
};

// Removes the TempFiles of `target` (DIR/.NAME.XXXXXX) that a killed process left behind; returns
// what it removed. Only for a start-up, when no TempFile of `target` can be in use.
std::vector<std::filesystem::path> remove_temp_files(const std::filesystem::path& target);

// Replaces `file` with `bytes` (mode `mode`) through a TempFile; `check` may inspect (and refuse,
// by throwing) the temp file before it takes the file's place.
void replace_file(const std::filesystem::path& file, const std::string& bytes, mode_t mode,
                  const std::function<void(const std::filesystem::path&)>& check = {});

}  // namespace sitesfs
