// The one way a TOML syntax error is reported (site files, sites.toml, the config):
// "FILE:LINE:COLUMN: what toml++ says", made printable, since the parser quotes what it found,
// which may be any bytes of the file.
#pragma once

#include <toml++/toml.h>

#include <string>
#include <string_view>

#include "common/text.hpp"

namespace sitesfs {

inline std::string toml_error_text(const toml::parse_error& e, std::string_view file) {
    const auto& at = e.source().begin;
    return std::string(file) + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + ": " + printable(e.description());
}

}  // namespace sitesfs
