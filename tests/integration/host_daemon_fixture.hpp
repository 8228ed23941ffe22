// gtest fixture: the real ztsegd protecting the lab's host itself (issue 17).
// A stand-in "sshd" (a TCP echo server on port 22) runs in the lab's host
// namespace in a child cgroup of cgroup_root that no workload matches, so it
// is a host process; the host's address (the lab's "db" address, the only
// one of the host namespace; no db workload here) is declared under `hosts:`;
// web is the bastion. Host policies are YAML bundles; the operator's SSH
// session from web can be kept open across policy changes.
#pragma once

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "integration/daemon_fixture.hpp"

namespace ztseg::test {

class HostZtsegd : public Ztsegd {
  protected:
    static constexpr uint16_t kSsh = 22;

    void SetUp() override {
        Ztsegd::SetUp();
        const std::string parent = parent_->path().substr(Cgroup2::mountPoint().size() + 1);
        host_cg_ = std::make_unique<Cgroup2>(parent + "/sshd.service");
        sshd_ = lab_->startServerIn(*host_cg_, kSsh);
        web_server_ = lab_->startWebServer(kWebPort);
        writeHostBundle(1, "bundle.pb", bastionRules(kSsh));
    }
    void TearDown() override {
        session_ = UniqueFd();
        sshd_.reset();
        web_server_.reset();
        host_cg_.reset();
        Ztsegd::TearDown();
    }

    // The host policy's rules: the bastion (web) may reach the host on
    // `ssh_port`/tcp, the host may reach web on 8080/tcp. "" (no rules):
    // deny-all in both directions.
    static std::string bastionRules(uint16_t ssh_port) {
        return "    ingress:\n"
               "      - from: [{selector: {matchLabels: {app: web}}}]\n"
               "        ports: [{port: \"" +
               std::to_string(ssh_port) +
               "\", protocol: tcp}]\n"
               "    egress:\n"
               "      - to: [{selector: {matchLabels: {app: web}}}]\n"
               "        ports: [{port: \"" +
               std::to_string(kWebPort) + "\", protocol: tcp}]\n";
    }
    // A bundle of generation `g` in dir_/file: web, the host's addresses, and
    // one host policy (`entity: host`) with `rules` in `mode`.
    void writeHostBundle(uint64_t g, const std::string& file, const std::string& rules,
                         const std::string& mode = "enforce") {
        writeYamlBundle(g,
                        "workloads:\n"
                        "  - name: bastion\n    labels: {app: web}\n    addresses: [" +
                            lab_->webAddr(4) + ", \"" + lab_->webAddr(6) +
                            "\"]\n"
                            "hosts: [" +
                            lab_->dbAddr(4) + ", \"" + lab_->dbAddr(6) +
                            "\"]\n"
                            "policies:\n  - name: host-base\n    entity: host\n    mode: " +
                            mode + "\n" + rules,
                        file);
    }
    CommandResult applyBundle(const std::string& file, const std::string& extra = "") {
        return ctl("apply --force --bundle " + (dir_ / file).string() + " " + extra);
    }

    // A new SSH connection from the bastion: an echo round trip, 0 or errno.
    int webToHost(uint16_t port = kSsh) { return lab_->webToDb(port); }
    // A host process (in the sshd's cgroup) to web:8080: 0 or errno.
    int hostToWeb() { return lab_->hostToWeb(*host_cg_, kWebPort); }

    // The operator's long-lived SSH session: web -> host:22, kept open.
    int openSession() {
        NetnsScope in(lab_->peer());
        return tcpOpen(lab_->dbAddr(4), kSsh, 1s, session_, lab_->webAddr(4));
    }
    int sessionEcho(const std::string& msg, std::chrono::milliseconds timeout = 1s) {
        return tcpEcho(session_.get(), msg, timeout);
    }

    // Every flow record of flows.jsonl (OCSF JSON lines; ztseg's own fields in unmapped.ztseg).
    std::vector<nlohmann::json> flowRecords() {
        std::vector<nlohmann::json> all;
        std::istringstream in(flowsText());
        for (std::string line; std::getline(in, line);) {
            auto j = nlohmann::json::parse(line, nullptr, false);
            if (!j.is_discarded() && j.contains("unmapped")) {
                all.push_back(std::move(j));
            }
        }
        return all;
    }
    static std::string verdictOf(const nlohmann::json& r) {
        return r["unmapped"]["ztseg"].value("verdict", "");
    }
    // The records with `verdict` and `reason` whose destination is the host
    // (identity 1) on `port`.
    std::vector<nlohmann::json> hostFlows(const std::string& verdict, const std::string& reason,
                                          uint16_t port = kSsh) {
        std::vector<nlohmann::json> found;
        for (auto& r : flowRecords()) {
            if (verdictOf(r) == verdict && r["unmapped"]["ztseg"].value("reason", "") == reason &&
                r["dst_endpoint"].value("uid", "") == "1" &&
                r["dst_endpoint"].value("port", 0) == port) {
                found.push_back(std::move(r));
            }
        }
        return found;
    }
    size_t flowsWithVerdict(const std::string& verdict) {
        auto all = flowRecords();
        return std::count_if(all.begin(), all.end(),
                             [&](const nlohmann::json& r) { return verdictOf(r) == verdict; });
    }

    std::unique_ptr<Cgroup2> host_cg_;
    std::unique_ptr<Child> sshd_, web_server_;
    UniqueFd session_;
};

}  // namespace ztseg::test
