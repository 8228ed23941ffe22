// Failsafe rules against the real ztsegd and kernel (issue 17): under a host
// policy that admits nothing, SSH from the management range (a station with
// no identity) still reaches the host's sshd, while the same station on
// another port and a labeled workload on 22 stay refused; the flow is
// reported as allow-failsafe, status lists the rule, and explain --live names
// it. With failsafe.enabled: false the same policy locks SSH out: the rule is
// what keeps the way in.
#include <nlohmann/json.hpp>

#include "integration/daemon_fixture.hpp"

namespace ztseg::test {
namespace {

class FailsafeLab : public Ztsegd {
  protected:
    void SetUp() override {
        Ztsegd::SetUp();
        const std::string rel = parent_->path().substr(Cgroup2::mountPoint().size() + 1);
        sshd_cg_ = std::make_unique<Cgroup2>(rel + "/sshd");  // a host service: no workload
        writeLockdownBundle();
    }
    void TearDown() override {
        servers_.clear();
        sshd_cg_.reset();  // before its parent, which the fixture removes
        Ztsegd::TearDown();
    }
    // The host's address (the lab's "db" address) is declared; the host's
    // policy admits web on 9/tcp only, nothing else either way.
    void writeLockdownBundle() {
        const std::string yaml =
            "workloads:\n"
            "  - name: web\n    labels: {app: web}\n    addresses: [" +
            lab_->webAddr(4) + ", \"" + lab_->webAddr(6) + "\"]\n" + "hosts: [" + lab_->dbAddr(4) +
            ", \"" + lab_->dbAddr(6) +
            "\"]\n"
            "policies:\n  - name: lockdown\n    entity: host\n"
            "    ingress:\n      - from: [{selector: {matchLabels: {app: web}}}]\n"
            "        ports: [{port: 9, protocol: tcp}]\n";
        policy::Diagnostics d;
        auto cp = policy::compile(policy::parsePolicies({{"lab.yaml", yaml}}, d), 1, d);
        std::ofstream(dir_ / "bundle.pb", std::ios::binary)
            << policy::serializeBundle(cp, policy::BundleMeta{fleet_, 0});
    }
    void startWithFailsafe(const std::string& section) {
        std::ofstream(dir_ / "ztsegd.yaml", std::ios::app) << section;
        servers_.push_back(lab_->startServerIn(*sshd_cg_, 22));
        servers_.push_back(lab_->startServerIn(*sshd_cg_, 2222));
        daemon_ = startDaemon();
        ASSERT_TRUE(waitUntil([&] {
            CommandResult r = ctl("status -o json");
            return r.status == 0 && nlohmann::json::parse(r.output).value("generation", "") == "1";
        })) << logText();
    }
    // An echo round trip from `src` (in the peer namespace) to the host's sshd: 0 or the errno.
    int toHost(const std::string& src, uint16_t port, int family = 4) {
        const std::string dst = lab_->dbAddr(family);
        return lab_->inPeer([&] { return tcpEchoRoundTrip(dst, port, "ssh", 1s, src); });
    }

    std::unique_ptr<Cgroup2> sshd_cg_;
    std::vector<std::unique_ptr<Child>> servers_;
};

TEST_F(FailsafeLab, FailsafeSshWorksUnderADenyAllHostPolicy) {
    const std::string station4 = lab_->intruderAddr(4), station6 = lab_->intruderAddr(6);
    startWithFailsafe("failsafe: {management: [" + station4 + "/32, \"" + station6 + "/128\"]}\n");

    EXPECT_EQ(toHost(station4, 22), 0) << "the management station has no identity";
    EXPECT_EQ(toHost(station6, 22, 6), 0);
    EXPECT_NE(toHost(station4, 2222), 0) << "another port: an unlabeled source";
    EXPECT_NE(toHost(lab_->webAddr(4), 22), 0) << "a labeled workload: the host policy decides";

    const std::string flows = flowsText();
    EXPECT_NE(flows.find("\"reason\":\"allow-failsafe\""), std::string::npos) << flows;
    EXPECT_NE(flows.find("\"reason\":\"default-deny\""), std::string::npos) << flows;
    CommandResult st = ctl("status");
    EXPECT_NE(st.output.find("failsafe rules (admitted whatever the host policy says): 6"),
              std::string::npos)
        << st.output;  // ssh ×2, dhcp ×2, dhcpv6 ×2
    EXPECT_NE(st.output.find("ssh"), std::string::npos) << st.output;

    CommandResult ex = ctl("explain --live --from " + station4 + " --to host --port 22/tcp");
    EXPECT_EQ(ex.status, 0) << ex.output << ex.errors;
    std::cout << "[explain] " << ex.output;
    EXPECT_NE(ex.output.find(station4 + " -> host 22/tcp: ALLOWED"), std::string::npos)
        << ex.output;
    EXPECT_NE(ex.output.find("ingress at host: admitted by failsafe rule 'ssh' (ingress tcp/22 "
                             "from " +
                             station4 + "/32, "),
              std::string::npos)
        << ex.output;
    ex = ctl("explain --live --from " + station4 + " --to host --port 2222/tcp");
    EXPECT_NE(ex.output.find("DENIED"), std::string::npos) << ex.output;
}

TEST_F(FailsafeLab, WithFailsafeDisabledTheSameHostPolicyLocksSshOut) {
    const std::string station4 = lab_->intruderAddr(4);
    startWithFailsafe("failsafe: {enabled: false, management: [" + station4 + "/32]}\n");
    EXPECT_NE(toHost(station4, 22), 0);
    EXPECT_NE(logText().find("failsafe.enabled is false"), std::string::npos) << logText();
    EXPECT_NE(ctl("status").output.find("failsafe rules: DISABLED"), std::string::npos);
}

}  // namespace
}  // namespace ztseg::test
