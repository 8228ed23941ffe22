// Failsafe rules (ztsegd.yaml failsafe:, docs/ztsegd.md#failsafe-rules) against
// the real programs: under a deny-all host policy, SSH from the management
// range and the host's DNS and controller links still work, both ways, at the
// cgroup hooks and at the interface ingress stage, even from sources without
// identity; everything else stays refused; a new generation keeps the
// failsafe connections; a workload's address never gets the host's failsafe.
#include <string>
#include <vector>

#include "bpf/scenario.hpp"

namespace ztseg::test {
namespace {

class Failsafe : public FamilyTest {
  protected:
    void SetUp() override {
        FamilyTest::SetUp();
        // web, db are identities elsewhere; aud is the host's declared address;
        // router and stranger have no identity: router is the management
        // station and the DNS server
        addHosts({{n_.web, kWeb}, {n_.db, kDb}, {n_.aud, kHostIdentity}});
        dp().setFailsafe({
            rule("ssh", Direction::Ingress, ZTSEG_PROTO_TCP, 22, n_.router),
            rule("dns", Direction::Egress, ZTSEG_PROTO_UDP, 53, n_.router),
            rule("controller", Direction::Egress, ZTSEG_PROTO_TCP, 9443, n_.web),
            anyRule("dhcp", Direction::Ingress, ZTSEG_PROTO_UDP, 68),
        });
    }
    FailsafeRule rule(const std::string& name, Direction d, uint8_t proto, uint16_t port,
                      const std::string& peer) const {
        return {name, "test", d, proto, port, IpPrefix::parse(host(peer))};
    }
    FailsafeRule anyRule(const std::string& name, Direction d, uint8_t proto, uint16_t port) const {
        IpPrefix any = IpPrefix::parse(n_.v6 ? "::/0" : "0.0.0.0/0");
        return {name, "test", d, proto, port, any};
    }
    // The host under a policy that admits nothing (default deny both ways).
    void denyAllHost() {
        gen().modes[kHostIdentity] = WorkloadMode::Enforce;
        applyGen();  // the next generation number each time
    }
};

TEST_P(Failsafe, SshFromTheManagementRangeWorksUnderADenyAllHostPolicy) {
    denyAllHost();
    // router has no identity: without the rule, unlabeled; with it, admitted and tracked
    expectIn(pkt(n_.router, n_.stranger).tcp(40000, 22).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_FAILSAFE);
    auto e = onlyEvent(ZTSEG_REASON_ALLOW_FAILSAFE, kUnlabeled, kHostIdentity);
    EXPECT_EQ(e.verdict, ZTSEG_VERDICT_ALLOWED);
    EXPECT_EQ(e.rule_id, 1u) << "the failsafe rule's place in the list";
    expectOut(pkt(n_.stranger, n_.router).tcp(22, 40000, kTcpSyn | kTcpAck).build(), kSkbPass,
              ZTSEG_REASON_ALLOW_CONNTRACK);
    expectIn(pkt(n_.router, n_.stranger).tcp(40000, 22, kTcpAck).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_CONNTRACK);
    // the same peer on another port, and another peer on 22: the host policy decides
    expectIn(pkt(n_.router, n_.stranger).tcp(40001, 23).build(), kSkbDrop,
             ZTSEG_REASON_DROP_UNLABELED);
    expectIn(pkt(n_.web, n_.stranger).tcp(40002, 22).build(), kSkbDrop,
             ZTSEG_REASON_DROP_DEFAULT_DENY);
    // a UDP packet to 22 is not SSH
    expectIn(pkt(n_.router, n_.stranger).udp(40003, 22).build(), kSkbDrop,
             ZTSEG_REASON_DROP_UNLABELED);
}

TEST_P(Failsafe, TheHostsDnsAndControllerLinksWorkAndRepliesPass) {
    denyAllHost();
    expectOut(pkt(n_.stranger, n_.router).udp(40000, 53).build(), kSkbPass,
              ZTSEG_REASON_ALLOW_FAILSAFE);
    expectIn(pkt(n_.router, n_.stranger).udp(53, 40000).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_CONNTRACK);
    expectOut(pkt(n_.stranger, n_.web).tcp(40001, 9443).build(), kSkbPass,
              ZTSEG_REASON_ALLOW_FAILSAFE);
    expectIn(pkt(n_.web, n_.stranger).tcp(9443, 40001, kTcpSyn | kTcpAck).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_CONNTRACK);
    // the rules are one way: the server cannot open a flow to the host's port 53
    expectIn(pkt(n_.router, n_.stranger).udp(40002, 53).build(), kSkbDrop,
             ZTSEG_REASON_DROP_UNLABELED);
    expectOut(pkt(n_.stranger, n_.web).tcp(40003, 443).build(), kSkbDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(Failsafe, TheIngressStagePassesFailsafeFlowsFromSourcesWithoutIdentity) {
    denyAllHost();
    // to an undeclared address of the host, and to its declared one
    for (const std::string& to : {n_.stranger, n_.aud}) {
        expectXdp(pkt(n_.router, to).tcp(40000, 22).build(), kXdpPass, ZTSEG_REASON_ALLOW_FAILSAFE);
        // the DNS server's answer to the host's query
        expectXdp(pkt(n_.router, to).udp(53, 40001).build(), kXdpPass, ZTSEG_REASON_ALLOW_FAILSAFE);
        // anything else from it is still an unlabeled source
        expectXdp(pkt(n_.router, to).tcp(40002, 23).build(), kXdpDrop, ZTSEG_REASON_DROP_UNLABELED);
        expectXdp(pkt(n_.router, to).udp(40003, 53).build(), kXdpDrop, ZTSEG_REASON_DROP_UNLABELED);
    }
    // a labeled peer to the declared host address: judged, the rule admits it
    expectXdp(pkt(n_.web, n_.aud).tcp(9443, 40004, kTcpAck).build(), kXdpDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectXdp(pkt(n_.router, n_.aud).icmpEcho(9, false).build(), kXdpDrop,
              ZTSEG_REASON_DROP_UNLABELED);
}

TEST_P(Failsafe, NoHostPolicyTheIngressStageStillLetsTheManagementRangeIn) {
    addRules({{kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 1}});
    gen().modes[kDb] = WorkloadMode::Enforce;
    applyGen();
    expectXdp(pkt(n_.router, n_.stranger).tcp(40000, 22).build(), kXdpPass,
              ZTSEG_REASON_ALLOW_FAILSAFE);
    expectXdp(pkt(n_.router, n_.stranger).tcp(40000, 2222).build(), kXdpDrop,
              ZTSEG_REASON_DROP_UNLABELED);
}

TEST_P(Failsafe, AWorkloadsAddressNeverGetsTheHostsFailsafe) {
    addRules({{kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 1}});
    gen().modes[kDb] = WorkloadMode::Enforce;
    denyAllHost();
    // db is an enforced workload: SSH from the management station to it is db's business
    expectXdp(pkt(n_.router, n_.db).tcp(40000, 22).build(), kXdpDrop, ZTSEG_REASON_DROP_UNLABELED);
    addWorkload(kDb, WorkloadMode::Enforce);  // this process becomes workload db
    applyGen();
    expectIn(pkt(n_.router, n_.db).tcp(40000, 22).build(), kSkbDrop, ZTSEG_REASON_DROP_UNLABELED);
    expectIn(pkt(n_.router, n_.stranger).tcp(40000, 22).build(), kSkbDrop,
             ZTSEG_REASON_DROP_UNLABELED);
}

TEST_P(Failsafe, ANewGenerationKeepsFailsafeConnections) {
    denyAllHost();
    expectIn(pkt(n_.router, n_.stranger).tcp(40000, 22).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_FAILSAFE);
    expectOut(pkt(n_.stranger, n_.router).tcp(22, 40000, kTcpSyn | kTcpAck).build(), kSkbPass,
              ZTSEG_REASON_ALLOW_CONNTRACK);
    denyAllHost();  // re-judges every tracked connection
    expectIn(pkt(n_.router, n_.stranger).tcp(40000, 22, kTcpAck).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_CONNTRACK);
    // removing the rule (ztsegd started with another config) ends them at the next generation
    dp().setFailsafe({});
    denyAllHost();
    expectIn(pkt(n_.router, n_.stranger).tcp(40000, 22, kTcpAck).build(), kSkbDrop,
             ZTSEG_REASON_DROP_UNLABELED);
}

TEST_P(Failsafe, AnyPeerRulesAreNotTracked) {
    denyAllHost();
    const auto before = dp().conntrackEntries();
    expectIn(pkt(n_.router, n_.stranger).udp(67, 68).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_FAILSAFE);
    expectIn(pkt(n_.web, n_.stranger).udp(67, 68).build(), kSkbPass, ZTSEG_REASON_ALLOW_FAILSAFE);
    EXPECT_EQ(dp().conntrackEntries(), before) << "a flood of any-peer flows fills no table";
}

TEST_P(Failsafe, ReplacingTheRulesRemovesTheStaleOnes) {
    denyAllHost();
    dp().setFailsafe({rule("ssh", Direction::Ingress, ZTSEG_PROTO_TCP, 2222, n_.router)});
    expectIn(pkt(n_.router, n_.stranger).tcp(40000, 22).build(), kSkbDrop,
             ZTSEG_REASON_DROP_UNLABELED);
    expectIn(pkt(n_.router, n_.stranger).tcp(40001, 2222).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_FAILSAFE);
}

INSTANTIATE_TEST_SUITE_P(Families, Failsafe, ::testing::Values(Family::V4, Family::V6), familyName);

}  // namespace
}  // namespace ztseg::test
