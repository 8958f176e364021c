#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "schemas/site_schema.hpp"

namespace sitesfs {
namespace {

SiteRecord site_with(std::initializer_list<std::pair<const char*, const char*>> values) {
    SiteRecord s;
    s.name = "blog";
    s.generation = 3;
    s.created = Timestamp(std::chrono::seconds(1'700'000'000));
    for (auto [k, v] : values) s.desired[k] = FieldValue{v, s.created};
    return s;
}

std::string line_of(const std::string& text, const std::string& key) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key + ": ", 0) == 0) return line.substr(key.size() + 2);
    return "<missing " + key + ">";
}

TEST(Schema, DeclaresTheSiteFilesInOrder) {
    std::vector<std::string> names;
    for (const auto& f : site_fields()) names.emplace_back(f.name);
    EXPECT_EQ(names, (std::vector<std::string>{"repo", "domain", "branch", "path", "deploy_key_ref", "commit", "check", "hosts",
                                               "routing", "aliases", "auth_ref", "build", "submodules", "ctl", "status", "log",
                                               "buildlog", "wait"}));
}

TEST(Schema, TheTypedFieldNamesAreTheReadWriteFieldsInOrder) {
    std::vector<std::string_view> writable;
    for (const auto& f : site_fields())
        if (is_writable(f)) writable.push_back(f.name);
    EXPECT_EQ(writable, std::vector<std::string_view>(std::begin(kDesiredFields), std::end(kDesiredFields)))
        << "schemas/site_record.hpp's kDesiredFields and site_schema.cpp's rows must list the same fields";
    EXPECT_EQ(FieldName::known(std::string("domain")), FieldName("domain"));
    EXPECT_THROW(FieldName::known("domian"), std::invalid_argument);
    EXPECT_THROW(FieldName::known("status"), std::invalid_argument) << "read-only files hold no stored value";
}

TEST(Schema, WritableFieldsAndRequestsHaveValidatorsAndReadOnlyOnesDoNot) {
    for (const auto& f : site_fields()) {
        EXPECT_EQ(f.check != nullptr, is_writable(f) || is_request(f)) << f.name;
        EXPECT_NE(f.render, nullptr) << f.name;
        EXPECT_FALSE(f.help.empty()) << f.name;
    }
    EXPECT_FALSE(is_writable(*find_field("status")));
    EXPECT_EQ(find_field("nope"), nullptr);
}

TEST(Schema, StateIsIncompleteUntilRepoAndDomainAreSet) {
    EXPECT_EQ(site_state(site_with({})), SiteState::incomplete);
    EXPECT_EQ(site_state(site_with({{"repo", "user/blog"}})), SiteState::incomplete);
    auto s = site_with({{"repo", "user/blog"}, {"domain", "blog.example.com"}});
    EXPECT_EQ(site_state(s), SiteState::pending);
    s.actual.state = SiteState::live;
    s.actual.generation = s.generation;
    EXPECT_EQ(site_state(s), SiteState::live);
    s.actual.state = SiteState::deploying;
    EXPECT_EQ(site_state(s), SiteState::deploying);
}

TEST(Schema, ASettledReportOnAnOlderGenerationIsPending) {
    auto s = site_with({{"repo", "user/blog"}, {"domain", "blog.example.com"}});
    s.actual.generation = s.generation - 1;
    for (const SiteState settled : {SiteState::live, SiteState::failed}) {
        s.actual.state = settled;
        EXPECT_EQ(site_state(s), SiteState::pending) << to_string(settled);
    }
    s.actual.state = SiteState::deploying;
    EXPECT_EQ(site_state(s), SiteState::deploying);
}

TEST(Schema, WaitSettlesOnceTheGenerationAtOpenIsLiveOrFailed) {
    const FieldSpec& wait = *find_field("wait");
    ASSERT_NE(wait.settled, nullptr);
    EXPECT_TRUE(wait.settled(site_with({{"repo", "user/blog"}}), 1)) << "an incomplete site has nothing to wait for";
    auto s = site_with({{"repo", "user/blog"}, {"domain", "blog.example.com"}});
    const uint64_t opened = s.generation;
    s.actual.generation = opened;
    s.actual.state = SiteState::deploying;
    EXPECT_FALSE(wait.settled(s, opened));
    s.actual.state = SiteState::live;
    s.actual.commit = std::string(40, 'a');
    EXPECT_TRUE(wait.settled(s, opened));
    EXPECT_EQ(wait.render(s), "live " + std::string(40, 'a'));
    s.actual.state = SiteState::failed;
    s.actual.error = "health: GET / answered 500";
    EXPECT_EQ(wait.render(s), "failed " + std::string(40, 'a') + " health: GET / answered 500");
    EXPECT_FALSE(wait.settled(s, opened + 1)) << "a report on an older generation does not settle a newer open";
    for (const auto& f : site_fields())
        if (f.name != "wait") {
            EXPECT_EQ(f.settled, nullptr) << f.name;
        }
}

// The filesystem keeps a file's cached content across a change its ChangedBy says cannot reach
// it, so a wrong row would serve stale values: every field must really be untouched by the
// other kind of change, in content and mtime.
TEST(Schema, AFieldIsUntouchedByTheChangesItsChangedBySkips) {
    auto before = site_with({{"repo", "user/blog"}, {"domain", "blog.example.com"}, {"branch", "main"},
                             {"path", "docs"}, {"deploy_key_ref", "file:blog"}, {"commit", "abc1234"}, {"check", "/ Hi"},
                             {"hosts", "web-1"}, {"routing", "spa"}, {"aliases", "serve"}, {"auth_ref", "file:staff"},
                             {"build", "hugo"}, {"submodules", "recursive"}});
    before.actual = {SiteState::live, std::string(40, 'a'), "blog.example.com", "docs", {"line 1"}, "domain: refused", true,
                     before.created + std::chrono::seconds(5), before.created + std::chrono::seconds(6), 3};

    // What a report (or a refused write) may change: the actual state, nothing else.
    SiteRecord reported = before;
    reported.actual = {SiteState::failed, std::string(40, 'b'), "www.example.com", "", {"line 1", "line 2"}, "fetch: timeout",
                       false, before.created + std::chrono::seconds(50), before.created + std::chrono::seconds(60), 4};
    reported.actual.build_log = "Total in 40 ms\nsitesfs: hugo for release bbbbbbbbbbbb-cccccccccccc: ok in 70ms";
    // What a committed write may change: desired values and times, the generation, and the
    // actual state's write error and `updated` time.
    SiteRecord written = before;
    for (const auto name : kDesiredFields)
        if (FieldValue& value = written.desired[name]; !value.value.empty())
            value = FieldValue{value.value + "x", before.created + std::chrono::seconds(70)};
    written.desired["branch"] = FieldValue{"dev", before.created + std::chrono::seconds(70)};
    written.generation = 9;
    written.actual.error.clear();
    written.actual.error_from_write = false;
    written.actual.updated = before.created + std::chrono::seconds(70);

    for (const auto& f : site_fields()) {
        SCOPED_TRACE(std::string(f.name));
        if (f.changed_by == ChangedBy::Writes) {
            EXPECT_EQ(f.render(reported), f.render(before));
            EXPECT_EQ(f.changed(reported), f.changed(before));
        }
        if (f.changed_by == ChangedBy::Reports) {
            EXPECT_EQ(f.render(written), f.render(before));
            EXPECT_EQ(f.changed(written), f.changed(before));
        }
        if (f.changed_by != ChangedBy::Both && is_readable(f)) {
            EXPECT_TRUE(f.render(reported) != f.render(before) || f.render(written) != f.render(before))
                << "changes with neither: a mistake in the test's records";
        }
    }
    // A pin's write moves commit's mtime (it shows the pin's time), a deploy its content.
    EXPECT_EQ(find_field("commit")->changed_by, ChangedBy::Both);
    EXPECT_EQ(find_field("status")->changed_by, ChangedBy::Both);
}

TEST(Schema, CommitShowsThePinsTimeWhilePinnedAndTheServedCommitsOtherwise) {
    auto s = site_with({{"repo", "user/blog"}, {"domain", "blog.example.com"}});
    s.actual.commit = std::string(40, 'a');
    s.actual.changed = s.created + std::chrono::seconds(50);
    const FieldSpec& commit = *find_field("commit");
    EXPECT_EQ(commit.changed(s), s.actual.changed);
    s.desired["commit"] = FieldValue{"abcdef1", s.created + std::chrono::seconds(7)};
    EXPECT_EQ(commit.changed(s), s.created + std::chrono::seconds(7));
}

TEST(Schema, DomainReadsOneNamePerLine) {
    const auto s = site_with({{"domain", "a.com www.a.com b.org"}});
    EXPECT_EQ(find_field("domain")->render(s), "a.com\nwww.a.com\nb.org");
}

TEST(Schema, ADirectoryListsExactlyTheSettings) {
    for (const auto& f : site_fields()) EXPECT_EQ(is_listed(f), is_writable(f)) << f.name;
    EXPECT_FALSE(is_listed(*find_field("status")));
    EXPECT_FALSE(is_listed(*find_field("log")));
    EXPECT_FALSE(is_listed(*find_field("wait")));
}

TEST(Schema, StatusIsGreppableKeyValueLines) {
    auto s = site_with({{"repo", "user/blog"}, {"domain", "blog.example.com"}, {"branch", "main"}});
    s.actual.error = "domain: refused";
    const std::string status = find_field("status")->render(s);
    EXPECT_EQ(line_of(status, "state"), "pending");
    EXPECT_EQ(line_of(status, "desired"), "branch main");
    EXPECT_EQ(line_of(status, "generation"), "3");
    EXPECT_EQ(line_of(status, "updated"), "2023-11-14T22:13:20Z");
    EXPECT_EQ(line_of(status, "error"), "domain: refused");
    EXPECT_EQ(line_of(status, "commit"), "");
    EXPECT_NE(status.back(), '\n') << "the filesystem adds the one trailing newline";
}

TEST(Schema, DesiredShowsAPinBeforeTheBranch) {
    const auto pinned = site_with({{"branch", "main"}, {"commit", "abc1234"}});
    EXPECT_EQ(line_of(find_field("status")->render(pinned), "desired"), "commit abc1234");
    EXPECT_EQ(line_of(find_field("status")->render(site_with({})), "desired"), "default-branch");
}

TEST(Schema, CommitReadsTheServedCommitNotThePin) {
    auto s = site_with({{"commit", "abc1234"}});
    EXPECT_EQ(find_field("commit")->render(s), "");
    s.actual.commit = std::string(40, 'f');
    EXPECT_EQ(find_field("commit")->render(s), std::string(40, 'f'));
}

TEST(Schema, HostsReadsOneItemPerLine) {
    const auto s = site_with({{"hosts", "web-1 label:eu"}});
    EXPECT_EQ(find_field("hosts")->render(s), "web-1\nlabel:eu");
    EXPECT_EQ(find_field("hosts")->check("WEB-1  label:EU\nweb-1", {}).value, "web-1 label:eu");
}

// ---- placement ----

TEST(Placement, AnEmptyHostsFieldPlacesTheSiteEverywhere) {
    const auto s = site_with({{"repo", "user/blog"}});
    EXPECT_TRUE(placed_on(s, "web-1", {}));
    EXPECT_TRUE(placed_on(s, "anything", std::vector<std::string>{"eu"}));
}

TEST(Placement, ByHostNameOrByLabel) {
    const auto s = site_with({{"hosts", "web-1 label:eu"}});
    const std::vector<std::string> none;
    const std::vector<std::string> eu_ssd{"ssd", "eu"};
    const std::vector<std::string> us{"us"};
    EXPECT_TRUE(placed_on(s, "web-1", none));
    EXPECT_TRUE(placed_on(s, "Web-1", none)) << "a host may call itself in capitals; stored names are lowercase";
    EXPECT_FALSE(placed_on(s, "web-2", none));
    EXPECT_FALSE(placed_on(s, "web-2", us));
    EXPECT_TRUE(placed_on(s, "web-2", eu_ssd));
    EXPECT_FALSE(placed_on(s, "eu", none)) << "a label is not a host name";
    EXPECT_FALSE(placed_on(site_with({{"hosts", "eu"}}), "web-2", std::vector<std::string>{"eu"}))
        << "a host name is not a label";
    EXPECT_FALSE(placed_on(site_with({{"hosts", "label:web-1"}}), "web-1", none));
}

// ---- host reports (a store many hosts share) ----

HostReport report(const char* host, SiteState state, uint64_t generation, char commit = 0) {
    HostReport r;
    r.host = host;
    r.actual.state = state;
    r.actual.generation = generation;
    if (commit) r.actual.commit = std::string(40, commit);
    return r;
}

SiteRecord placed_site(std::vector<HostReport> reports) {
    auto s = site_with({{"repo", "user/blog"}, {"domain", "blog.example.com"}});
    s.reports = std::move(reports);
    return s;
}

TEST(HostReports, EachHostByTheOneHostRuleOrGone) {
    const auto s = placed_site({});
    EXPECT_EQ(host_state(s, report("a", SiteState::none, 0)), SiteState::pending);
    EXPECT_EQ(host_state(s, report("a", SiteState::live, s.generation)), SiteState::live);
    EXPECT_EQ(host_state(s, report("a", SiteState::live, s.generation - 1)), SiteState::pending);
    EXPECT_EQ(host_state(s, report("a", SiteState::failed, s.generation - 1)), SiteState::pending);
    EXPECT_EQ(host_state(s, report("a", SiteState::deploying, s.generation - 1)), SiteState::deploying);
    auto dead = report("a", SiteState::live, s.generation);
    dead.alive = false;
    EXPECT_EQ(host_state(s, dead), SiteState::gone);
    EXPECT_EQ(host_state(site_with({{"repo", "user/blog"}}), dead), SiteState::incomplete);
}

TEST(HostReports, TheSiteIsAsBadAsItsWorstHost) {
    const uint64_t g = placed_site({}).generation;
    auto gone = report("d", SiteState::live, g);
    gone.alive = false;
    const HostReport live = report("a", SiteState::live, g), failed = report("b", SiteState::failed, g),
                     deploying = report("c", SiteState::deploying, g), pending = report("e", SiteState::none, 0);
    EXPECT_EQ(site_state(placed_site({live})), SiteState::live);
    EXPECT_EQ(site_state(placed_site({live, report("b", SiteState::live, g)})), SiteState::live);
    EXPECT_EQ(site_state(placed_site({live, failed, deploying, pending, gone})), SiteState::failed);
    EXPECT_EQ(site_state(placed_site({live, deploying, pending, gone})), SiteState::deploying);
    EXPECT_EQ(site_state(placed_site({live, pending, gone})), SiteState::pending);
    EXPECT_EQ(site_state(placed_site({live, report("b", SiteState::live, g - 1)})), SiteState::pending);
    EXPECT_EQ(site_state(placed_site({live, gone})), SiteState::gone);
    EXPECT_EQ(site_state(placed_site({gone})), SiteState::gone);
    auto incomplete = placed_site({live});
    incomplete.desired["domain"] = FieldValue{};
    EXPECT_EQ(site_state(incomplete), SiteState::incomplete);
    auto one_host = placed_site({});
    one_host.actual.state = SiteState::live;
    one_host.actual.generation = g;
    EXPECT_EQ(site_state(one_host), SiteState::live) << "no reports: this host's actual is all there is";
}

TEST(HostReports, GoneIsDerivedAndNamed) {
    EXPECT_EQ(to_string(SiteState::gone), "gone");
    EXPECT_EQ(parse_site_state("gone"), SiteState::gone);
    EXPECT_FALSE(settled(SiteState::gone)) << "no run ended";
}

TEST(HostReports, StatusHasAHostLinePerPlacedHostAfterTheState) {
    const uint64_t g = placed_site({}).generation;
    auto gone = report("web-3", SiteState::live, g, 'c');
    gone.alive = false;
    auto s = placed_site({report("web-1", SiteState::live, g, 'a'), report("web-2", SiteState::none, 0), gone});
    s.actual = s.reports[0].actual;
    const std::string status = find_field("status")->render(s);
    EXPECT_THAT(status, ::testing::StartsWith("state: pending\n"
                                              "host: web-1 live " + std::string(40, 'a') + "\n"
                                              "host: web-2 pending\n"
                                              "host: web-3 gone " + std::string(40, 'c') + "\n"
                                              "commit: " + std::string(40, 'a') + "\n"));
    EXPECT_EQ(find_field("status")->render(placed_site({})).find("host:"), std::string::npos) << "one host: no host lines";
}

TEST(HostReports, OnAHostThatServesNoneOfItCommitIsTheFirstLiveHosts) {
    const uint64_t g = placed_site({}).generation;
    const auto s = placed_site({report("web-1", SiteState::failed, g, 'a'), report("web-2", SiteState::live, g, 'b'),
                                report("web-3", SiteState::live, g, 'c')});
    EXPECT_EQ(line_of(find_field("status")->render(s), "commit"), std::string(40, 'b'));
    auto here = s;
    here.actual.commit = std::string(40, 'a');
    EXPECT_EQ(line_of(find_field("status")->render(here), "commit"), std::string(40, 'a')) << "this host's own commit first";
}

TEST(HostReports, WaitSettlesWhenEveryHostSettledOrIsGone) {
    const FieldSpec& wait = *find_field("wait");
    const uint64_t g = placed_site({}).generation;
    auto s = placed_site({report("web-1", SiteState::live, g, 'a'), report("web-2", SiteState::deploying, g)});
    EXPECT_FALSE(wait.settled(s, g));
    s.reports[1] = report("web-2", SiteState::live, g - 1, 'a');
    EXPECT_FALSE(wait.settled(s, g)) << "web-2 reported on an older generation";
    s.reports[1] = report("web-2", SiteState::live, g, 'a');
    EXPECT_TRUE(wait.settled(s, g));
    EXPECT_EQ(wait.render(s), "live " + std::string(40, 'a'));
    EXPECT_FALSE(wait.settled(s, g + 1)) << "opened at a newer generation";

    s.reports[1].alive = false;
    s.reports[1].actual = {};
    EXPECT_TRUE(wait.settled(s, g)) << "a gone host will not report; it does not hold the wait";
    EXPECT_EQ(wait.render(s), "gone " + std::string(40, 'a'));

    s.reports.push_back(report("web-3", SiteState::failed, g));
    s.reports[2].actual.error = "health: GET / answered 500";
    s.reports.push_back(report("web-4", SiteState::failed, g));
    s.reports[3].actual.error = "fetch: timeout";
    EXPECT_TRUE(wait.settled(s, g));
    EXPECT_EQ(wait.render(s), "failed " + std::string(40, 'a') + " web-3: health: GET / answered 500");
}

TEST(Schema, DocsFieldTableIsGeneratedFromTheSchema) {
    std::ifstream in(std::string(SITESFS_SOURCE_DIR) + "/docs/fields.md");
    ASSERT_TRUE(in) << "docs/fields.md is missing";
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str(), fields_markdown())
        << "docs/fields.md is stale: run `cmake --build build -t fields-doc` and commit it";
}

}  // namespace
}  // namespace sitesfs
