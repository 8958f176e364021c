#include "hooks/release_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/text.hpp"

namespace sitesfs::hooks {

ReleaseError release_os_error(const std::string& doing, const std::string& path) {
    return ReleaseError(doing + " " + path + ": " + std::strerror(errno));
}

std::string shown_name(std::string_view name) {
    std::string out;
    for (unsigned char c : name) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c < 0x20 || c == 0x7f) {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

bool ReleaseWriter::is_dot_git(std::string_view name) { return ascii_lower(name) == ".git"; }

bool ReleaseWriter::is_unsafe_name(std::string_view name) {
    return name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos;
}

void ReleaseWriter::check_depth(int depth, const std::string& path) {
    if (depth > kMaxDepth)
        throw ReleaseError("the tree nests directories deeper than " + std::to_string(kMaxDepth) + " levels at " + path);
}

void ReleaseWriter::count_entry(const std::string& path) {
    if (++entries_ > limits_.max_files)
        throw ReleaseError("the tree has more than " + std::to_string(limits_.max_files) +
                           " files and directories (limit: [reconcile] max_files), at " + path);
}

Fd ReleaseWriter::make_dir(int dirfd, const std::string& name, const std::string& path) {
    count_entry(path);
    if (::mkdirat(dirfd, name.c_str(), 0755) < 0) throw release_os_error("creating directory", path);
    Fd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) throw release_os_error("opening directory", path);
    // Modes are exact whatever the daemon's umask is.
    if (::fchmod(fd.get(), 0755) < 0) throw release_os_error("setting the mode of", path);
    return fd;
}

Fd ReleaseWriter::make_file(int dirfd, const std::string& name, const std::string& path, mode_t mode, uint64_t size) {
    count_entry(path);
    if (size > limits_.max_bytes - report_.bytes)
        throw ReleaseError("the tree has more than " + std::to_string(limits_.max_bytes) +
                           " bytes of files (limit: [reconcile] max_bytes), at " + path);
    Fd fd(::openat(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!fd.valid()) throw release_os_error("creating", path);
    if (::fchmod(fd.get(), mode) < 0) throw release_os_error("setting the mode of", path);
    return fd;
}

void ReleaseWriter::write_all(int fd, std::string_view data, const std::string& path) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw release_os_error("writing", path);
        data.remove_prefix(static_cast<size_t>(n));
    }
}

void ReleaseWriter::close_file(Fd& fd, uint64_t size, const std::string& path) {
    if (fd.close() < 0) throw release_os_error("writing", path);
    ++report_.files;
    report_.bytes += size;
}

}  // namespace sitesfs::hooks
