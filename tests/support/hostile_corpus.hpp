// Loader for the hostile input corpus in tests/hostile/*.txt (format: tests/hostile/README.md).
// Header-only, so unit tests, integration tests and fuzz targets can share it without linking
// the integration test kit.
#pragma once

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace sitesfs::corpus {

struct Case {
    std::string value;   // the bytes to write, escapes decoded
    std::string source;  // "domain.txt:17", for failure messages
};

inline void append_utf8(std::string& out, unsigned long cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xc0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xe0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
        out += static_cast<char>(0xf0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    }
}

inline int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes \\ \n \t \r \v \f \xHH \u{H...}; anything else after a backslash is an error, so a
// typo in the corpus fails loudly instead of becoming a different case.
inline std::string unescape(const std::string& line, const std::string& where) {
    std::string out;
    for (size_t i = 0; i < line.size(); ++i) {
        if (line[i] != '\\') {
            out += line[i];
            continue;
        }
        if (++i == line.size()) throw std::runtime_error(where + ": a lone '\\' ends the line");
        switch (const char c = line[i]) {
        case '\\': out += '\\'; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'v': out += '\v'; break;
        case 'f': out += '\f'; break;
        case 'x': {
            const int hi = i + 1 < line.size() ? hex_digit(line[i + 1]) : -1;
            const int lo = i + 2 < line.size() ? hex_digit(line[i + 2]) : -1;
            if (hi < 0 || lo < 0) throw std::runtime_error(where + ": \\x needs two hex digits");
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
            break;
        }
        case 'u': {
            const size_t close = line.find('}', i);
            if (i + 1 >= line.size() || line[i + 1] != '{' || close == std::string::npos || close == i + 2 || close > i + 8)
                throw std::runtime_error(where + ": write a code point as \\u{1F4A9}");
            unsigned long cp = 0;
            for (size_t k = i + 2; k < close; ++k) {
                const int d = hex_digit(line[k]);
                if (d < 0) throw std::runtime_error(where + ": \\u{...} holds a non-hex digit");
                cp = cp * 16 + static_cast<unsigned long>(d);
            }
            if (cp > 0x10ffff) throw std::runtime_error(where + ": \\u{...} is beyond U+10FFFF");
            append_utf8(out, cp);
            i = close;
            break;
        }
        default:
            throw std::runtime_error(where + ": unknown escape '\\" + std::string(1, c) + "'");
        }
    }
    return out;
}

// Every case of tests/hostile/<file>: one per line; lines starting with '#' and empty lines are
// skipped. Throws std::runtime_error when the file is missing or a line does not decode.
inline std::vector<Case> load(const std::string& file) {
    const std::string path = std::string(SITESFS_SOURCE_DIR) + "/tests/hostile/" + file;
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::vector<Case> cases;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        if (line.empty() || line.front() == '#') continue;
        const std::string where = file + ":" + std::to_string(n);
        cases.push_back({unescape(line, where), where});
    }
    return cases;
}

// The corpus files, one per field: the field's name and the file that attacks it.
struct FieldFile {
    const char* field;
    const char* file;
};
inline constexpr FieldFile kFieldFiles[] = {
    {"repo", "repo.txt"},         {"repo", "repo_needs_flag.txt"}, {"domain", "domain.txt"},
    {"branch", "branch.txt"},     {"path", "path.txt"},            {"deploy_key_ref", "deploy_key_ref.txt"},
    {"commit", "commit.txt"},     {"check", "check.txt"},          {"hosts", "hosts.txt"},
    {"routing", "routing.txt"},   {"aliases", "aliases.txt"},   {"build", "build.txt"},
    {"submodules", "submodules.txt"},
    // The same PROVIDER:NAME as a deploy key's, checked by the same rules.
    {"auth_ref", "deploy_key_ref.txt"},
};

}  // namespace sitesfs::corpus
