// ztsegd end to end on the shipped three-tier example (policies/three-tier.yaml):
// three workloads (web, api, db) and an unlabeled intruder on the demo's
// namespace lab, the real daemon enforcing the compiled bundle. Allowed and
// denied traffic as the policy says; the flow events in the OCSF flow file and
// on the gRPC Flows stream; a daemon restart in the middle of continuous
// traffic with no allowed connection failing and no denied one passing; and a
// /metrics scrape.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "agent.grpc.pb.h"
#include "integration/demo_lab.hpp"
#include "integration/test_pki.hpp"
#include "integration/ztseg_process.hpp"
#include "policy/bundle.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace ztseg::test {
namespace {

class ThreeTier : public ::testing::Test {
  protected:
    void SetUp() override {
        lab_ = std::make_unique<DemoLab>();
        work_ = fs::temp_directory_path() / lab_->tag();
        fs::create_directories(work_ / "policy");
        // The example as shipped; db's cgroup moves below the lab's cgroup.
        fs::path src = fs::path(ZTSEG_SOURCE_DIR) / "policies";
        std::ofstream(work_ / "policy" / "three-tier.yaml") << std::regex_replace(
            slurp(src / "three-tier.yaml"), std::regex("cgroup: system\\.slice/"),
            "cgroup: " + lab_->tag() + "/system.slice/");
        fs::copy_file(src / "fleet.yaml", work_ / "policy" / "fleet.yaml");
        policy::Diagnostics diags;
        auto cp =
            policy::compile(policy::loadPolicies({(work_ / "policy").string()}, diags), 1, diags);
        std::ofstream(work_ / "bundle.pb", std::ios::binary) << policy::serializeBundle(cp);

        socket_ = (work_ / "ztsegd.sock").string();
        std::string ifaces;
        for (const auto& i : lab_->hostInterfaces()) {
            ifaces += (ifaces.empty() ? "" : ", ") + i;
        }
        std::ofstream(work_ / "ztsegd.yaml") << "host_name: three-tier-host\n"
                                             << "state_dir: " << (work_ / "state").string() << "\n"
                                             << "pin_dir: /sys/fs/bpf/" << lab_->tag() << "\n"
                                             << "cgroup_root: " << lab_->cgroupRoot() << "\n"
                                             << "interfaces: [" << ifaces << "]\n"
                                             << "bundle: " << (work_ / "bundle.pb").string() << "\n"
                                             << "flows: {file: " << (work_ / "flows.jsonl").string()
                                             << ", drop_event_interval_ms: 0}\n"
                                             << "api: {unix_socket: " << socket_ << "}\n"
                                             << "metrics: {listen: 127.0.0.1:9962}\n";
        lab_->serve("api", 8080);
        lab_->serve("db", 5432);
    }
    void TearDown() override {
        daemon_.reset();
        runCommand({ZTSEGD_PATH, "--config", (work_ / "ztsegd.yaml").string(), "--uninstall",
                    "--log-level", "error"});
        lab_.reset();
        fs::remove_all(work_);
    }

    void startDaemon() {
        daemon_ = std::make_unique<ZtsegdProcess>(ZTSEGD_PATH, lab_->host(),
                                                  (work_ / "ztsegd.yaml").string(), socket_);
    }
    // errno of a 1-byte echo from one party to another (0: it worked).
    int echo(const std::string& from, const std::string& to, uint16_t port) {
        std::string dst = lab_->address(to);
        return lab_->in(from, [dst, port] { return tcpEchoRoundTrip(dst, port, "x", 1500ms); });
    }
    std::vector<v1::FlowEvent> streamedFlows(const std::vector<std::string>& verdicts) {
        auto stub = v1::Agent::NewStub(
            grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials()));
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 10s);
        v1::FlowsRequest req;
        for (const auto& v : verdicts) req.add_verdict(v);
        auto reader = stub->Flows(&ctx, req);
        std::vector<v1::FlowEvent> out;
        for (v1::FlowEvent e; reader->Read(&e);) out.push_back(e);
        EXPECT_TRUE(reader->Finish().ok());
        return out;
    }
    std::string metrics() {
        return httpGetIn(lab_->host(), 9962, "/metrics", work_ / "metrics.txt");
    }

    std::unique_ptr<DemoLab> lab_;
    std::unique_ptr<ZtsegdProcess> daemon_;
    fs::path work_;
    std::string socket_;
};

bool has(const std::vector<v1::FlowEvent>& evs, const std::string& src, const std::string& dst,
         const std::string& reason) {
    return std::any_of(evs.begin(), evs.end(), [&](const v1::FlowEvent& e) {
        return (src.empty() || e.src().ip() == src) && e.dst().ip() == dst && e.reason() == reason;
    });
}

TEST_F(ThreeTier, EnforcesLogsStreamsSurvivesRestartAndServesMetrics) {
    startDaemon();

    // The policy: web -> api:8080 and api -> db:5432; nothing else east-west.
    EXPECT_EQ(echo("web", "api", 8080), 0);
    EXPECT_EQ(echo("api", "db", 5432), 0);
    EXPECT_EQ(echo("web", "db", 5432), EPERM) << "web has no egress to db: refused at connect";
    EXPECT_EQ(echo("intruder", "db", 5432), ETIMEDOUT) << "no identity: dropped at XDP";

    // The flow file: OCSF Network Activity lines for what was allowed and dropped.
    std::string db = lab_->address("db"), api = lab_->address("api");
    std::string intruder = lab_->address("intruder");
    ASSERT_TRUE(waitUntil([&] {
        std::string t = slurp(work_ / "flows.jsonl");
        return t.find(intruder) != std::string::npos &&
               t.find("\"disposition_id\":1") != std::string::npos;
    }));
    std::string file = slurp(work_ / "flows.jsonl");
    EXPECT_NE(file.find("\"class_uid\":4001"), std::string::npos);
    EXPECT_NE(file.find("three-tier-host"), std::string::npos);
    EXPECT_NE(file.find("three-tier.yaml:"), std::string::npos) << "rule locations in the log";

    // The same events on the gRPC Flows stream, filtered on the server.
    auto dropped = streamedFlows({"dropped"});
    EXPECT_TRUE(has(dropped, intruder, db, "unlabeled"));
    EXPECT_TRUE(has(dropped, "", db, "default-deny")) << "web's refused connect";
    for (const auto& e : dropped) EXPECT_EQ(e.verdict(), "dropped");
    auto allowed = streamedFlows({"allowed"});
    EXPECT_TRUE(has(allowed, api, db, "allow-policy"));

    // Restart in the middle of continuous traffic: the pinned programs keep
    // enforcing while no daemon runs, and the new one adopts them.
    std::atomic<bool> stop{false};
    std::atomic<int> allowed_failed{0}, denied_passed{0}, rounds{0};
    std::thread traffic([&] {
        while (!stop) {
            allowed_failed += echo("api", "db", 5432) != 0;
            allowed_failed += echo("web", "api", 8080) != 0;
            denied_passed += echo("intruder", "db", 5432) != ETIMEDOUT;
            denied_passed += echo("web", "db", 5432) != EPERM;
            ++rounds;
        }
    });
    std::this_thread::sleep_for(2s);
    EXPECT_EQ(daemon_->stop(), 0);
    std::this_thread::sleep_for(2s);  // no daemon at all
    startDaemon();
    std::this_thread::sleep_for(2s);
    stop = true;
    traffic.join();
    EXPECT_EQ(allowed_failed, 0) << "an allowed connection failed across the restart";
    EXPECT_EQ(denied_passed, 0) << "a denied connection got through across the restart";
    EXPECT_GE(rounds, 3);

    // /metrics: the generation, drops by reason and hook, flow events per sink.
    std::string m = metrics();
    EXPECT_NE(m.find("ztseg_policy_generation 1"), std::string::npos) << m;
    EXPECT_NE(m.find("ztseg_drop_count_total{reason=\"unlabeled\""), std::string::npos);
    EXPECT_NE(m.find("ztseg_drop_count_total{reason=\"default-deny\""), std::string::npos);
    EXPECT_NE(m.find("ztseg_forward_count_total{"), std::string::npos);
    EXPECT_NE(m.find("ztseg_flow_events_total{sink=\"file\"}"), std::string::npos);
    EXPECT_NE(m.find("ztseg_flow_events_lost_total{stage=\"ringbuf\"} 0"), std::string::npos);
}

}  // namespace
}  // namespace ztseg::test
