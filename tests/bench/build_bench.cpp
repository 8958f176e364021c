// B1: what building a site through sitesfs costs (the commit's tree written out, handed to the
// build user, Hugo run in bubblewrap, its output copied into a release: the build and stage steps'
// own functions) against the same `hugo` command run directly on a checkout of the same tree.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "hooks/build.hpp"
#include "hooks/git_repo.hpp"
#include "tests/bench/bench.hpp"

namespace sitesfs::bench {

namespace {

constexpr uid_t kNobody = 65534;

// A Hugo site of `pages` posts, each a few paragraphs, with list and single templates: what a
// small blog holds.
void write_hugo_site(const stdfs::path& tree, int pages) {
    const auto put = [&](const stdfs::path& rel, const std::string& text) {
        stdfs::create_directories((tree / rel).parent_path());
        std::FILE* f = std::fopen((tree / rel).c_str(), "w");
        if (!f || std::fputs(text.c_str(), f) < 0 || std::fclose(f) != 0) throw std::runtime_error("cannot write " + rel.string());
    };
    put("config.toml", "baseURL = 'https://blog.bench.test/'\ntitle = 'Bench'\ndisableKinds = ['taxonomy', 'term']\n");
    put("layouts/index.html", "<h1>{{ .Site.Title }}</h1><ul>{{ range .Site.RegularPages }}<li><a href=\"{{ .RelPermalink }}\">"
                              "{{ .Title }}</a></li>{{ end }}</ul>\n");
    put("layouts/_default/list.html", "<h1>{{ .Title }}</h1>{{ range .Pages }}<p>{{ .Title }}</p>{{ end }}\n");
    put("layouts/_default/single.html", "<article><h1>{{ .Title }}</h1>{{ .Content }}</article>\n");
    const std::string paragraph = "Static sites are generated. *This* paragraph stands for the words of a post, "
                                  "with a [link](https://example.com/) and `code`.\n\n";
    for (int i = 0; i < pages; ++i) {
        std::string body = "---\ntitle: Post " + std::to_string(i) + "\ndate: 2026-01-01\n---\n";
        for (int p = 0; p < 5; ++p) body += paragraph;
        put("content/posts/post-" + std::to_string(i) + ".md", body);
    }
}

// `tmpfs`: the scratch dir on a tmpfs, as with [build] dir on one; else under releases/, the default.
void b1(const Options& options, Report& report, int pages, bool tmpfs, const std::string& id) {
    TempDir dir(options, "build");
    // The build user walks down to its scratch dir.
    if (::chmod(dir.path().c_str(), 0755) != 0) throw std::runtime_error("chmod " + dir.path().string());
    const stdfs::path tree = dir.path() / "tree", releases = dir.path() / "releases", builds = dir.path() / "builds";
    stdfs::create_directories(builds);
    if (tmpfs && ::mount("tmpfs", builds.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=2g,mode=0755") != 0)
        throw std::runtime_error("mounting a tmpfs on " + builds.string() + ": " + std::strerror(errno));
    const stdfs::path scratch = tmpfs ? builds / "blog" : releases / ".build-release";
    write_hugo_site(tree, pages);
    for (const auto& args : std::vector<std::vector<std::string>>{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-qm", "site"}}) {
        std::vector<std::string> argv{"git", "-C", tree.string(), "-c", "user.name=bench", "-c", "user.email=bench@test"};
        argv.insert(argv.end(), args.begin(), args.end());
        must_run(argv);
    }
    stdfs::create_directories(releases);

    hooks::GitRepo repo(dir.path() / "repo.git");
    hooks::RemoteOptions remote;
    remote.policy.allow_local_repos = true;
    const std::string sha = repo.fetch_branch("file://" + tree.string(), "main", remote);

    const hooks::Builder hugo{"hugo", {"hugo", "--minify", "--destination", "{out}"}, false, {}, {}};
    hooks::BuildConfig build;
    build.uid = kNobody;
    build.gid = kNobody;
    const hooks::TreeLimits limits;

    // Through sitesfs: the build step's and the stage step's work, as a deploy does it.
    const auto through = [&] {
        const stdfs::path release = releases / "release";
        const auto start = std::chrono::steady_clock::now();
        Seconds took = 0;
        {
            const hooks::BuildDir work(scratch, *build.uid, build.gid);
            repo.write_tree(sha, work.src(), limits);
            work.hand_over();
            const hooks::SandboxResult r = hooks::run_build(hugo, build, work, [] { return false; });
            if (!r.ok()) throw std::runtime_error("B1: the sandboxed build failed: " + r.summary() + "\n" + r.output);
            hooks::copy_build_output(work.out(), release, limits);
            // A deploy removes the scratch dir once its outcome is recorded: not before the site is live.
            took = seconds_since(start);
        }
        stdfs::remove_all(release);
        return took;
    };
    // Directly: the same command on the checkout, as root, its caches in a dir of its own (Hugo's
    // default, /tmp/hugo_cache, may be another user's).
    const stdfs::path out = dir.path() / "direct-out", home = dir.path() / "home";
    stdfs::create_directories(home);
    const auto direct = [&] {
        const Seconds took = time_it([&] {
            must_run({"hugo", "--minify", "--source", tree.string(), "--destination", out.string()},
                     {"HOME=" + home.string(), "TMPDIR=" + home.string()});
        });
        stdfs::remove_all(out);
        return took;
    };
    through();  // untimed: the page cache holds Hugo and the tree for both sides alike
    direct();
    const auto [ours, base] = alternate(options.runs, through, direct);
    const double ratio = ours.median() / base.median();
    report.add({id, "a Hugo site of " + std::to_string(pages) + (pages == 1 ? " page" : " pages") +
                        " built through sitesfs (tree written, sandboxed build, output copied" +
                        (tmpfs ? ", scratch dir on a tmpfs" : "") + ") against hugo run directly",
                format_seconds(ours.median()), format_seconds(base.median()), ratio, "<= 1.2", ratio <= 1.2, ""});
}

}  // namespace

void run_build_benchmarks(const Options& options, Report& report) {
    for (const char* tool : {"/usr/bin/hugo", "/usr/bin/bwrap"})
        if (::access(tool, X_OK) != 0) throw std::runtime_error(std::string("B1 needs ") + tool + " (scripts/install-deps)");
    hooks::init_git();  // no other section uses libgit2, and no thread of this process runs yet
    const int pages = options.smoke ? 20 : options.build_pages;
    b1(options, report, 1, false, "B1 page");
    b1(options, report, pages, false, "B1 blog");
    b1(options, report, pages, true, "B1 blog tmpfs");
}

}  // namespace sitesfs::bench
