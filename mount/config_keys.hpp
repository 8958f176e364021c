// Every key of the config file, declared once: its type, its built-in default, the values it
// accepts, and a line of help. load_config (config.hpp) reads a file through this table and
// refuses a value outside a key's bounds, naming the key and what it accepts (nothing is clamped);
// the key list in docs/configuration.md is generated from it (`cmake --build build -t config-doc`),
// and a unit test (tests/unit/config_test.cpp) checks docs/sitesfs.8, the usage text and the NixOS
// module against it.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "hooks/builders.hpp"

namespace sitesfs::mount {

struct Config;

enum class KeyType {
    boolean,  // true or false
    integer,  // a whole number from min to max
    seconds,  // a duration: seconds, whole or fractional, from min to max; kept to the millisecond
    string,   // a string; with choices, one of them
    path,     // an absolute path
    argv,     // a non-empty array of strings: a command, run without a shell
    strings,  // an array of strings, possibly empty
    mode,     // an octal string, "0000" to "0777"
    user,     // a user name, or a uid from min to max
    group,    // a group name, or a gid from min to max
    pins,     // a table of "HOST:PORT" = "SHA256:..." ([ssh.pins])
    builders, // a table of tables, [builders.NAME], each read through builder_fields()
};

// A key's value, read from the file or from its default, already within the key's bounds.
struct KeyValue {
    bool boolean = false;
    int64_t integer = 0;  // integer; the uid or gid of user and group; the bits of mode
    std::chrono::milliseconds duration{0};
    std::string text;               // string, path
    std::vector<std::string> list;  // argv, strings
    std::map<std::string, std::string> pins;
    std::map<std::string, hooks::Builder, std::less<>> builders;
};

inline constexpr double kNoLimit = std::numeric_limits<double>::infinity();
// The longest duration any key accepts: a year.
inline constexpr double kMaxSeconds = 365 * 86400.0;
// The shortest non-zero duration: durations are kept in milliseconds.
inline constexpr double kMinSeconds = 0.001;

struct ConfigKey {
    std::string_view name;  // "reconcile.workers": SECTION.KEY; no dot: a top-level key
    KeyType type;
    // The built-in default, as TOML ("32", "\"caddy.service\""). Empty: unset (the key has no
    // value unless the file gives one).
    std::string_view fallback;
    std::string_view help;  // one line (docs/configuration.md wraps it)
    double min = 0;         // integer, seconds, user, group: the smallest value accepted
    double max = kNoLimit;  // ... and the largest
    std::vector<std::string_view> choices;  // string: the values accepted; empty: any
    std::string_view example;  // an unset key: a value to show in the docs, commented out
    bool derived = false;      // an unset key whose value follows from other keys when left out
    // More to check once the value is read: what is wrong with it, or "" when nothing is.
    std::string (*check)(const KeyValue&) = nullptr;
    void (*apply)(Config&, const KeyValue&) = nullptr;

    std::string_view section() const;  // "reconcile"; "" for a top-level key
    std::string_view key() const;      // "workers"
    // What the key accepts, as a noun phrase for messages: "a whole number from 1 to 64".
    std::string accepts() const;
    // The bounds, short, for the docs: "1 to 64", "\"systemd\", \"command\" or \"none\""; empty
    // when the type says it all (booleans, paths, commands, modes, pins, free strings).
    std::string range() const;
};

struct ConfigSection {
    std::string_view name;  // "proxy"
    std::string_view help;  // for the docs; may be empty
};

// A key of each [builders.NAME] table. `spec.name` is the key alone ("timeout"); messages name
// it in full ("builders.hugo.timeout"). A field without a fallback is required. spec.apply is
// unused: a field goes into its builder, not straight into the Config.
struct BuilderField {
    ConfigKey spec;
    void (*set)(hooks::Builder&, const KeyValue&);
};

// In the order of the docs. Top-level keys come first; `builders`, top-level in TOML but a table
// of tables, comes where its docs belong, after [build].
const std::vector<ConfigKey>& config_keys();
const std::vector<BuilderField>& builder_fields();
const std::vector<ConfigSection>& config_sections();
// The key of that name; throws std::logic_error for a name the table does not hold.
const ConfigKey& config_key(std::string_view name);
// A key's default as a person types it on the command line: "/var/lib/sitesfs", "info".
std::string default_value(std::string_view name);

// The generated part of docs/configuration.md (a ```toml block of every key), markers included.
std::string config_doc_block();
// `markdown` with the text between the markers replaced by config_doc_block(); throws
// std::runtime_error when the markers are missing.
std::string with_config_doc(const std::string& markdown);

}  // namespace sitesfs::mount
