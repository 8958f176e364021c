// [notify] command end to end: the operator's script is told of each deploy outcome once the
// site's status shows it, with the outcome in its environment; a command that hangs or fails is
// killed or logged, and the deploys go on as they would without it.
#include <map>

#include "common/text.hpp"
#include "store/file_store.hpp"
#include "tests/integration/deploy_fixture.hpp"

namespace sitesfs::it {
namespace {

class Notify : public DeployTest {
protected:
    // Appends one line per outcome: its environment, and the site's status as the script read it
    // (newlines as '|'). Then hangs when TMP/hang exists, or fails when TMP/fail does.
    void before_start() override {
        spit(script(), "set -u\n"
                       "status=$(tr '\\n' '|' < \"" + mnt().string() + "/$SITE/status\")\n"
                       "printf 'SITE=%s\\tSTATE=%s\\tCOMMIT=%s\\tPREVIOUS=%s\\tERROR=%s\\tHOST=%s\\tSTATUS=%s\\n' "
                       "\"$SITE\" \"$STATE\" \"$COMMIT\" \"$PREVIOUS\" \"$ERROR\" \"$HOST\" \"$status\" >> \"" +
                           lines_file().string() + "\"\n"
                       "if [ -e \"" + (tmp() / "hang").string() + "\" ]; then echo $$ > \"" +
                           (tmp() / "hung").string() + "\"; exec sleep 60; fi\n"
                       "if [ -e \"" + (tmp() / "fail").string() + "\" ]; then echo 'the pager is down'; exit 4; fi\n");
    }
    std::string extra_config() const override {
        return "[notify]\ncommand = [\"/bin/sh\", \"" + script().string() + "\"]\ntimeout = 1\n";
    }

    stdfs::path script() const { return tmp() / "notify.sh"; }
    stdfs::path lines_file() const { return tmp() / "notified"; }

    // The notifications so far, each as its NAME=VALUE fields.
    std::vector<std::map<std::string, std::string>> notified() const {
        std::vector<std::map<std::string, std::string>> out;
        for (const std::string& line : split_lines(slurp(lines_file()))) {
            std::map<std::string, std::string> fields;
            for (const std::string_view f : split(line, '\t')) {
                const size_t eq = f.find('=');
                fields[std::string(f.substr(0, eq))] = std::string(f.substr(eq + 1));
            }
            out.push_back(fields);
        }
        return out;
    }

    double metric(const std::string& series) const {
        const std::string m = read(".metrics");
        const size_t at = m.find("\n" + series + " ");
        return at == std::string::npos ? -1.0 : std::stod(m.substr(at + series.size() + 2));
    }

    const std::string host_ = ascii_lower(local_host_name());
};

TEST_F(Notify, ALiveAndAFailedDeployAreEachToldOnceTheStatusShowsThem) {
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n") << daemon_log();
    ASSERT_TRUE(eventually([&] { return notified().size() == 1; }, 10s)) << daemon_log();
    auto n = notified();
    EXPECT_EQ(n[0]["SITE"], "blog");
    EXPECT_EQ(n[0]["STATE"], "live");
    EXPECT_EQ(n[0]["COMMIT"], v1);
    EXPECT_EQ(n[0]["PREVIOUS"], "");
    EXPECT_EQ(n[0]["ERROR"], "");
    EXPECT_EQ(ascii_lower(n[0]["HOST"]), host_);
    EXPECT_NE(n[0]["STATUS"].find("state: live|"), std::string::npos) << n[0]["STATUS"];
    EXPECT_NE(n[0]["STATUS"].find("commit: " + v1 + "|"), std::string::npos) << n[0]["STATUS"];

    // The reload fails: the deploy of v2 is undone, v1 still served, and that is told too.
    ASSERT_NO_FATAL_FAILURE(start_systemd("fail"));
    const std::string v2 = repo_->commit({{"index.html", "v2\n"}});
    ASSERT_TRUE(eventually([&] { return notified().size() >= 2; }, 30s, 100ms)) << daemon_log();
    n = notified();
    EXPECT_EQ(n[1]["SITE"], "blog");
    EXPECT_EQ(n[1]["STATE"], "failed");
    EXPECT_EQ(n[1]["COMMIT"], v2);
    EXPECT_EQ(n[1]["PREVIOUS"], v1);
    EXPECT_TRUE(n[1]["ERROR"].starts_with("reload: ")) << n[1]["ERROR"];
    EXPECT_EQ(ascii_lower(n[1]["HOST"]), host_);
    EXPECT_NE(n[1]["STATUS"].find("state: failed|"), std::string::npos) << n[1]["STATUS"];
    EXPECT_NE(n[1]["STATUS"].find("|error: " + n[1]["ERROR"]), std::string::npos) << n[1]["STATUS"];
    EXPECT_EQ(body("blog.test"), "v1\n");
    EXPECT_EQ(metric("sitesfs_notifications_total{result=\"failed\"}"), 0) << read(".metrics");
}

TEST_F(Notify, AHangingCommandIsKilledAtItsTimeoutAndTheNextDeployIsTold) {
    spit(tmp() / "hang", "");
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n") << daemon_log();
    ASSERT_TRUE(eventually([&] { return !slurp(tmp() / "hung").empty(); }, 10s)) << daemon_log();
    const pid_t hung = std::stoi(slurp(tmp() / "hung"));
    // timeout = 1: killed within a few seconds, and counted.
    EXPECT_TRUE(eventually([&] { return !process_alive(hung); }, 5s, 50ms)) << "the command outlived its timeout";
    EXPECT_TRUE(eventually([&] { return metric("sitesfs_notifications_total{result=\"failed\"}") == 1; }, 5s))
        << read(".metrics");
    EXPECT_NE(daemon_log().find("timed out"), std::string::npos) << daemon_log();

    stdfs::remove(tmp() / "hang");
    const std::string v2 = repo_->commit({{"index.html", "v2\n"}});
    ASSERT_TRUE(eventually([&] { return notified().size() == 2; }, 30s, 100ms)) << daemon_log();
    auto n = notified();
    EXPECT_EQ(n[1]["STATE"], "live");
    EXPECT_EQ(n[1]["COMMIT"], v2);
    EXPECT_EQ(n[1]["PREVIOUS"], v1);
    EXPECT_EQ(body("blog.test"), "v2\n");
    EXPECT_TRUE(eventually([&] { return metric("sitesfs_notifications_total{result=\"sent\"}") == 1; }, 5s))
        << read(".metrics");
}

TEST_F(Notify, AFailingCommandIsLoggedAndChangesNothingOfTheSite) {
    spit(tmp() / "fail", "");
    const std::string v1 = repo_->commit({{"index.html", "v1\n"}});
    ASSERT_EQ(create_site("blog", "blog.test"), "live " + v1 + "\n") << daemon_log();
    ASSERT_TRUE(eventually([&] { return metric("sitesfs_notifications_total{result=\"failed\"}") == 1; }, 10s))
        << read(".metrics");
    // What a person needs to act on: the site, the command, how it ended, and what it said.
    EXPECT_NE(daemon_log().find("exit 4: the pager is down"), std::string::npos) << daemon_log();
    EXPECT_EQ(status_line("blog", "state"), "live");
    EXPECT_EQ(status_line("blog", "error"), "");
    EXPECT_EQ(read("blog/commit"), v1 + "\n");
    EXPECT_EQ(body("blog.test"), "v1\n");
    EXPECT_EQ(deploy_log_lines("blog"), 1) << "no run again because of the notification";
}

}  // namespace
}  // namespace sitesfs::it
