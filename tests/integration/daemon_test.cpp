// ztsegd end to end on the namespace lab: the real binary in the "host"
// namespace with a config, a compiled bundle, XDP on the lab interface and a
// workload cgroup discovered by pattern. Traffic verdicts, the OCSF flow file,
// /metrics, restart without a gap, and --uninstall.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/cgroup.hpp"
#include "common/httplib_quiet.hpp"
#include "integration/lab_topology.hpp"
#include "policy/bundle.hpp"
#include "policy/parser.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace ztseg::test {
namespace {

class Ztsegd : public ::testing::Test {
  protected:
    void SetUp() override {
        lab_ = std::make_unique<DbLab>();
        std::string tag = uniqueName("ztd");
        parent_ = std::make_unique<Cgroup2>(tag);
        db_cg_ = std::make_unique<Cgroup2>(tag + "/db");
        dir_ = fs::temp_directory_path() / tag;
        fs::create_directories(dir_);
        pin_dir_ = "/sys/fs/bpf/" + tag;
        writeBundle(1, "5432");
        std::ofstream(dir_ / "ztsegd.yaml")
            << "host_name: lab-host\n"
            << "state_dir: " << (dir_ / "state").string() << "\n"
            << "pin_dir: " << pin_dir_ << "\n"
            << "cgroup_root: " << parent_->path() << "\n"
            << "interfaces: [" << lab_->veth().nameA() << "]\n"
            << "bundle: " << (dir_ / "bundle.pb").string() << "\n"
            << "flows: {file: " << (dir_ / "flows.jsonl").string()
            << ", drop_event_interval_ms: 0}\n"
            << "api: {unix_socket: " << (dir_ / "sock").string() << "}\n"
            << "metrics: {listen: 127.0.0.1:9962}\n";
    }
    void TearDown() override {
        daemon_.reset();
        runTool({"--uninstall"});
        db_server_.reset();
        db_cg_.reset();
        parent_.reset();
        lab_.reset();
        fs::remove_all(dir_);
    }

    // A bundle for the lab: db (found by its cgroup) admits web on `ports`.
    void writeBundle(uint64_t generation, const std::string& ports,
                     const std::string& file = "bundle.pb") {
        std::string rel = db_cg_->path().substr(Cgroup2::mountPoint().size() + 1);
        std::string yaml =
            "workloads:\n"
            "  - name: db\n    labels: {app: db}\n    cgroup: " +
            rel + "\n    addresses: [" + lab_->dbAddr(4) + ", \"" + lab_->dbAddr(6) +
            "\"]\n"
            "  - name: web\n    labels: {app: web}\n    addresses: [" +
            lab_->webAddr(4) + ", \"" + lab_->webAddr(6) +
            "\"]\n"
            "policies:\n  - name: db\n    selector: {matchLabels: {app: db}}\n"
            "    ingress:\n      - from: [{selector: {matchLabels: {app: web}}}]\n"
            "        ports: [{port: \"" +
            ports + "\", protocol: tcp}]\n";
        policy::Diagnostics d;
        auto cp = policy::compile(policy::parsePolicies({{"lab.yaml", yaml}}, d), generation, d);
        std::ofstream(dir_ / file, std::ios::binary) << policy::serializeBundle(cp);
    }

    // ztsegd in the lab's host namespace.
    std::unique_ptr<Child> startDaemon() {
        std::string cfg = (dir_ / "ztsegd.yaml").string();
        auto c = std::make_unique<Child>(&lab_->host(), nullptr, [cfg] {
            execl(ZTSEGD_PATH, "ztsegd", "--config", cfg.c_str(), "--log-level", "warn",
                  static_cast<char*>(nullptr));
            return 127;
        });
        waitFor([&] { return fs::exists(pin_dir_ + "/links/xdp-" + lab_->veth().nameA()); });
        std::this_thread::sleep_for(300ms);  // let it finish attaching and applying
        return c;
    }
    int runTool(std::vector<std::string> args) {
        std::string cfg = (dir_ / "ztsegd.yaml").string();
        Child c(&lab_->host(), nullptr, [cfg, args] {
            std::vector<const char*> argv{"ztsegd", "--config", cfg.c_str(), "--log-level",
                                          "error"};
            for (const auto& a : args) argv.push_back(a.c_str());
            argv.push_back(nullptr);
            execv(ZTSEGD_PATH, const_cast<char* const*>(argv.data()));
            return 127;
        });
        return c.wait(60s);
    }
    static void waitFor(const std::function<bool()>& pred) {
        for (int i = 0; i < 100 && !pred(); ++i) {
            std::this_thread::sleep_for(100ms);
        }
        ASSERT_TRUE(pred()) << "timed out waiting";
    }
    std::string flowsText() {
        std::ifstream f(dir_ / "flows.jsonl");
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    }
    // GET /metrics from inside the host namespace; true if it shows generation `gen`.
    bool metricsShowGeneration(int gen) {
        Child c(&lab_->host(), nullptr, [gen] {
            httplib::Client cli("127.0.0.1", 9962);
            auto res = cli.Get("/metrics");
            if (!res || res->status != 200) {
                return 1;
            }
            const std::string& b = res->body;
            bool ok =
                b.find("ztseg_policy_generation " + std::to_string(gen)) != std::string::npos &&
                b.find("ztseg_drop_count_total{reason=\"unlabeled\"") != std::string::npos &&
                b.find("ztseg_workloads 1") != std::string::npos;
            return ok ? 0 : 2;
        });
        return c.wait(30s) == 0;
    }
    void startDbServer() {
        db_server_ = std::make_unique<Child>(&lab_->host(), db_cg_.get(), [](Child::Ready& r) {
            UniqueFd fd = tcpListen("::", kDbPort);
            r.signal();
            tcpEchoServe(fd.get(), 1 << 30, 60s);
            return 0;
        });
        db_server_->waitReady(5s);
    }
    int webToDb(uint16_t port = kDbPort) {
        std::string dst = lab_->dbAddr(4), src = lab_->webAddr(4);
        return lab_->inPeer([&] { return tcpEchoRoundTrip(dst, port, "hi", 1s, src); });
    }
    int intruderToDb() {
        std::string dst = lab_->dbAddr(4), src = lab_->intruderAddr(4);
        return lab_->inPeer([&] { return tcpConnect(dst, kDbPort, 400ms, src).err; });
    }

    std::unique_ptr<DbLab> lab_;
    std::unique_ptr<Cgroup2> parent_, db_cg_;
    std::unique_ptr<Child> daemon_, db_server_;
    fs::path dir_;
    std::string pin_dir_;
};

TEST_F(Ztsegd, EnforcesLogsFlowsServesMetricsAndSurvivesRestart) {
    startDbServer();
    daemon_ = startDaemon();
    EXPECT_EQ(webToDb(), 0) << "web -> db:5432 is allowed";
    EXPECT_EQ(intruderToDb(), ETIMEDOUT) << "unlabeled intruder is dropped";

    // Flow events: OCSF lines for the allowed connection and the XDP drop.
    waitFor([&] {
        std::string t = flowsText();
        return t.find("\"disposition_id\":1") != std::string::npos &&
               t.find("\"disposition_id\":2") != std::string::npos;
    });
    std::string flows = flowsText();
    EXPECT_NE(flows.find("\"class_uid\":4001"), std::string::npos);
    EXPECT_NE(flows.find(lab_->intruderAddr(4)), std::string::npos);
    EXPECT_NE(flows.find("lab-host"), std::string::npos);
    EXPECT_TRUE(metricsShowGeneration(1));

    // Stop: enforcement stays while the daemon is down.
    ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
    EXPECT_EQ(daemon_->wait(30s), 0);
    EXPECT_EQ(intruderToDb(), ETIMEDOUT) << "enforcement continues without the daemon";
    EXPECT_EQ(webToDb(), 0);

    // Restart adopts the pinned state; the same bundle is not re-applied (not newer).
    daemon_ = startDaemon();
    EXPECT_EQ(webToDb(), 0);
    EXPECT_EQ(intruderToDb(), ETIMEDOUT);
    ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
    EXPECT_EQ(daemon_->wait(30s), 0);
}

TEST_F(Ztsegd, OneShotApplyRefusesRollbackAndUninstallLeavesNothing) {
    startDbServer();
    daemon_ = startDaemon();
    ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
    EXPECT_EQ(daemon_->wait(30s), 0);
    daemon_.reset();

    // A newer bundle that moves db to port 5433 only: 5432 is now refused.
    writeBundle(2, "5433", "next.pb");
    EXPECT_EQ(runTool({"--apply", (dir_ / "next.pb").string()}), 0);
    EXPECT_EQ(webToDb(), ETIMEDOUT);
    // Replaying generation 2 (or anything older) is refused and changes nothing.
    writeBundle(2, "5432", "replay.pb");
    EXPECT_EQ(runTool({"--apply", (dir_ / "replay.pb").string()}), 1);
    EXPECT_EQ(webToDb(), ETIMEDOUT);

    EXPECT_EQ(runTool({"--uninstall"}), 0);
    EXPECT_FALSE(fs::exists(pin_dir_));
    EXPECT_EQ(webToDb(), 0) << "no enforcement left";
}

}  // namespace
}  // namespace ztseg::test
