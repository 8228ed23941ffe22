// gtest fixture: the real ztsegd in the lab's host namespace with a config,
// a compiled bundle (db found by its cgroup pattern, admitting web), XDP on
// the lab interface; helpers to restart it, run its tools and read its
// metrics, flows and log.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "integration/lab_topology.hpp"
#include "integration/test_pki.hpp"
#include "integration/ztseg_process.hpp"
#include "policy/bundle.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"

namespace ztseg::test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

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
        api_ = "{unix_socket: " + (dir_ / "sock").string() + "}";
        writeBundle(1, "5432");
        writeConfig();
    }
    void writeConfig() {
        std::ofstream(dir_ / "ztsegd.yaml") << "host_name: lab-host\n"
                                            << "fleet: \"" << fleet_ << "\"\n"
                                            << "state_dir: " << (dir_ / "state").string() << "\n"
                                            << "pin_dir: " << pin_dir_ << "\n"
                                            << "cgroup_root: " << parent_->path() << "\n"
                                            << "interfaces: [" << lab_->veth().nameA() << "]\n"
                                            << "bundle: " << (dir_ / "bundle.pb").string() << "\n"
                                            << "flows: {file: " << (dir_ / "flows.jsonl").string()
                                            << ", drop_event_interval_ms: 0}\n"
                                            << "api: " << api_ << "\n"
                                            << "metrics: {listen: 127.0.0.1:9962}\n";
    }
    void TearDown() override {
        if (HasFailure()) {
            std::cerr << "---- ztsegd log ----\n" << logText() << "---- end of log ----\n";
        }
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
        writeYamlBundle(generation, yaml, file);
    }
    // Any policy YAML compiled as `generation` into dir_/file (a compile error fails the test).
    void writeYamlBundle(uint64_t generation, const std::string& yaml, const std::string& file) {
        policy::Diagnostics d;
        auto cp = policy::compile(policy::parsePolicies({{"lab.yaml", yaml}}, d), generation, d);
        ASSERT_FALSE(d.hasErrors()) << yaml;
        std::ofstream(dir_ / file, std::ios::binary)
            << policy::serializeBundle(cp, policy::BundleMeta{fleet_, 0});
    }
    std::string readBundle(const std::string& file) { return slurp(dir_ / file); }

    // ztsegd in the lab's host namespace.
    std::unique_ptr<Child> startDaemon() {
        std::string cfg = (dir_ / "ztsegd.yaml").string();
        std::string log = (dir_ / "ztsegd.log").string();
        auto c = std::make_unique<Child>(&lab_->host(), nullptr, [cfg, log] {
            // The daemon's log goes to a file the test can read (and prints on failure).
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
            if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) {
                return 126;
            }
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
    std::string logText() { return slurp(dir_ / "ztsegd.log"); }
    // GET /metrics from inside the host namespace ("" if it failed).
    std::string metricsText() {
        return httpGetIn(lab_->host(), 9962, "/metrics", dir_ / "metrics.txt");
    }
    // The value of one metric line (exact name and labels), or -1 if absent.
    double metric(const std::string& name_and_labels) {
        std::istringstream in(metricsText());
        for (std::string line; std::getline(in, line);) {
            if (line.rfind(name_and_labels + " ", 0) == 0) {
                return std::stod(line.substr(name_and_labels.size() + 1));
            }
        }
        return -1;
    }
    std::string flowsText() { return slurp(dir_ / "flows.jsonl"); }

    // ztsegctl ARGS (split at spaces) against this ztsegd's API socket.
    CommandResult ctl(const std::string& args) {
        std::vector<std::string> argv{ZTSEGCTL_PATH};
        std::istringstream in(args);
        for (std::string a; in >> a;) argv.push_back(a);
        argv.push_back("--socket");
        argv.push_back((dir_ / "sock").string());
        return runCommand(argv, nullptr, 60s, true);
    }
    // `ztsegctl status -o json` (an empty object if it failed).
    nlohmann::json status() {
        CommandResult r = ctl("status -o json");
        return r.status == 0 ? nlohmann::json::parse(r.output) : nlohmann::json::object();
    }
    uint64_t generationNow() {
        auto st = status();
        return st.contains("generation") ? std::stoull(st["generation"].get<std::string>()) : 0;
    }
    // Polls the generation every 20 ms; ms from `t0` until it is `g` (-1: not within `limit`).
    int64_t msUntilGeneration(uint64_t g, std::chrono::steady_clock::time_point t0,
                              std::chrono::milliseconds limit) {
        return msUntil([&] { return generationNow() == g; }, t0, limit);
    }
    // Polls pred every 20 ms; ms from `t0` until it holds (-1: not within `limit` of t0).
    static int64_t msUntil(const std::function<bool()>& pred,
                           std::chrono::steady_clock::time_point t0,
                           std::chrono::milliseconds limit) {
        using Clock = std::chrono::steady_clock;
        while (Clock::now() - t0 < limit) {
            if (pred()) {
                return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0)
                    .count();
            }
            std::this_thread::sleep_for(20ms);
        }
        return -1;
    }
    // GET /metrics from inside the host namespace; true if it shows generation `gen`.
    bool metricsShowGeneration(int gen) {
        const std::string b = metricsText();
        return b.find("ztseg_policy_generation " + std::to_string(gen)) != std::string::npos &&
               b.find("ztseg_drop_count_total{reason=\"unlabeled\"") != std::string::npos &&
               b.find("ztseg_workloads 1") != std::string::npos;
    }
    void startDbServer() { db_server_ = lab_->startServerIn(*db_cg_, kDbPort); }
    int webToDb(uint16_t port = kDbPort) { return lab_->webToDb(port); }
    int intruderToDb() { return lab_->intruderToDb(); }

    std::unique_ptr<DbLab> lab_;
    std::unique_ptr<Cgroup2> parent_, db_cg_;
    std::unique_ptr<Child> daemon_, db_server_;
    fs::path dir_;
    std::string pin_dir_;
    std::string fleet_;  // config and bundles
    std::string api_;    // the config's api: section
};

}  // namespace ztseg::test
