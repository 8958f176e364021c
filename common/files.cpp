#include "common/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "common/fd.hpp"

namespace sitesfs {

namespace stdfs = std::filesystem;

namespace {

std::string errno_text(int err) { return std::strerror(err); }

stdfs::path dir_of(const stdfs::path& file) { return file.has_parent_path() ? file.parent_path() : stdfs::path("."); }

}  // namespace

std::optional<std::string> read_file_at(int dir_fd, const std::string& name, const stdfs::path& shown) {
    const Fd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
        if (errno == ENOENT) return std::nullopt;
        throw FileError(errno, "cannot read " + shown.string() + ": " + errno_text(errno));
    }
    std::string bytes;
    char buf[16384];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw FileError(errno, "cannot read " + shown.string() + ": " + errno_text(errno));
        if (n == 0) return bytes;
        bytes.append(buf, static_cast<size_t>(n));
    }
}

std::optional<std::string> read_file(const stdfs::path& file) { return read_file_at(AT_FDCWD, file.string(), file); }

void fsync_dir(const stdfs::path& dir) {
    const Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) throw FileError(errno, "cannot open directory " + dir.string() + ": " + errno_text(errno));
    if (::fsync(fd.get()) != 0) throw FileError(errno, "fsync " + dir.string() + ": " + errno_text(errno));
}

TempFile::TempFile(const stdfs::path& target, std::string_view infix) {
    std::string pattern = (dir_of(target) / ("." + target.filename().string() + std::string(infix) + ".XXXXXX")).string();
    fd_ = mkostemp(pattern.data(), O_CLOEXEC);
    if (fd_ < 0) throw FileError(errno, "cannot create a temp file next to " + target.string() + ": " + errno_text(errno));
    path_ = pattern;
}

TempFile::~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
}

void TempFile::fail(const char* what) const {
    throw FileError(errno, std::string(what) + " " + path_.string() + ": " + errno_text(errno));
}

void TempFile::write_all(const std::string& bytes, mode_t mode) {
    if (::fchmod(fd_, mode) != 0) fail("chmod");
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail("write");
        done += static_cast<size_t>(n);
    }
}

void TempFile::finish(bool sync) {
    if (sync && ::fsync(fd_) != 0) fail("fsync");
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) fail("close");
}

void TempFile::place(const stdfs::path& target) {
    if (::rename(path_.c_str(), target.c_str()) != 0)
        throw FileError(errno, "cannot rename " + path_.string() + " to " + target.string() + ": " + errno_text(errno));
    path_.clear();
}

void TempFile::commit(const stdfs::path& target) {
    finish(true);
    place(target);
    fsync_dir(dir_of(target));
}

std::vector<stdfs::path> remove_temp_files(const stdfs::path& target) {
    // mkostemp's six characters replace the XXXXXX of TempFile's pattern.
    const std::string prefix = "." + target.filename().string() + ".";
    std::vector<stdfs::path> removed;
    std::error_code ec;
    for (const auto& e : stdfs::directory_iterator(dir_of(target), ec)) {
        const std::string name = e.path().filename().string();
        if (name.size() != prefix.size() + 6 || !name.starts_with(prefix) || !e.is_regular_file(ec)) continue;
        if (::unlink(e.path().c_str()) == 0) removed.push_back(e.path());
    }
    return removed;
}

void replace_file(const stdfs::path& file, const std::string& bytes, mode_t mode,
                  const std::function<void(const stdfs::path&)>& check) {
    TempFile temp(file);
    temp.write_all(bytes, mode);
    if (check) check(temp.path());
    temp.commit(file);
}

namespace {

// mountinfo writes a space, tab, newline and backslash in a path as \ooo.
std::string unescape_mountinfo(const std::string& field) {
    std::string out;
    for (size_t i = 0; i < field.size(); ++i) {
        const auto octal = [&](size_t at) { return field[at] >= '0' && field[at] <= '7'; };
        if (field[i] == '\\' && i + 3 < field.size() && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
            out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0'));
            i += 3;
        } else {
            out += field[i];
        }
    }
    return out;
}

}  // namespace

std::vector<MountEntry> read_mountinfo() {
    std::ifstream in("/proc/self/mountinfo");
    std::vector<MountEntry> out;
    for (std::string line; std::getline(in, line);) {
        // ID PARENT MAJOR:MINOR ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        std::istringstream fields(line);
        std::string id, parent, dev, root, point, word;
        if (!(fields >> id >> parent >> dev >> root >> point)) continue;
        while (fields >> word && word != "-") {
        }
        MountEntry e{unescape_mountinfo(point), {}, 0, 0};
        fields >> e.fstype;
        if (std::sscanf(dev.c_str(), "%u:%u", &e.major, &e.minor) != 2) continue;
        out.push_back(std::move(e));
    }
    return out;
}

}  // namespace sitesfs
