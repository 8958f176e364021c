#include "webhook/push_event.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "common/text.hpp"

namespace sitesfs::webhook {

namespace {

using nlohmann::json;

constexpr size_t kMaxRef = 512;
constexpr size_t kMaxUrls = 16;  // more than every field named above holds

// The string at obj[key], or "" when obj is not an object, the key is absent or not a string.
std::string text(const json& obj, const char* key) {
    if (!obj.is_object()) return {};
    const auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string PushEvent::branch() const {
    constexpr std::string_view kHeads = "refs/heads/";
    return ref.starts_with(kHeads) ? ref.substr(kHeads.size()) : std::string();
}

PushParse parse_push_event(std::string_view body, const ValidationPolicy& policy) {
    PushParse out;
    // No exceptions: a malformed body is a refusal, not an error path. nlohmann's parser keeps its
    // own stack (no recursion), so deep nesting within max_body costs memory, not the stack.
    const json doc = json::parse(body.begin(), body.end(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        out.reason = "the body is not a JSON object";
        return out;
    }
    PushEvent& e = out.event;
    e.ref = text(doc, "ref");
    if (e.ref.empty() || e.ref.size() > kMaxRef) {
        out.reason = "the payload has no \"ref\" of at most " + std::to_string(kMaxRef) + " bytes";
        return out;
    }
    const json empty;
    const json& repository = doc.contains("repository") ? doc["repository"] : empty;
    const json& project = doc.contains("project") ? doc["project"] : empty;
    std::vector<std::string> urls;
    for (const char* key : {"clone_url", "ssh_url", "html_url", "git_url", "git_http_url", "git_ssh_url", "homepage"})
        urls.push_back(text(repository, key));
    for (const char* key : {"git_http_url", "git_ssh_url", "web_url"}) urls.push_back(text(project, key));
    for (const std::string& url : urls) {
        if (url.empty()) continue;
        const Checked c = check_repo(url, policy);
        if (!c.ok) continue;
        std::string id = repo_identity(c.value);
        if (std::find(e.repositories.begin(), e.repositories.end(), id) == e.repositories.end() &&
            e.repositories.size() < kMaxUrls)
            e.repositories.push_back(std::move(id));
    }
    if (e.repositories.empty()) {
        out.reason = "the payload names no repository URL sitesfs accepts (repository.clone_url, project.git_http_url, ...)";
        return out;
    }
    e.default_branch = text(repository, "default_branch");
    if (e.default_branch.empty()) e.default_branch = text(project, "default_branch");
    if (!check_branch(e.default_branch, policy).ok) e.default_branch.clear();
    out.ok = true;
    return out;
}

bool follows(const SiteRecord& site, const PushEvent& push) {
    const std::string& repo = site.field("repo").value;
    if (repo.empty()) return false;
    const std::string pushed = push.branch();
    if (pushed.empty()) return false;
    const std::string& branch = site.field("branch").value;
    if (branch.empty() ? pushed != push.default_branch : pushed != branch) return false;
    const std::string id = repo_identity(repo);
    return std::find(push.repositories.begin(), push.repositories.end(), id) != push.repositories.end();
}

}  // namespace sitesfs::webhook
