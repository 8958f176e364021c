// The step runner and the small pure parts of a deploy, without any server.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include "hooks/deploy.hpp"
#include "hooks/deploy_log.hpp"

namespace sitesfs::hooks {
namespace {

namespace stdfs = std::filesystem;

// Records what ran, in order; fails where told to.
class Probe : public Step {
public:
    Probe(std::string name, std::vector<std::string>& journal, bool fails = false, bool undo_fails = false)
        : name_(std::move(name)), journal_(journal), fails_(fails), undo_fails_(undo_fails) {}
    const char* name() const override { return name_.c_str(); }
    void apply(Deploy&) override {
        journal_.push_back("apply " + name_);
        if (fails_) throw StepError(name_ + " broke");
    }
    void undo(Deploy&) override {
        journal_.push_back("undo " + name_);
        if (undo_fails_) throw StepError("cannot put " + name_ + " back");
    }

private:
    std::string name_;
    std::vector<std::string>& journal_;
    bool fails_, undo_fails_;
};

class Steps : public ::testing::Test {
protected:
    void SetUp() override {
        auto s = std::make_shared<SiteRecord>();
        s->name = "blog";
        site_ = s;
    }
    Deploy deploy(std::function<bool()> superseded = [] { return false; }) {
        return Deploy(config_, proxy_, hosts_, builds_, site_, std::move(superseded));
    }

    HooksConfig config_;
    ProxyPublisher proxy_{nullptr, nullptr};
    KnownHosts hosts_{"/nonexistent/known_hosts", HostKeyPolicy::AcceptNew};
    BuildSlots builds_{1};
    SiteRef site_;
    std::vector<std::string> journal_;
};

TEST_F(Steps, RunInOrderWhenAllSucceed) {
    std::vector<std::unique_ptr<Step>> steps;
    for (const char* n : {"a", "b", "c"}) steps.push_back(std::make_unique<Probe>(n, journal_));
    Deploy d = deploy();
    const RunResult r = run_steps(d, steps);
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(journal_, (std::vector<std::string>{"apply a", "apply b", "apply c"}));
}

TEST_F(Steps, AFailureUndoesWhatWasAppliedInReverseIncludingTheFailedStep) {
    std::vector<std::unique_ptr<Step>> steps;
    steps.push_back(std::make_unique<Probe>("a", journal_));
    steps.push_back(std::make_unique<Probe>("b", journal_));
    steps.push_back(std::make_unique<Probe>("c", journal_, true));
    steps.push_back(std::make_unique<Probe>("d", journal_));
    Deploy d = deploy();
    const RunResult r = run_steps(d, steps);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.step, "c");
    EXPECT_EQ(r.error, "c broke");
    EXPECT_EQ(journal_, (std::vector<std::string>{"apply a", "apply b", "apply c", "undo c", "undo b", "undo a"}));
}

TEST_F(Steps, AFailedUndoIsReportedAndTheOthersStillRun) {
    std::vector<std::unique_ptr<Step>> steps;
    steps.push_back(std::make_unique<Probe>("a", journal_));
    steps.push_back(std::make_unique<Probe>("b", journal_, false, true));
    steps.push_back(std::make_unique<Probe>("c", journal_, true));
    Deploy d = deploy();
    const RunResult r = run_steps(d, steps);
    EXPECT_EQ(r.undo_error, "b undo: cannot put b back");
    EXPECT_EQ(journal_.back(), "undo a");
}

TEST_F(Steps, ASupersededRunStopsBeforeTheNextStepAndUndoes) {
    std::vector<std::unique_ptr<Step>> steps;
    for (const char* n : {"a", "b", "c"}) steps.push_back(std::make_unique<Probe>(n, journal_));
    Deploy d = deploy([this] { return journal_.size() == 2; });
    const RunResult r = run_steps(d, steps);
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(r.superseded);
    EXPECT_EQ(r.step, "c");
    EXPECT_EQ(journal_, (std::vector<std::string>{"apply a", "apply b", "undo b", "undo a"}));
}

TEST(DeployKeyUrl, GithubHttpsBecomesSshOthersStay) {
    EXPECT_EQ(url_for_deploy_key("https://github.com/me/blog"), "ssh://git@github.com/me/blog.git");
    EXPECT_EQ(url_for_deploy_key("https://github.com/me/blog.git"), "ssh://git@github.com/me/blog.git");
    EXPECT_EQ(url_for_deploy_key("https://gitlab.com/me/blog.git"), "https://gitlab.com/me/blog.git");
    EXPECT_EQ(url_for_deploy_key("git@github.com:me/blog.git"), "git@github.com:me/blog.git");
    EXPECT_EQ(url_for_deploy_key("ssh://git@host:2222/r.git"), "ssh://git@host:2222/r.git");
}

TEST(Domains, SplitOnAnyWhitespace) {
    EXPECT_EQ(split_domains("a.example.com  b.example.com\tc.example.com\n"),
              (std::vector<std::string>{"a.example.com", "b.example.com", "c.example.com"}));
    EXPECT_TRUE(split_domains("").empty());
}

// A temporary data dir with the paths of site "blog" in it.
class Releases : public ::testing::Test {
protected:
    void SetUp() override {
        char templ[] = "/tmp/sitesfs-steps.XXXXXX";
        ASSERT_NE(mkdtemp(templ), nullptr);
        dir = templ;
        paths = SitePaths(dir, "blog");
    }
    void TearDown() override {
        std::error_code ec;
        if (!dir.empty()) stdfs::remove_all(dir, ec);
    }
    stdfs::path dir;
    SitePaths paths{"/nonexistent", "blog"};
};

TEST_F(Releases, PruneKeepsTheNewestAndCurrentAndDropsStagingLeftovers) {
    stdfs::create_directories(paths.releases);
    const auto now = stdfs::file_time_type::clock::now();
    // r0 is the oldest but current; r1..r4 from old to new.
    for (int i = 0; i < 5; ++i) {
        const stdfs::path r = paths.releases / ("r" + std::to_string(i));
        stdfs::create_directories(r);
        stdfs::last_write_time(r, now - std::chrono::hours(10 - i));
    }
    stdfs::create_directories(paths.releases / ".stage-r5" / "half");
    stdfs::create_directory_symlink("releases/r0", paths.current);
    prune_releases(paths, 3);
    std::set<std::string> left;
    for (const auto& e : stdfs::directory_iterator(paths.releases)) left.insert(e.path().filename());
    EXPECT_EQ(left, (std::set<std::string>{"r0", "r3", "r4"}));
}

// What a run killed between its syscalls leaves: a staged tree that never got its name, the new
// link that was never renamed over `current`, libgit2's locks (a stale one fails every later fetch
// with "failed to lock file") and half-written packs. The release, `current`, refs and packs stay.
TEST_F(Releases, InterruptedWorkIsRemovedAndNothingElse) {
    stdfs::create_directories(paths.release("r1") / "sub");
    stdfs::create_directories(paths.staging("r2") / "half");
    stdfs::create_directories(paths.releases / ".discard-r0" / "half");
    stdfs::create_directory_symlink("releases/r1", paths.current);
    stdfs::create_directory_symlink("releases/r2", paths.next_current);
    stdfs::create_directories(paths.repo / "refs" / "sitesfs");
    stdfs::create_directories(paths.repo / "objects" / "pack");
    const std::vector<std::string> kept{"repo.git/config", "repo.git/refs/sitesfs/followed",
                                        "repo.git/objects/pack/pack-1.pack", "repo.git/objects/pack/pack-1.idx"};
    const std::vector<std::string> stale{"repo.git/config.lock", "repo.git/packed-refs.lock",
                                         "repo.git/refs/sitesfs/followed.lock", "repo.git/objects/pack/pack_git2_3e93",
                                         "repo.git/objects/tmp_object_git2_a1b2"};
    for (const auto& f : kept) std::ofstream(paths.dir / f) << "x";
    for (const auto& f : stale) std::ofstream(paths.dir / f) << "x";
    const auto removed = remove_interrupted_work(paths);
    std::set<stdfs::path> want{paths.staging("r2"), paths.releases / ".discard-r0", paths.next_current};
    for (const auto& f : stale) want.insert(paths.dir / f);
    EXPECT_EQ(std::set<stdfs::path>(removed.begin(), removed.end()), want);
    std::set<std::string> left;
    for (const auto& e : stdfs::recursive_directory_iterator(paths.dir)) left.insert(e.path().lexically_relative(paths.dir));
    std::set<std::string> expected{"current", "releases", "releases/r1", "releases/r1/sub", "repo.git", "repo.git/refs",
                                   "repo.git/refs/sitesfs", "repo.git/objects", "repo.git/objects/pack"};
    expected.insert(kept.begin(), kept.end());
    EXPECT_EQ(left, expected);
    EXPECT_TRUE(remove_interrupted_work(paths).empty());
}

// Deletion renames first, so a kill never leaves part of a tree under a name a deploy would reuse.
TEST_F(Releases, DiscardAndSiteRemovalLeaveNothingUnderTheName) {
    stdfs::create_directories(paths.release("r1") / "sub");
    stdfs::create_directories(paths.releases / ".discard-r1" / "stale");  // an earlier discard, cut short
    discard_release(paths, "r1");
    EXPECT_TRUE(stdfs::is_empty(paths.releases));
    discard_release(paths, "r9");  // gone already: nothing to do

    std::ofstream(paths.marker) << dir.string() << "\n";
    EXPECT_TRUE(paths.marked_for(dir));
    EXPECT_FALSE(paths.marked_for(dir / "other"));
    EXPECT_FALSE(paths.marked_for(""));
    stdfs::create_directories(paths.tombstone / "stale");
    EXPECT_EQ(remove_site_dir(paths), "");
    EXPECT_TRUE(stdfs::is_empty(dir));
    EXPECT_NE(remove_site_dir(paths).find("rename " + paths.dir.string()), std::string::npos);
}

TEST(DeployLog, SiteLineNamesWhatTheReleaseLeftOut) {
    DeployLogEntry e{Timestamp{}, "blog", "deployed", std::string(40, 'a'), "", 12, ""};
    EXPECT_EQ(to_site_line(e).find("left out"), std::string::npos);
    e.notes = {"passwd: symbolic link, written as a plain file holding the link text", ".git: .git is never written"};
    const std::string two = to_site_line(e);
    EXPECT_NE(two.find(" in 12 ms; left out or changed: passwd: symbolic link, written as a plain file holding the link text; "
                       ".git: .git is never written"), std::string::npos) << two;
    for (int i = 0; i < 10; ++i) e.notes.push_back("m" + std::to_string(i) + ": submodule");
    const std::string many = to_site_line(e);
    EXPECT_NE(many.find("m2: submodule; and 7 more in the daemon's log"), std::string::npos) << many;
    EXPECT_EQ(many.find("m3:"), std::string::npos) << many;
    EXPECT_EQ(to_json_line(e).find("notes"), std::string::npos) << "the JSON line keeps the seed tool's keys";
}

// A step that fails because the newer change stopped it (a cancelled fetch or build) is not a
// failure to report: the newer generation runs and reports.
TEST_F(Steps, AStepStoppedByANewerChangeIsSupersededNotFailed) {
    bool newer = false;
    class Cancelled : public Step {
    public:
        explicit Cancelled(bool& newer) : newer_(newer) {}
        const char* name() const override { return "build"; }
        void apply(Deploy&) override {
            newer_ = true;
            throw StepError("cancelled");
        }

    private:
        bool& newer_;
    };
    std::vector<std::unique_ptr<Step>> steps;
    steps.push_back(std::make_unique<Probe>("fetch", journal_));
    steps.push_back(std::make_unique<Cancelled>(newer));
    Deploy d = deploy([&] { return newer; });
    const RunResult r = run_steps(d, steps);
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(r.superseded);
    EXPECT_EQ(journal_, (std::vector<std::string>{"apply fetch", "undo fetch"}));
}

TEST(ReleaseName, TheCommitAloneOrWithAHashOfWhatBuiltIt) {
    const std::string commit(40, 'a');
    SiteRecord site;
    BuildConfig build;
    build.builders["hugo"] = Builder{"hugo", {"hugo", "--minify", "--destination", "{out}"}, false, {}, {}};
    EXPECT_EQ(release_name(commit, site, build), commit);

    site.desired["build"] = FieldValue{"hugo", {}};
    const auto built = release_name(commit, site, build);
    ASSERT_TRUE(built);
    EXPECT_TRUE(built->starts_with(commit + "-")) << *built;
    EXPECT_EQ(built->size(), 40u + 1 + 12);
    // Limits change how a build may run, not what it makes.
    build.builders["hugo"].limits.time = std::chrono::minutes(1);
    EXPECT_EQ(release_name(commit, site, build), built);
    // What it runs, with what, and the tree it gets do.
    for (const auto& change : std::vector<std::function<void(Builder&)>>{
             [](Builder& b) { b.command.pop_back(); },
             [](Builder& b) { b.network = true; },
             [](Builder& b) { b.env.emplace_back("HUGO_ENV", "production"); }}) {
        BuildConfig other = build;
        change(other.builders["hugo"]);
        EXPECT_NE(release_name(commit, site, other), built);
    }
    site.desired["submodules"] = FieldValue{"recursive", {}};
    EXPECT_NE(release_name(commit, site, build), built);
    site.desired["build"] = FieldValue{};
    EXPECT_NE(release_name(commit, site, build), commit) << "submodules make another tree";

    site.desired["build"] = FieldValue{"jekyll", {}};
    EXPECT_EQ(release_name(commit, site, build), std::nullopt);
}

TEST(BuildSlots, AtMostJobsAtOnceAndAWaitEndsWhenCancelled) {
    BuildSlots slots(1);
    auto held = slots.acquire([] { return false; });
    ASSERT_TRUE(held);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(slots.acquire([&] { return std::chrono::steady_clock::now() - start > std::chrono::milliseconds(300); }));
    held.reset();
    EXPECT_TRUE(slots.acquire([] { return true; })) << "a free slot is taken even when asked to stop";
}

// The build's output is the untrusted code's: only directories and regular files are copied, as
// new files of the daemon, and the output dir itself must not be a link.
TEST_F(Releases, ABuildsOutputIsCopiedWithoutLinksOrDotGit) {
    const stdfs::path out = dir / "out", release = dir / "release";
    stdfs::create_directories(out / "docs");
    std::ofstream(out / "index.html") << "hi\n";
    std::ofstream(out / "docs" / "run.sh") << "#!/bin/sh\n";
    ASSERT_EQ(::chmod((out / "docs" / "run.sh").c_str(), 0700), 0);
    stdfs::create_symlink("/etc/passwd", out / "passwd");
    stdfs::create_directory_symlink("/etc", out / "docs" / "etc");
    stdfs::create_directories(out / ".Git");
    ASSERT_EQ(::mkfifo((out / "pipe").c_str(), 0644), 0);

    const TreeReport report = copy_build_output(out, release, {});
    EXPECT_EQ(report.files, 2u);
    EXPECT_EQ(report.bytes, 13u);
    std::set<std::string> skipped(report.skipped.begin(), report.skipped.end());
    EXPECT_EQ(skipped, (std::set<std::string>{".Git: .git is never written",
                                              "docs/etc: symbolic link left out (a release holds no links)",
                                              "passwd: symbolic link left out (a release holds no links)",
                                              "pipe: not a regular file or directory, left out"}));
    struct stat st{};
    ASSERT_EQ(::stat((release / "docs" / "run.sh").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    ASSERT_EQ(::stat((release / "index.html").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644u);
    EXPECT_FALSE(stdfs::exists(release / "passwd"));

    // A build that swapped its output dir for a link to the host's files gets nothing copied.
    const stdfs::path swapped = dir / "swapped";
    stdfs::create_directory_symlink("/etc", swapped);
    try {
        copy_build_output(swapped, dir / "release2", {});
        ADD_FAILURE() << "a linked output dir was copied";
    } catch (const ReleaseError& e) {
        EXPECT_STREQ(e.what(), "the build replaced its output dir with something else");
    }
    EXPECT_FALSE(stdfs::exists(dir / "release2"));

    TreeLimits small;
    small.max_bytes = 5;
    try {
        copy_build_output(out, dir / "release3", small);
        ADD_FAILURE() << "the byte cap was not applied";
    } catch (const ReleaseError& e) {
        EXPECT_NE(std::string(e.what()).find("more than 5 bytes"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace sitesfs::hooks
