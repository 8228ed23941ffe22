// Which interfaces the real ztsegd puts XDP on, in the lab's host namespace
// (its veth end and lo): the default `interfaces: ["*"]` means every interface
// but loopback, so the host still reaches itself (/metrics on 127.0.0.1) under
// an enforced policy; an empty list is refused at start unless the config opts
// out of XDP with `cgroup_only: true`, which is warned about; `lo` is refused.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "integration/lab_topology.hpp"
#include "integration/test_pki.hpp"
#include "integration/ztseg_process.hpp"
#include "policy/bundle.hpp"
#include "policy/parser.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace ztseg::test {
namespace {

class ZtsegdInterfaces : public ::testing::Test {
  protected:
    void SetUp() override {
        lab_ = std::make_unique<DbLab>();
        std::string tag = uniqueName("ztdi");
        parent_ = std::make_unique<Cgroup2>(tag);
        db_cg_ = std::make_unique<Cgroup2>(tag + "/db");
        dir_ = fs::temp_directory_path() / tag;
        fs::create_directories(dir_);
        pin_dir_ = "/sys/fs/bpf/" + tag;
        writeBundle();
    }
    void TearDown() override {
        if (HasFailure()) {
            std::cerr << "---- ztsegd log ----\n" << log() << "---- end of log ----\n";
        }
        daemon_.reset();
        runCommand({ZTSEGD_PATH, "--config", config(), "--uninstall", "--log-level", "error"},
                   &lab_->host());
        db_server_.reset();
        db_cg_.reset();
        parent_.reset();
        lab_.reset();
        fs::remove_all(dir_);
    }

    // db (found by its cgroup) admits web on tcp/5432.
    void writeBundle() {
        std::string rel = db_cg_->path().substr(Cgroup2::mountPoint().size() + 1);
        std::string yaml = "workloads:\n  - name: db\n    labels: {app: db}\n    cgroup: " + rel +
                           "\n    addresses: [" + lab_->dbAddr(4) +
                           "]\n  - name: web\n    labels: {app: web}\n    addresses: [" +
                           lab_->webAddr(4) +
                           "]\npolicies:\n  - name: db\n    selector: {matchLabels: {app: db}}\n"
                           "    ingress:\n      - from: [{selector: {matchLabels: {app: web}}}]\n"
                           "        ports: [{port: 5432, protocol: tcp}]\n";
        policy::Diagnostics d;
        auto cp = policy::compile(policy::parsePolicies({{"lab.yaml", yaml}}, d), 1, d);
        std::ofstream(dir_ / "bundle.pb", std::ios::binary) << policy::serializeBundle(cp);
    }
    // The config with `xdp` (interfaces / cgroup_only lines, or nothing: the default).
    void writeConfig(const std::string& xdp) {
        std::ofstream(config()) << "state_dir: " << (dir_ / "state").string() << "\n"
                                << "pin_dir: " << pin_dir_ << "\n"
                                << "cgroup_root: " << parent_->path() << "\n"
                                << xdp << "bundle: " << (dir_ / "bundle.pb").string() << "\n"
                                << "flows: {file: " << (dir_ / "flows.jsonl").string() << "}\n"
                                << "api: {unix_socket: " << socket() << "}\n"
                                << "metrics: {listen: 127.0.0.1:9962}\n";
    }
    std::string config() const { return (dir_ / "ztsegd.yaml").string(); }
    std::string socket() const { return (dir_ / "sock").string(); }
    std::string log() const {
        return fs::exists(dir_ / "ztsegd.log") ? slurp(dir_ / "ztsegd.log") : "";
    }

    // ztsegd in the host namespace, its output in ztsegd.log; ready when its API answers.
    void startDaemon() {
        std::string cfg = config(), logfile = (dir_ / "ztsegd.log").string();
        daemon_ = std::make_unique<Child>(&lab_->host(), nullptr, [cfg, logfile] {
            int fd = ::open(logfile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
            if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) {
                return 126;
            }
            execl(ZTSEGD_PATH, "ztsegd", "--config", cfg.c_str(), "--log-level", "info",
                  static_cast<char*>(nullptr));
            return 127;
        });
        // Ready once the first apply and attach are done (the API opens before them).
        ASSERT_TRUE(waitUntil(
            [&] {
                return log().find("ztsegd running") != std::string::npos || !daemon_->running();
            },
            30s));
        ASSERT_TRUE(daemon_->running()) << "ztsegd exited";
    }
    // ztsegd run to completion: its status and output (for configs it refuses).
    CommandResult runDaemon() {
        return runCommand({ZTSEGD_PATH, "--config", config()}, &lab_->host(), 60s);
    }
    std::string metrics() { return httpGetIn(lab_->host(), 9962, "/metrics", dir_ / "m.txt"); }
    bool xdpOn(const std::string& ifname) const {
        return fs::exists(pin_dir_ + "/links/xdp-" + ifname);
    }

    std::unique_ptr<DbLab> lab_;
    std::unique_ptr<Cgroup2> parent_, db_cg_;
    std::unique_ptr<Child> daemon_, db_server_;
    fs::path dir_;
    std::string pin_dir_;
};

TEST_F(ZtsegdInterfaces, DefaultWildcardSkipsLoopback) {
    writeConfig("");  // interfaces: ["*"]
    db_server_ = lab_->startServerIn(*db_cg_, kDbPort);
    startDaemon();
    EXPECT_TRUE(xdpOn(lab_->veth().nameA()));
    EXPECT_FALSE(xdpOn("lo"));
    // The policy is enforced, and the host still talks to itself.
    EXPECT_EQ(lab_->intruderToDb(), ETIMEDOUT);
    EXPECT_EQ(lab_->webToDb(), 0);
    std::string m = metrics();
    EXPECT_NE(m.find("ztseg_policy_generation 1"), std::string::npos) << "no /metrics over lo";
    EXPECT_NE(m.find("ztseg_xdp_attached{interface=\"" + lab_->veth().nameA()), std::string::npos)
        << m;
    EXPECT_EQ(m.find("ztseg_xdp_attached{interface=\"lo\""), std::string::npos) << m;
}

TEST_F(ZtsegdInterfaces, EmptyInterfacesRefusedAtStart) {
    writeConfig("interfaces: []\n");
    CommandResult r = runDaemon();
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find(config() + ":4:13: interfaces is empty"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("set cgroup_only: true"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(pin_dir_)) << "nothing loaded";
}

TEST_F(ZtsegdInterfaces, LoopbackNamedRefusedAtStart) {
    writeConfig("interfaces: [lo]\n");
    CommandResult r = runDaemon();
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("'lo' is the loopback device"), std::string::npos) << r.output;
}

TEST_F(ZtsegdInterfaces, CgroupOnlyAttachesNoXdpAndSaysSo) {
    writeConfig("cgroup_only: true\n");
    db_server_ = lab_->startServerIn(*db_cg_, kDbPort);
    startDaemon();
    EXPECT_FALSE(xdpOn(lab_->veth().nameA()));
    EXPECT_NE(log().find("cgroup_only: XDP is not attached"), std::string::npos) << log();
    // The workload is still judged, at its cgroup hooks.
    EXPECT_EQ(lab_->intruderToDb(), ETIMEDOUT);
    EXPECT_EQ(lab_->webToDb(), 0);
    EXPECT_NE(metrics().find("ztseg_policy_generation 1"), std::string::npos);
}

}  // namespace
}  // namespace ztseg::test
