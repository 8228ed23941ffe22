// Issue 15, end to end: a flood of distinct SYNs from one unlabeled source,
// judged by the real datapath, through FlowPipeline into a small rotating
// flow log. With the per-source budget the earlier denied record of another
// source stays in the log; without it the flood rotates it away, and the
// sink counts exactly the records rotated away before any stream got them.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/flow_pipeline.hpp"
#include "bpf/scenario.hpp"

namespace ztseg::test {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kTenSeconds = 10'000'000'000;
constexpr int kSyns = 5000;

class FloodPipeline : public DatapathTest {
  protected:
    void SetUp() override {
        DatapathTest::SetUp();
        addIdentity("10.1.0.10/32", kWeb);
        addIdentity("10.1.0.20/32", kDb);
        gen().modes[kDb] = WorkloadMode::Enforce;
        applyGen();
        std::string tmpl = (fs::temp_directory_path() / "ztseg-flood-XXXXXX").string();
        ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        sink_ = std::make_unique<flows::JsonlSink>(
            flows::JsonlSink::Options{.path = path(), .max_bytes = 64 << 10, .max_files = 1});
    }
    void TearDown() override {
        sink_.reset();
        fs::remove_all(dir_);
        DatapathTest::TearDown();
    }
    std::string path() const { return (dir_ / "flows.jsonl").string(); }

    // web's denied attempt, then the flood, then one more SYN after the
    // window: every event through the pipeline.
    void attackAndLog() {
        dp().setDropEventInterval(kTenSeconds);
        runXdp(PacketBuilder::ipv4("10.1.0.10", "10.1.0.20").tcp(40000, 22).build());
        for (int i = 0; i < kSyns; ++i) {
            runXdp(PacketBuilder::ipv4("10.231.1.3", "10.1.0.20")
                       .tcp(uint16_t(10000 + i), uint16_t(1000 + i % 312))
                       .build());
        }
        dp().setDropEventInterval(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        runXdp(PacketBuilder::ipv4("10.231.1.3", "10.1.0.20").tcp(9000, 80).build());
        agent::FlowPipeline pipe(enricher_, *sink_, hub_);
        events_ = takeEvents();
        for (const auto& ev : events_) {
            pipe.onEvent(ev);
        }
        pipe.flush();
    }
    // Every line of the flow log, oldest file first.
    std::vector<nlohmann::json> logged() const {
        std::vector<nlohmann::json> out;
        for (const std::string& p : {path() + ".1", path()}) {
            std::ifstream in(p);
            for (std::string l; std::getline(in, l);) {
                out.push_back(nlohmann::json::parse(l));
            }
        }
        return out;
    }
    static bool isWebsDeniedAttempt(const nlohmann::json& j) {
        return j["src_endpoint"].value("ip", "") == "10.1.0.10" &&
               j["src_endpoint"].value("port", 0) == 40000;
    }

    fs::path dir_;
    flows::Enricher enricher_{std::make_shared<const policy::CompiledPolicy>(), "node-1"};
    FlowHub hub_;
    std::unique_ptr<flows::JsonlSink> sink_;
    std::vector<ztseg_flow_event> events_;
};

TEST_F(FloodPipeline, FloodCannotRotateAwayAnEarlierDeniedRecord) {
    dp().setDropEventSourceBudget(16);
    attackAndLog();
    auto lines = logged();
    EXPECT_EQ(lines.size(), events_.size());
    EXPECT_EQ(events_.size(), 1u + 16 + 1 + 1);  // web, budget, summary, next window
    EXPECT_EQ(std::count_if(lines.begin(), lines.end(), isWebsDeniedAttempt), 1);
    auto summary = std::find_if(lines.begin(), lines.end(), [](const nlohmann::json& j) {
        return j["unmapped"]["ztseg"].contains("summary");
    });
    ASSERT_NE(summary, lines.end());
    EXPECT_EQ((*summary)["count"], kSyns - 16);
    EXPECT_EQ((*summary)["src_endpoint"]["ip"], "10.231.1.3");
    EXPECT_EQ(sink_->rotatedUndelivered(), 0u);
    RecordProperty("log_lines", int(lines.size()));
    RecordProperty("summary_ports",
                   (*summary)["unmapped"]["ztseg"]["summary"].value("distinct_dst_ports", 0));
}

TEST_F(FloodPipeline, WithoutBudgetTheFloodRotatesItAwayCounted) {
    attackAndLog();  // budget 0: every distinct SYN is an event
    auto lines = logged();
    EXPECT_EQ(events_.size(), size_t(kSyns) + 2);
    EXPECT_EQ(std::count_if(lines.begin(), lines.end(), isWebsDeniedAttempt), 0);
    EXPECT_EQ(sink_->written(), events_.size());
    EXPECT_EQ(sink_->rotatedUndelivered(), sink_->written() - lines.size())
        << "exactly the lines rotated away, none delivered";
    RecordProperty("lines_written", int(sink_->written()));
    RecordProperty("lines_kept", int(lines.size()));
    RecordProperty("rotated_undelivered", int(sink_->rotatedUndelivered()));
}

TEST_F(FloodPipeline, RotatedAwayAfterAStreamGotThemIsNotCounted) {
    auto stream = hub_.subscribe(false);
    attackAndLog();
    EXPECT_LT(logged().size(), events_.size());  // rotated
    EXPECT_EQ(sink_->rotatedUndelivered(), 0u);
    hub_.unsubscribe(stream);
}

}  // namespace
}  // namespace ztseg::test
