// Lowercase hex of bytes: digests as git, GitHub's signature header and release names spell them.
#pragma once

#include <cstddef>
#include <string>

namespace sitesfs {

inline std::string hex_lower(const unsigned char* bytes, size_t size) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(size * 2);
    for (size_t i = 0; i < size; ++i) out.append({kDigits[bytes[i] >> 4], kDigits[bytes[i] & 15]});
    return out;
}

}  // namespace sitesfs
