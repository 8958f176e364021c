#include "common/text.hpp"

#include <cstdint>
#include <cstdio>

namespace sitesfs {

using namespace ascii;

// Reasons are shown in one-line status files and logs, so every byte outside printable ASCII
// is written as an escape: a refused value can neither break the line nor reorder the text.
std::string printable(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c == '\r') out += "\\r";
        else if (is_control(c) || !is_ascii(c)) {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(c));
            out += hex;
        } else out += c;
    }
    return out;
}

std::string printable_prefix(std::string_view v, size_t max) {
    return printable(v.substr(0, max)) + (v.size() > max ? "..." : "");
}

std::string ascii_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (is_upper(c)) c = static_cast<char>(c - 'A' + 'a');
    return out;
}

size_t utf8_sequence_length(std::string_view s) {
    static constexpr uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};  // shorter forms are overlong
    if (s.empty()) return 0;
    const auto lead = static_cast<unsigned char>(s[0]);
    const size_t len = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xe ? 3 : (lead >> 3) == 0x1e ? 4 : 0;
    if (len <= 1 || len > s.size()) return len == 1 ? 1 : 0;
    uint32_t cp = lead & (0x7fu >> len);
    for (size_t k = 1; k < len; ++k) {
        const auto cont = static_cast<unsigned char>(s[k]);
        if ((cont & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (cont & 0x3f);
    }
    return cp >= kMinimum[len] && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff) ? len : 0;
}

std::string valid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        if (const size_t len = utf8_sequence_length(s.substr(i))) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            out += "\xEF\xBF\xBD";  // U+FFFD
            ++i;
        }
    }
    return out;
}

std::string_view utf8_tail(std::string_view text, size_t max) {
    if (text.size() <= max) return text;
    size_t from = text.size() - max;
    while (from < text.size() && (static_cast<unsigned char>(text[from]) & 0xc0) == 0x80) ++from;
    return text.substr(from);
}

std::vector<std::string_view> split(std::string_view v, char sep) {
    std::vector<std::string_view> out;
    for (size_t start = 0;;) {
        const size_t at = v.find(sep, start);
        out.push_back(v.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
        if (at == std::string_view::npos) return out;
        start = at + 1;
    }
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
    return s;
}

}  // namespace sitesfs
