// What every fuzz target checks about values and messages, independently of the validators: an
// allow-list per field written from docs/fields.md, not from the validators' code, so that a
// validator that lets a byte through is caught rather than agreed with.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace sitesfs::fuzz {

// Prints what went wrong and aborts, which libFuzzer reports as a crash with the input saved.
[[noreturn]] void violation(std::string_view what, std::string_view detail);

// Why a stored (accepted, normalized) value of `field` is outside the field's alphabet, or "".
std::string alphabet_problem(std::string_view field, std::string_view value);

// Why a message shown to a person (a refusal, a report line) could break a line or a terminal:
// anything but printable ASCII. "" when it is fine.
std::string message_problem(std::string_view message);

// A directory under $SITESFS_FUZZ_SCRATCH or /dev/shm (fsync is free on tmpfs), emptied by clear()
// and removed at exit.
class ScratchDir {
public:
    explicit ScratchDir(std::string_view tag);
    ~ScratchDir();
    const std::filesystem::path& path() const { return path_; }
    void clear() const;  // removes everything inside

private:
    std::filesystem::path path_;
};

void write_file(const std::filesystem::path& file, std::string_view bytes);
std::string read_file(const std::filesystem::path& file);

}  // namespace sitesfs::fuzz
