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

// A release's rules files (hooks/site_rules.hpp, docs/serving.md): why a path pattern's regex is not
// made only of the template's pieces ("^", "$", "/?", "[.]", "[+]", "([^/]+)", "(.*)" and literal
// [A-Za-z0-9_~/-]) with `captures` groups; why a redirect target is outside its alphabet (`target`
// is its text with each capture written as '\x01', `external` when it is a URL); why a header
// value is outside its alphabet. "" when it is fine.
std::string rules_regex_problem(std::string_view regex, size_t captures);
std::string rules_target_problem(std::string_view target, bool external);
std::string header_value_problem(std::string_view value);

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
