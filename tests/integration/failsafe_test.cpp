// Failsafe rules against the real ztsegd and kernel (issue 17): under a host
// policy that admits nothing, SSH from the management range (a station with
// no identity) still reaches the host's sshd, while the same station on
// another port and a labeled workload on 22 stay refused; the flow is
// reported as allow-failsafe, status lists the rule, and explain --live names
// it. With failsafe.enabled: false the same policy locks SSH out: the rule is
// what keeps the way in.
#include "integration/host_daemon_fixture.hpp"

namespace ztseg::test {
namespace {

class FailsafeLab : public HostZtsegd {
  protected:
    void SetUp() override {
        HostZtsegd::SetUp();
        other_ = lab_->startServerIn(*host_cg_, 2222);  // another host service
        writeHostBundle(1, "bundle.pb", "");            // deny-all, both ways
    }
    void TearDown() override {
        other_.reset();
        HostZtsegd::TearDown();
    }
    void startWithFailsafe(const std::string& section) {
        std::ofstream(dir_ / "ztsegd.yaml", std::ios::app) << section;
        daemon_ = startDaemon();
        ASSERT_TRUE(waitUntil([&] { return generationNow() == 1; })) << logText();
    }
    // An echo round trip from `src` (in the peer namespace) to a host service: 0 or the errno.
    int toHost(const std::string& src, uint16_t port, int family = 4) {
        const std::string dst = lab_->dbAddr(family);
        return lab_->inPeer([&] { return tcpEchoRoundTrip(dst, port, "ssh", 1s, src); });
    }

    std::unique_ptr<Child> other_;
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
