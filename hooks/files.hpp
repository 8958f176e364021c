// The durable file operations the hooks share: read a whole file, and replace one so that a crash
// leaves the old bytes or the new ones, never a mix. Errors name the file and the system's reason.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sitesfs::hooks {

struct FileError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The file's bytes; nullopt when it does not exist.
std::optional<std::string> read_file(const std::filesystem::path& file);

// fsync of a directory, so a rename or unlink in it is durable.
void fsync_dir(const std::filesystem::path& dir);

// A new file DIR/.NAME.XXXXXX next to `target` (O_EXCL); removed unless committed.
class TempFile {
public:
    explicit TempFile(const std::filesystem::path& target);
    ~TempFile();
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;

    const std::filesystem::path& path() const { return path_; }
    void write_all(const std::string& bytes, mode_t mode);  // mode exactly, whatever the umask
    // fsync, close, rename over `target`, fsync its directory: the temp file is the target now.
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

}  // namespace sitesfs::hooks
