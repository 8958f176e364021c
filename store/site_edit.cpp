#include "store/site_edit.hpp"

#include <cerrno>

#include "schemas/site_schema.hpp"

namespace sitesfs {

namespace {

// A refusal as the site's status shows it. The validators' reasons already start with the
// field's name ("domain 'a..b': ..."); others get it in front.
std::string refusal_text(std::string_view field, const std::string& reason) {
    const bool named = reason.starts_with(field) && reason.size() > field.size() &&
                       (reason[field.size()] == ' ' || reason[field.size()] == ':');
    return named ? reason : std::string(field) + ": " + reason;
}

void clear_write_error(SiteRecord& s, Timestamp now) {
    if (s.actual.error_from_write) {
        s.actual.error.clear();
        s.actual.error_from_write = false;
    }
    s.actual.updated = now;
}

FieldEdit refused(int err, std::string reason, bool show) {
    FieldEdit e;
    e.kind = FieldEdit::Kind::Refused;
    e.outcome = Outcome::fail(err, std::move(reason));
    e.show_refusal = show;
    return e;
}

// A request stores no value, so a restore has nothing to put back. `redeploy` is a new generation
// of the same settings; `refresh` changes nothing but a refusal still shown, which any good write
// clears.
FieldEdit request_edit(const SiteRecord& cur, const std::string& verb, bool restore, Timestamp now) {
    FieldEdit edit;
    const auto request = parse_site_request(verb);
    if (restore || !request) return edit;
    edit.refresh = *request == SiteRequest::refresh;
    if (edit.refresh && !cur.actual.error_from_write) return edit;
    edit.kind = edit.refresh ? FieldEdit::Kind::ClearsRefusal : FieldEdit::Kind::Changed;
    edit.next = std::make_shared<SiteRecord>(cur);
    if (!edit.refresh) ++edit.next->generation;
    clear_write_error(*edit.next, now);
    return edit;
}

}  // namespace

std::set<std::string> domains_of(const SiteRecord& s) {
    const auto names = split_domains(s.field("domain").value);
    return {names.begin(), names.end()};
}

Outcome no_site(std::string_view name) { return Outcome::fail(ENOENT, "no site '" + std::string(name) + "'"); }

NewRecord make_site(const NewSite& w, const ValidationPolicy& policy, Timestamp now) {
    NewRecord m;
    if (const Checked c = check_site_name(w.name); !c.ok) {
        m.outcome = Outcome::fail(EINVAL, c.reason);
        return m;
    }
    m.record.name = w.name;
    m.record.generation = 1;
    m.record.created = now;
    for (const auto& f : site_fields())
        if (is_writable(f)) m.record.desired[std::string(f.name)] = FieldValue{};
    for (const auto& [field, raw] : w.values) {
        const FieldSpec* spec = find_field(field);
        if (!spec || !is_writable(*spec)) {
            m.outcome = Outcome::fail(EINVAL, "a site has no setting '" + field + "'");
            return m;
        }
        const Checked c = spec->check(trim(raw), policy);
        if (!c.ok) {
            m.outcome = Outcome::fail(EINVAL, c.reason);
            return m;
        }
        m.record.desired[field] = FieldValue{c.value, now};
    }
    return m;
}

FieldEdit edit_field(const SiteRecord& cur, std::string_view field, std::string_view raw,
                     const std::string_view* expected, const ValidationPolicy& policy, Timestamp now) {
    const FieldSpec* spec = find_field(field);
    if (!spec) return refused(EINVAL, "a site has no file '" + std::string(field) + "'", false);
    if (!is_writable(*spec) && !is_request(*spec)) return refused(EACCES, std::string(field) + " is read-only", false);
    // A restore records nothing in the status: the refusal that called for it shows there.
    const bool show = expected == nullptr;
    const Checked c = spec->check(trim(raw), policy);
    if (!c.ok) return refused(EINVAL, c.reason, show);
    if (is_request(*spec)) return request_edit(cur, c.value, expected != nullptr, now);
    const FieldName name = FieldName::known(field);
    if (expected) {
        const Checked e = spec->check(trim(*expected), policy);
        if (!e.ok || cur.field(name).value != e.value)
            return refused(ESTALE, std::string(field) + " was changed by another writer meanwhile", false);
    }
    FieldEdit edit;
    // Editors save the whole file, usually unchanged: the same value is no new generation and
    // no store write. It only clears a refusal still shown in the status, as any good write does.
    if (cur.field(name).value == c.value) {
        if (expected || !cur.actual.error_from_write) return edit;
        edit.kind = FieldEdit::Kind::ClearsRefusal;
        edit.next = std::make_shared<SiteRecord>(cur);
        clear_write_error(*edit.next, now);
        return edit;
    }
    edit.kind = FieldEdit::Kind::Changed;
    edit.next = std::make_shared<SiteRecord>(cur);
    edit.next->desired[std::string(field)] = FieldValue{c.value, now};
    ++edit.next->generation;
    if (!expected) clear_write_error(*edit.next, now);
    edit.domains_changed = field == "domain";
    return edit;
}

std::shared_ptr<SiteRecord> with_refusal(const SiteRecord& cur, std::string_view field, const std::string& reason, Timestamp now) {
    auto next = std::make_shared<SiteRecord>(cur);
    next->actual.error = refusal_text(field, reason);
    next->actual.error_from_write = true;
    next->actual.updated = now;
    return next;
}

Outcome check_field_time(std::string_view field) {
    const FieldSpec* spec = find_field(field);
    if (!spec || !is_writable(*spec)) return Outcome::fail(EPERM, std::string(field) + " shows when sitesfs changed it");
    return Outcome::success();
}

ActualState reported_actual(const ActualState& previous, uint64_t generation, const ActualState& actual, Timestamp now) {
    ActualState next = actual;
    next.generation = generation;
    next.changed = actual.commit == previous.commit ? previous.changed : now;
    next.updated = now;
    // A report built from the record it read carries the refusal shown there; that is still the
    // refusal, not the reconciler's own error, so a good write still clears it.
    const bool keep_refusal = previous.error_from_write && (actual.error.empty() || actual.error == previous.error);
    next.error = keep_refusal ? previous.error : actual.error;
    next.error_from_write = keep_refusal;
    return next;
}

}  // namespace sitesfs
