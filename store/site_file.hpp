// The site file's format: one site's record as STATE_DIR/sites/NAME.toml holds it. Pure: text in,
// record out and back, no disk, so the fuzzer can drive it in memory (tests/fuzz/fuzz_state_file.cpp)
// and every store that keeps a site as bytes (the file store; a network store's values) shares it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "schemas/site_record.hpp"

namespace sitesfs {

// The bytes of a site file, always in this one layout (written from the record, never by editing
// a parsed file). Values that are not UTF-8 (a refused value quoted in an error) are stored with
// U+FFFD in place of each bad byte, since TOML must be UTF-8.
std::string render_site_file(const SiteRecord& site);

// Parses and checks a site file: every stored value must be one its validator accepts unchanged
// (local repos allowed: the reconciler applies that policy), so a hand edit cannot smuggle in what
// a write would refuse. Throws StoreError "SHOWN: KEY: reason" or "SHOWN:LINE:COLUMN: reason".
SiteRecord parse_site_file(std::string_view text, std::string_view expected_name, const std::string& shown);

// The values of a store many hosts share (etcd), in the same format: the desired part alone (the
// site's one record), and one host's actual state (each host's own key). Same errors as above.
std::string render_desired_value(const SiteRecord& site);
SiteRecord parse_desired_value(std::string_view text, std::string_view expected_name, const std::string& shown);
std::string render_actual_value(const ActualState& actual);
ActualState parse_actual_value(std::string_view text, const std::string& shown);

// Whether two records differ in what a change-feed consumer cares about: the desired values and
// generation (Change::Desired), or the actual state (Change::Actual).
bool same_desired(const SiteRecord& a, const SiteRecord& b);
bool same_actual(const SiteRecord& a, const SiteRecord& b);

// File names: "blog" for "blog.toml"; nullopt for dot files (temp files, editors' leftovers) and
// other names.
inline constexpr std::string_view kSiteFileSuffix = ".toml";
std::optional<std::string> site_of_file(std::string_view file);
inline std::string site_file_name(std::string_view site) { return std::string(site) + std::string(kSiteFileSuffix); }

}  // namespace sitesfs
