// FlowPipeline: events become OCSF lines in the flow log (the same bytes as
// enrich + toOcsfLine) and FlowHub history, flushed when the ring buffer is
// drained, when a batch is full, or when it is old; every loss is counted.
#include "agent/flow_pipeline.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "flows/flow_fixture.hpp"
#include "flows/ocsf.hpp"

using namespace std::chrono_literals;

namespace ztseg::agent {
namespace {

namespace fs = std::filesystem;
namespace ft = flows::testing;

class FlowPipelineTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "ztseg-pipeline-XXXXXX").string();
        ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        policy_ = ft::compilePolicy();
        enricher_ =
            std::make_unique<flows::Enricher>(policy_, "node-1", flows::WorkloadNames{{42, "db"}});
        sink_ = std::make_unique<flows::JsonlSink>(flows::JsonlSink::Options{path()});
    }
    void TearDown() override {
        sink_.reset();
        fs::remove_all(dir_);
    }
    std::string path() const { return (dir_ / "flows.jsonl").string(); }

    ztseg_flow_event event(uint16_t sport) const {
        ztseg_flow_event ev = ft::makeEvent("10.0.0.1", sport, "10.0.0.3", 5432, ZTSEG_PROTO_TCP,
                                            ZTSEG_VERDICT_ALLOWED, ZTSEG_REASON_ALLOW_POLICY);
        ev.src_identity = ft::workloadId(policy_, "web");
        ev.dst_identity = ft::workloadId(policy_, "db");
        ev.rule_id = ft::ruleOf(policy_, "db");
        ev.cgroup_id = 42;
        return ev;
    }
    std::vector<std::string> lines() const {
        std::ifstream in(path());
        std::vector<std::string> out;
        for (std::string l; std::getline(in, l);) {
            out.push_back(l);
        }
        return out;
    }

    fs::path dir_;
    policy::CompiledPolicy policy_;
    std::unique_ptr<flows::Enricher> enricher_;
    std::unique_ptr<flows::JsonlSink> sink_;
    FlowHub hub_{16, 8};
};

TEST_F(FlowPipelineTest, DrainedBatchReachesFileAndHubAsEnrichWouldWriteIt) {
    const EventClock clock_before;
    FlowPipeline pipe(*enricher_, *sink_, hub_);
    for (uint16_t port = 1; port <= 20; ++port) {
        pipe.onEvent(event(port));
    }
    EXPECT_TRUE(lines().empty()) << "a batch waits for the ring buffer to drain";
    EXPECT_EQ(sink_->written(), 0u);
    pipe.onDrained();

    auto got = lines();
    ASSERT_EQ(got.size(), 20u);
    EXPECT_EQ(sink_->written(), 20u);
    EXPECT_EQ(sink_->lost(), 0u);
    auto recent = hub_.recent();
    ASSERT_EQ(recent.size(), 8u);
    std::vector<flows::FlowRecord> records;
    for (size_t i = 0; i < got.size(); ++i) {
        records.push_back(enricher_->enrich(event(uint16_t(i + 1))));
    }
    // Same bytes as the record path, except "time": the two paths read the
    // wall clock at different moments, so they may differ by rounding, plus
    // however far the wall clock moved against the monotonic one meanwhile
    // (NTP steps on a fresh VM), plus each clock's measurement error (large
    // when clock reads are slowed down, as under TSan): bounded here by the
    // worst error of clocks made in this process.
    const EventClock clock_after;
    int64_t error_ns = std::max(clock_before.errorBoundNs(), clock_after.errorBoundNs());
    for (int i = 0; i < 3; ++i) {
        error_ns = std::max(error_ns, EventClock().errorBoundNs());
    }
    const int64_t clock_moved_ms =
        std::abs(clock_after.wallNanos(0) - clock_before.wallNanos(0)) / 1'000'000;
    const int64_t slack_ms = 1 + clock_moved_ms + (2 * error_ns + 999'999) / 1'000'000;
    for (size_t i = 0; i < got.size(); ++i) {
        auto j = nlohmann::json::parse(got[i]);
        auto want = flows::toOcsf(records[i]);
        EXPECT_LE(std::abs(j["time"].get<int64_t>() - want["time"].get<int64_t>()), slack_ms);
        j.erase("time");
        want.erase("time");
        EXPECT_EQ(j, want);
    }
    EXPECT_EQ(recent.front().src.port, 13);
    EXPECT_EQ(recent.back().src.port, 20);
    EXPECT_EQ(recent.back().workload, "db");
}

TEST_F(FlowPipelineTest, FullBatchIsWrittenWithoutWaitingForTheDrain) {
    FlowPipeline pipe(*enricher_, *sink_, hub_, {.batch_bytes = 4096});
    for (uint16_t port = 1; port <= 10; ++port) {
        pipe.onEvent(event(port));
    }
    EXPECT_GE(lines().size(), 2u) << "~1.4 KB per line: a 4 KiB batch holds at most 3";
    EXPECT_LT(lines().size(), 10u);
    pipe.onDrained();
    EXPECT_EQ(lines().size(), 10u);
}

TEST_F(FlowPipelineTest, OldBatchIsWrittenWithoutWaitingForTheDrain) {
    FlowPipeline pipe(*enricher_, *sink_, hub_, {.max_delay = 1ms});
    pipe.onEvent(event(1));
    std::this_thread::sleep_for(5ms);
    for (uint16_t port = 2; port <= 65; ++port) {  // the age is checked every 64 events
        pipe.onEvent(event(port));
    }
    EXPECT_EQ(lines().size(), 65u);
}

TEST_F(FlowPipelineTest, PolicyChangeAppliesFromTheNextBatch) {
    FlowPipeline pipe(*enricher_, *sink_, hub_);
    pipe.onEvent(event(1));
    pipe.onDrained();
    enricher_->setWorkloadNames({{42, "db-canary"}});
    pipe.onEvent(event(2));
    pipe.onDrained();
    auto got = lines();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(nlohmann::json::parse(got[0])["unmapped"]["ztseg"]["workload"], "db");
    EXPECT_EQ(nlohmann::json::parse(got[1])["unmapped"]["ztseg"]["workload"], "db-canary");
}

TEST_F(FlowPipelineTest, UnwritableLogCountsEveryEventLostAndKeepsTheHubFed) {
    sink_->setPath((dir_ / "missing" / "flows.jsonl").string());
    {
        FlowPipeline pipe(*enricher_, *sink_, hub_);
        for (uint16_t port = 1; port <= 5; ++port) {
            pipe.onEvent(event(port));
        }
    }  // destruction flushes
    EXPECT_EQ(sink_->written(), 0u);
    EXPECT_EQ(sink_->lost(), 5u);
    EXPECT_EQ(hub_.recent().size(), 5u);
}

}  // namespace
}  // namespace ztseg::agent
