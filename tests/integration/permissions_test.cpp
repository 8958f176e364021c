// What a deploy leaves on disk, and who may read it: nothing in the state dir is open to every
// user, and the releases Caddy serves stay readable by Caddy's own user. The decisions per file
// are in docs/reliability.md (## Permissions).
#include <sys/stat.h>

#include <iostream>
#include <map>
#include <string>

#include "tests/integration/deploy_fixture.hpp"

namespace sitesfs::it {
namespace {

using Permissions = DeployTest;

// Every entry below `dir` (not following links) with its permission bits and type.
std::map<std::string, std::string> modes_below(const stdfs::path& dir) {
    std::map<std::string, std::string> out;
    auto add = [&](const stdfs::path& p, const std::string& rel) {
        struct stat st;
        if (::lstat(p.c_str(), &st) != 0) return;
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        out[rel] = std::string(S_ISDIR(st.st_mode) ? "dir " : S_ISLNK(st.st_mode) ? "link " : "file ") + mode;
    };
    add(dir, ".");
    std::error_code ec;
    for (auto it = stdfs::recursive_directory_iterator(dir, ec); !ec && it != stdfs::recursive_directory_iterator();
         it.increment(ec))
        add(it->path(), it->path().lexically_relative(dir).string());
    return out;
}

std::string listing(const std::map<std::string, std::string>& modes) {
    std::string s;
    for (const auto& [path, mode] : modes) s += "  " + mode + " " + path + "\n";
    return s;
}

TEST_F(Permissions, NothingInTheStateDirIsOpenToOtherUsersAndReleasesAreReadableByAll) {
    const std::string sha = repo_->commit({{"index.html", "hello\n"}, {"css/site.css", "body{}\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + sha + "\n") << daemon_log();
    const auto state_modes = modes_below(state());
    const auto data_modes = modes_below(data());
    std::cout << "state dir:\n" << listing(state_modes) << "data dir:\n" << listing(data_modes);

    // The state dir: the fixture made it 0755 (umask 022), as an operator might; sitesfs closes it.
    EXPECT_EQ(state_modes, (std::map<std::string, std::string>{{".", "dir 0750"},
                                                               {"deploy.log", "file 0640"},
                                                               {"sites", "dir 0700"},
                                                               {"sites/blog.toml", "file 0640"}}));
    EXPECT_NE(daemon_log().find("was open to every user (mode 0755); it is 0750 now"), std::string::npos) << daemon_log();

    // The data dir: releases for Caddy's user, the git history for sitesfs alone.
    const std::string release = "blog/releases/" + sha;
    for (const auto& dir : {std::string("."), std::string("blog"), std::string("blog/releases"), release, release + "/css"})
        EXPECT_EQ(data_modes.at(dir), "dir 0755") << dir;
    for (const auto& file : {release + "/index.html", release + "/css/site.css", std::string("blog/.sitesfs-site")})
        EXPECT_EQ(data_modes.at(file), "file 0644") << file;
    EXPECT_EQ(data_modes.at("blog/current"), "link 0777");
    EXPECT_EQ(data_modes.at("blog/repo.git"), "dir 0700");
    EXPECT_EQ(modes_below(tmp() / "sitesfs.prom").at("."), "file 0644") << "node_exporter's user reads the metrics textfile";

    // As another user (Caddy's, in production): the release reads, nothing of sitesfs' own does.
    if (run({"runuser", "-u", "nobody", "--", "true"}).code != 0) {
        std::cout << "runuser -u nobody does not work here: the modes above are checked, not read as another user\n";
        return;
    }
    stdfs::permissions(tmp(), stdfs::perms::others_exec, stdfs::perm_options::add);  // mkdtemp's 0700
    auto as_nobody = [&](const std::string& script, const Expect& e) {
        const std::string cmd = "runuser -u nobody -- sh -c '" + script + "'";
        return check(cmd, sh_in(tmp(), cmd), e);
    };
    EXPECT_TRUE(as_nobody("cat data/blog/current/index.html data/blog/current/css/site.css", {.out = "hello\nbody{}\n"}));
    const std::string denied = "Permission denied";
    EXPECT_TRUE(as_nobody("cat state/sites/blog.toml", {.code = kNonZero, .err_has = denied}));
    EXPECT_TRUE(as_nobody("ls state", {.code = kNonZero, .err_has = denied}));
    EXPECT_TRUE(as_nobody("cat state/deploy.log", {.code = kNonZero, .err_has = denied}));
    EXPECT_TRUE(as_nobody("ls data/blog/repo.git", {.code = kNonZero, .err_has = denied}));
}

}  // namespace
}  // namespace sitesfs::it
