// Text helpers every part shares: ASCII character classes that ignore the locale, and the one way
// a message quotes input.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sitesfs {

namespace ascii {
constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
constexpr bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
constexpr bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
constexpr bool is_control(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }
constexpr bool is_ascii(char c) { return static_cast<unsigned char>(c) < 0x80; }
}  // namespace ascii

// `v` with every byte outside printable ASCII (and '\\') written as an escape, for messages that
// quote input: a quoted value can neither break the line nor drive a terminal.
std::string printable(std::string_view v);
// printable() of at most the first `max` bytes, with "..." when there were more: for quoting a
// value of any length (a refused write, a server's header) in one line a person can read.
std::string printable_prefix(std::string_view v, size_t max);

// A-Z to a-z and nothing else, whatever the locale (host names, header names, ".git").
std::string ascii_lower(std::string_view s);

// The length of the UTF-8 sequence that starts `s`, or 0 when it is not valid UTF-8 there
// (truncated, overlong, a UTF-16 surrogate or beyond U+10FFFF).
size_t utf8_sequence_length(std::string_view s);

// `s` with every byte that does not start a valid UTF-8 sequence replaced by U+FFFD: for text from
// elsewhere (a build's output, a server's error) that must be stored as UTF-8, as TOML is.
std::string valid_utf8(std::string_view s);

// The last `max` bytes of `text` or fewer, starting on a UTF-8 character boundary: the end of a
// command's output, cut where a person reads it.
std::string_view utf8_tail(std::string_view text, size_t max);

// The parts of `v` between the `sep`s, empty ones included: n separators give n + 1 parts.
std::vector<std::string_view> split(std::string_view v, char sep);

// Removes surrounding ASCII whitespace (space, \t, \n, \r, \v, \f).
std::string_view trim(std::string_view s);

}  // namespace sitesfs
