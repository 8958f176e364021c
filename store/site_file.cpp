#include "store/site_file.hpp"

#include <toml++/toml.h>

#include <set>
#include <sstream>
#include <vector>

#include "common/toml_error.hpp"
#include "schemas/site_schema.hpp"
#include "store/store.hpp"

namespace sitesfs {

namespace {

constexpr int64_t kFormat = 1;

int64_t to_ns(Timestamp t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
Timestamp from_ns(int64_t ns) {
    return Timestamp(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

// A TOML basic string; toml++ does the escaping. A TOML file must be UTF-8, but a refused value
// quoted in an error, or a reconciler's error about a file name in a repo, may not be; one bad
// byte would make the store unopenable.
std::string toml_string(std::string_view s) {
    std::ostringstream out;
    out << toml::toml_formatter{toml::value<std::string>(valid_utf8(s)), toml::format_flags::allow_unicode_strings};
    return out.str();
}

std::string toml_strings(const std::vector<std::string>& items) {
    if (items.empty()) return "[]";
    std::string out = "[\n";
    for (const auto& item : items) out += "  " + toml_string(item) + ",\n";
    return out + "]";
}

std::string desired_section(const SiteRecord& s) {
    std::string values = "[desired]\n";
    std::string changed = "[desired_changed]  # ns since the epoch\n";
    for (const auto& f : site_fields()) {
        if (!is_writable(f)) continue;
        const FieldValue& v = s.field(FieldName::known(f.name));
        values += std::string(f.name) + " = " + toml_string(v.value) + "\n";
        changed += std::string(f.name) + " = " + std::to_string(to_ns(v.changed)) + "\n";
    }
    return values + "\n" + changed;
}

std::string actual_section(const ActualState& a) {
    return "[actual]\n"
           "state = " + toml_string(std::string(to_string(a.state))) + "\n"
           "commit = " + toml_string(a.commit) + "\n"
           "domain = " + toml_string(a.domain) + "\n"
           "path = " + toml_string(a.path) + "\n"
           "routing = " + toml_string(a.routing) + "\n"
           "aliases = " + toml_string(a.aliases) + "\n"
           "auth_ref = " + toml_string(a.auth_ref) + "\n"
           "log = " + toml_strings(a.log) + "\n"
           "error = " + toml_string(a.error) + "\n"
           "error_from_write = " + (a.error_from_write ? "true" : "false") + "\n"
           "changed = " + std::to_string(to_ns(a.changed)) + "\n"
           "updated = " + std::to_string(to_ns(a.updated)) + "\n"
           "generation = " + std::to_string(a.generation) + "  # the desired generation last reported on\n"
           "retry_at = " + std::to_string(to_ns(a.retry_at)) + "\n"
           "tls = " + toml_strings(a.tls) + "\n"
           "build_log = " + toml_string(a.build_log) + "\n";
}

std::string site_header(const SiteRecord& s) {
    return "# sitesfs site state; written by sitesfs, change it through the mounted filesystem\n"
           "format = " + std::to_string(kFormat) + "\n"
           "name = " + toml_string(s.name) + "\n"
           "generation = " + std::to_string(s.generation) + "\n"
           "created = " + std::to_string(to_ns(s.created)) + "  # ns since the epoch\n";
}

}  // namespace

std::string render_site_file(const SiteRecord& s) {
    return site_header(s) + "\n" + desired_section(s) + "\n" + actual_section(s.actual);
}

std::string render_desired_value(const SiteRecord& s) { return site_header(s) + "\n" + desired_section(s); }

std::string render_actual_value(const ActualState& a) {
    return "format = " + std::to_string(kFormat) + "\n\n" + actual_section(a);
}

namespace {

// Every problem names the file and the key, or the line and column.
class SiteFileReader {
public:
    explicit SiteFileReader(std::string file) : file_(std::move(file)) {}

    // `with_actual`: a site file holds both parts; a shared store's site value only the desired one.
    SiteRecord read(std::string_view text, std::string_view expected_name, bool with_actual) const {
        const toml::table root = parse(text);
        if (with_actual)
            only(root, "", {"format", "name", "generation", "created", "desired", "desired_changed", "actual"});
        else
            only(root, "", {"format", "name", "generation", "created", "desired", "desired_changed"});
        SiteRecord s;
        s.name = str(root, "name");
        if (s.name != expected_name) fail("name", "'" + printable(s.name) + "' does not match the file name");
        if (const Checked c = check_site_name(s.name); !c.ok) fail("name", c.reason);
        s.generation = static_cast<uint64_t>(num(root, "generation"));
        s.created = from_ns(num(root, "created"));

        std::set<std::string> writable;
        for (const auto& f : site_fields())
            if (is_writable(f)) writable.emplace(f.name);
        const toml::table& desired = table(root, "desired");
        const toml::table& changed = table(root, "desired_changed");
        only(desired, "desired.", writable);
        only(changed, "desired_changed.", writable);
        // A field missing from [desired] is unset rather than an error, so that adding a row to the
        // schema does not make every existing state dir unopenable.
        // Stored values are checked again, so a hand edit cannot smuggle in what a write would
        // refuse. Local repos pass: a read-only instance started without --allow-local-repos must
        // still read what the read-write one accepted (the reconciler applies the policy).
        const ValidationPolicy load_policy{.allow_local_repos = true};
        for (const auto& f : site_fields()) {
            if (!is_writable(f) || !desired.contains(f.name)) continue;
            const std::string value = checked(desired, f.name, "desired.", f.check, load_policy);
            const Timestamp when = changed.contains(f.name) ? from_ns(num(changed, f.name, "desired_changed.")) : Timestamp{};
            s.desired[std::string(f.name)] = FieldValue{value, when};
        }
        if (with_actual) s.actual = read_actual(table(root, "actual"));
        return s;
    }

    ActualState read_actual_value(std::string_view text) const {
        const toml::table root = parse(text);
        only(root, "", {"format", "actual"});
        return read_actual(table(root, "actual"));
    }

private:
    toml::table parse(std::string_view text) const {
        toml::table root;
        try {
            root = toml::parse(text, std::string_view(file_));
        } catch (const toml::parse_error& e) {
            throw StoreError(toml_error_text(e, file_));
        }
        if (num(root, "format") != kFormat)
            fail("format", "format " + std::to_string(num(root, "format")) + " is not 1; was it written by a newer sitesfs?");
        return root;
    }

    ActualState read_actual(const toml::table& actual) const {
        const ValidationPolicy load_policy{.allow_local_repos = true};
        ActualState a;
        only(actual, "actual.",
             {"state", "commit", "domain", "path", "routing", "aliases", "auth_ref", "log", "error", "error_from_write", "changed", "updated", "generation",
              "retry_at", "tls", "build_log"});
        // What the reconciler reports: never incomplete or gone, which are derived from the desired
        // state and the host reports.
        const std::string state = str(actual, "state", "actual.");
        const auto parsed = parse_site_state(state);
        if (!parsed || *parsed == SiteState::incomplete || *parsed == SiteState::gone)
            fail("actual.state", "'" + printable(state) + "' is not one of pending, deploying, live, failed or empty");
        a.state = *parsed;
        a.commit = str(actual, "commit", "actual.");
        // The served commit, domains, path and serving fields go into the proxy config when the reconciler starts,
        // so they are held to the same rules as the desired values they were copied from.
        if (!a.commit.empty() && (a.commit.size() != 40 || check_commit(a.commit, load_policy).value != a.commit))
            fail("actual.commit", "'" + printable(a.commit) + "' is not a 40-digit lower-case commit id");
        // Keys added after format 1 shipped load as empty when absent.
        if (actual.contains("domain")) a.domain = checked(actual, "domain", "actual.", check_domain, load_policy);
        if (actual.contains("path")) a.path = checked(actual, "path", "actual.", check_path, load_policy);
        if (actual.contains("routing")) a.routing = checked(actual, "routing", "actual.", check_routing, load_policy);
        if (actual.contains("aliases")) a.aliases = checked(actual, "aliases", "actual.", check_aliases, load_policy);
        if (actual.contains("auth_ref")) a.auth_ref = checked(actual, "auth_ref", "actual.", check_auth_ref, load_policy);
        if (actual.contains("log")) a.log = strings(actual, "log", "actual.");
        a.error = str(actual, "error", "actual.");
        a.error_from_write = boolean(actual, "error_from_write", "actual.");
        a.changed = from_ns(num(actual, "changed", "actual."));
        a.updated = from_ns(num(actual, "updated", "actual."));
        a.generation = static_cast<uint64_t>(num(actual, "generation", "actual."));
        // Both came with issue 14; a state file written before has neither.
        if (actual.contains("retry_at")) a.retry_at = from_ns(num(actual, "retry_at", "actual."));
        if (actual.contains("tls")) a.tls = strings(actual, "tls", "actual.");
        if (actual.contains("build_log")) a.build_log = str(actual, "build_log", "actual.");  // since issue 18
        return a;
    }

    [[noreturn]] void fail(const std::string& key, const std::string& why) const {
        throw StoreError(file_ + ": " + key + ": " + why);
    }
    void only(const toml::table& t, const std::string& prefix, const std::set<std::string>& known) const {
        for (const auto& [k, v] : t)
            if (!known.contains(std::string(k.str()))) fail(prefix + std::string(k.str()), "unknown key");
    }
    const toml::node& need(const toml::table& t, std::string_view key, const std::string& prefix) const {
        const toml::node* n = t.get(key);
        if (!n) fail(prefix + std::string(key), "missing");
        return *n;
    }
    std::string str(const toml::table& t, std::string_view key, const std::string& prefix = "") const {
        const auto v = need(t, key, prefix).value<std::string>();
        if (!v) fail(prefix + std::string(key), "must be a string");
        return *v;
    }
    // A string its validator accepts as it is (in normal form).
    std::string checked(const toml::table& t, std::string_view key, const std::string& prefix,
                        Checked (*check)(std::string_view, const ValidationPolicy&), const ValidationPolicy& policy) const {
        const std::string value = str(t, key, prefix);
        const Checked c = check(value, policy);
        if (!c.ok) fail(prefix + std::string(key), c.reason);
        if (c.value != value)
            fail(prefix + std::string(key), "'" + printable(value) + "' is not in normal form (sitesfs stores '" + c.value + "')");
        return value;
    }
    std::vector<std::string> strings(const toml::table& t, std::string_view key, const std::string& prefix) const {
        const toml::array* a = need(t, key, prefix).as_array();
        if (!a) fail(prefix + std::string(key), "must be an array of strings");
        std::vector<std::string> out;
        for (const toml::node& n : *a) {
            const auto v = n.value<std::string>();
            if (!v) fail(prefix + std::string(key), "must be an array of strings");
            out.push_back(*v);
        }
        return out;
    }
    int64_t num(const toml::table& t, std::string_view key, const std::string& prefix = "") const {
        const toml::node& n = need(t, key, prefix);
        if (!n.is_integer() || *n.value<int64_t>() < 0) fail(prefix + std::string(key), "must be a non-negative integer");
        return *n.value<int64_t>();
    }
    bool boolean(const toml::table& t, std::string_view key, const std::string& prefix) const {
        const toml::node& n = need(t, key, prefix);
        if (!n.is_boolean()) fail(prefix + std::string(key), "must be true or false");
        return *n.value<bool>();
    }
    const toml::table& table(const toml::table& t, std::string_view key) const {
        const toml::table* sub = need(t, key, "").as_table();
        if (!sub) fail(std::string(key), "must be a table");
        return *sub;
    }

    std::string file_;
};

}  // namespace

SiteRecord parse_site_file(std::string_view text, std::string_view expected_name, const std::string& shown) {
    return SiteFileReader(shown).read(text, expected_name, true);
}

SiteRecord parse_desired_value(std::string_view text, std::string_view expected_name, const std::string& shown) {
    return SiteFileReader(shown).read(text, expected_name, false);
}

ActualState parse_actual_value(std::string_view text, const std::string& shown) {
    return SiteFileReader(shown).read_actual_value(text);
}

bool same_desired(const SiteRecord& a, const SiteRecord& b) {
    return a.generation == b.generation && desired_section(a) == desired_section(b);
}

bool same_actual(const SiteRecord& a, const SiteRecord& b) { return actual_section(a.actual) == actual_section(b.actual); }

std::optional<std::string> site_of_file(std::string_view file) {
    if (file.empty() || file.front() == '.' || !file.ends_with(kSiteFileSuffix) || file.size() == kSiteFileSuffix.size())
        return std::nullopt;
    return std::string(file.substr(0, file.size() - kSiteFileSuffix.size()));
}


}  // namespace sitesfs
