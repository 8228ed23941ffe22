// /healthz, ztseg_build_info and the journald log format.
#include "agent/health.hpp"

#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "agent/metrics.hpp"
#include "common/httplib_quiet.hpp"
#include "common/logging.hpp"
#include "common/version.hpp"

namespace ztseg::agent {
namespace {

TEST(Version, LineNamesProgramVersionAndCommit) {
    EXPECT_STREQ(buildVersion(), "0.1.0");
    EXPECT_FALSE(std::string(buildCommit()).empty());
    EXPECT_TRUE(std::regex_match(
        versionLine("ztsegd"),
        std::regex(R"(ztsegd 0\.1\.0 \(commit ([0-9a-f]{12}(-dirty)?|unknown)\))")))
        << versionLine("ztsegd");
}

TEST(BuildInfo, MetricCarriesVersionAndCommit) {
    const std::string text = renderPrometheus(MetricsSnapshot{});
    const std::string line = std::string("ztseg_build_info{version=\"") + buildVersion() +
                             "\",commit=\"" + buildCommit() + "\"} 1\n";
    EXPECT_NE(text.find("# TYPE ztseg_build_info gauge\n"), std::string::npos);
    EXPECT_NE(text.find(line), std::string::npos) << text;
}

TEST(Health, ReadyIs200DegradedAndStartingAre503WithReasons) {
    Health h;
    EXPECT_EQ(healthHttpStatus(h), 503);
    EXPECT_EQ(nlohmann::json::parse(healthJson(h))["status"], "starting");
    h.state = Health::State::Ready;
    h.generation = 7;
    EXPECT_EQ(healthHttpStatus(h), 200);
    auto ready = nlohmann::json::parse(healthJson(h));
    EXPECT_EQ(ready["status"], "ready");
    EXPECT_EQ(ready["generation"], 7);
    EXPECT_EQ(ready["version"], buildVersion());
    EXPECT_TRUE(ready["reasons"].empty());
    h.state = Health::State::Degraded;
    h.reasons = {"no policy applied"};
    EXPECT_EQ(healthHttpStatus(h), 503);
    auto degraded = nlohmann::json::parse(healthJson(h));
    EXPECT_EQ(degraded["status"], "degraded");
    EXPECT_EQ(degraded["reasons"][0], "no policy applied");
}

TEST(Health, ServedOnTheMetricsListenerAndMetricsWaitForReady) {
    bool ready = false;
    MetricsServer srv(
        "127.0.0.1", 0,
        [&]() -> MetricsSnapshot {
            if (!ready) {
                throw MetricsServer::NotReady("starting");
            }
            return MetricsSnapshot{};
        },
        [&] {
            Health h;
            if (ready) {
                h.state = Health::State::Degraded;
                h.reasons = {"controller lab:1 not connected"};
            }
            return h;
        });
    httplib::Client cli("127.0.0.1", srv.port());
    auto starting = cli.Get("/healthz");
    ASSERT_TRUE(starting);
    EXPECT_EQ(starting->status, 503);
    EXPECT_EQ(nlohmann::json::parse(starting->body)["status"], "starting");
    auto early = cli.Get("/metrics");
    ASSERT_TRUE(early);
    EXPECT_EQ(early->status, 503);

    ready = true;
    auto degraded = cli.Get("/healthz");
    ASSERT_TRUE(degraded);
    EXPECT_EQ(degraded->status, 503);
    EXPECT_EQ(degraded->get_header_value("Content-Type"), "application/json");
    EXPECT_EQ(nlohmann::json::parse(degraded->body)["reasons"][0],
              "controller lab:1 not connected");
    auto metrics = cli.Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_EQ(metrics->status, 200);
}

// JOURNAL_STREAM is believed only for the file it names (the daemon test
// checks the log lines ztsegd then writes).
TEST(Logging, JournalStreamMatchesOnlyTheFileItNames) {
    char path[] = "/tmp/ztseg-journal-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    struct stat st {};
    ASSERT_EQ(::fstat(fd, &st), 0);
    const std::string ident =
        std::to_string(uint64_t(st.st_dev)) + ":" + std::to_string(uint64_t(st.st_ino));
    ::setenv("JOURNAL_STREAM", ident.c_str(), 1);
    EXPECT_TRUE(isJournalStream(fd));
    ::setenv("JOURNAL_STREAM", "1:2", 1);
    EXPECT_FALSE(isJournalStream(fd));
    ::unsetenv("JOURNAL_STREAM");
    EXPECT_FALSE(isJournalStream(fd));
    ::close(fd);
    ::unlink(path);
}

}  // namespace
}  // namespace ztseg::agent
