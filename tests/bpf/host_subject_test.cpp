// The host itself as a policy subject (`entity: host`): a socket of the
// host's network namespace outside every workload cgroup is judged as the
// reserved host identity, whatever local address it uses; the interface
// ingress stage judges packets to a declared host address; audit mode only
// reports; a host nobody selects, processes of other network namespaces and
// workloads keep their verdicts. This process's cgroup is no workload here,
// so the cgroup hooks see "the host" (BPF_PROG_TEST_RUN runs in our netns).
#include <string>
#include <vector>

#include "bpf/scenario.hpp"

namespace ztseg::test {
namespace {

constexpr Rule kSshFromApi{kHostIdentity, kApi, Direction::Ingress, ZTSEG_PROTO_TCP, {22, 22},
                           Action::Allow, 1};
constexpr Rule kToDb5432{kHostIdentity, kDb, Direction::Egress, ZTSEG_PROTO_TCP, {5432, 5432},
                         Action::Allow, 2};
constexpr Rule kSshFromDbDenied{kHostIdentity, kDb, Direction::Ingress, ZTSEG_PROTO_TCP, {22, 22},
                                Action::Deny,  3};

class HostSubject : public FamilyTest {
  protected:
    void SetUp() override {
        FamilyTest::SetUp();
        // web, db, api are identities elsewhere; aud is the host's declared address
        addHosts({{n_.web, kWeb}, {n_.db, kDb}, {n_.api, kApi}, {n_.aud, kHostIdentity}});
    }

    void hostPolicy(WorkloadMode mode) {
        gen().modes[kHostIdentity] = mode;
        addRules({kSshFromApi, kToDb5432, kSshFromDbDenied});
        applyGen();
    }
};

TEST_P(HostSubject, AHostSocketOnAnUndeclaredAddressIsJudgedAsTheHost) {
    hostPolicy(WorkloadMode::Enforce);
    // `stranger` is an address of no identity: the host uses it all the same
    expectIn(pkt(n_.api, n_.stranger).tcp(40000, 22).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    auto e = onlyEvent(ZTSEG_REASON_ALLOW_POLICY, kApi, kHostIdentity);
    EXPECT_EQ(e.rule_id, kSshFromApi.rule_id);
    EXPECT_EQ(e.hook, ZTSEG_HOOK_CGROUP_INGRESS);
    // the reply is tracked
    expectOut(pkt(n_.stranger, n_.api).tcp(22, 40000, kTcpSyn | kTcpAck).build(), kSkbPass,
              ZTSEG_REASON_ALLOW_CONNTRACK);

    expectIn(pkt(n_.web, n_.stranger).tcp(40001, 22).build(), kSkbDrop,
             ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectIn(pkt(n_.db, n_.stranger).tcp(40002, 22).build(), kSkbDrop,
             ZTSEG_REASON_DROP_POLICY_DENY);
    expectIn(pkt(n_.router, n_.stranger).tcp(40003, 22).build(), kSkbDrop,
             ZTSEG_REASON_DROP_UNLABELED);
}

TEST_P(HostSubject, HostEgressIsRestrictedAndRepliesPass) {
    hostPolicy(WorkloadMode::Enforce);
    expectOut(pkt(n_.stranger, n_.db).tcp(40000, 5432).build(), kSkbPass,
              ZTSEG_REASON_ALLOW_POLICY);
    expectIn(pkt(n_.db, n_.stranger).tcp(5432, 40000, kTcpSyn | kTcpAck).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_CONNTRACK);
    expectOut(pkt(n_.stranger, n_.web).tcp(40001, 443).build(), kSkbDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectOut(pkt(n_.stranger, n_.router).udp(40002, 53).build(), kSkbDrop,
              ZTSEG_REASON_DROP_UNLABELED);
}

TEST_P(HostSubject, KernelAnswersAreJudgedAsTheFlowTheyAnswer) {
    hostPolicy(WorkloadMode::Enforce);
    // a RST to a refused peer is the peer's SYN judged again: refused
    expectOut(pkt(n_.stranger, n_.web).tcp(22, 40000, kTcpRst | kTcpAck).build(), kSkbDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
    // an echo reply to an allowed peer passes only if its request would
    expectOut(pkt(n_.stranger, n_.api).icmpEcho(7, true).build(), kSkbDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(HostSubject, TheIngressStageJudgesADeclaredHostAddress) {
    hostPolicy(WorkloadMode::Enforce);
    expectXdp(pkt(n_.api, n_.aud).tcp(40000, 22).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(pkt(n_.web, n_.aud).tcp(40001, 22).build(), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectXdp(pkt(n_.db, n_.aud).tcp(40002, 22).build(), kXdpDrop, ZTSEG_REASON_DROP_POLICY_DENY);
    // and at the cgroup hooks, by the address, as before
    expectIn(pkt(n_.web, n_.aud).tcp(40001, 22).build(), kSkbDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(HostSubject, AuditModeOnlyReportsWouldDrops) {
    hostPolicy(WorkloadMode::Audit);
    expectIn(pkt(n_.web, n_.stranger).tcp(40001, 22).build(), kSkbPass, ZTSEG_REASON_AUDIT);
    auto e = onlyEvent(ZTSEG_REASON_DROP_DEFAULT_DENY, kWeb, kHostIdentity);
    EXPECT_EQ(e.verdict, ZTSEG_VERDICT_WOULD_DROP);
    expectXdp(pkt(n_.web, n_.aud).tcp(40002, 22).build(), kXdpPass, ZTSEG_REASON_PASS_TO_STACK);
}

TEST_P(HostSubject, AHostNoPolicySelectsIsNotJudged) {
    addRules({kSshFromApi});  // rules without a mode: nobody selects the host
    applyGen();
    expectIn(pkt(n_.web, n_.stranger).tcp(40001, 22).build(), kSkbPass,
             ZTSEG_REASON_PASS_NO_ENDPOINT);
    expectOut(pkt(n_.stranger, n_.web).tcp(40001, 443).build(), kSkbPass,
              ZTSEG_REASON_PASS_NO_ENDPOINT);
}

TEST_P(HostSubject, AWorkloadIsJudgedByItsOwnPolicyNotTheHosts) {
    addWorkload(kWeb, WorkloadMode::Enforce);  // this process becomes workload web
    hostPolicy(WorkloadMode::Enforce);
    // the host admits SSH from api; web (no rules) does not
    expectIn(pkt(n_.api, n_.stranger).tcp(40000, 22).build(), kSkbDrop,
             ZTSEG_REASON_DROP_DEFAULT_DENY);
    auto e = onlyEvent(ZTSEG_REASON_DROP_DEFAULT_DENY, kApi, kWeb);
    EXPECT_EQ(e.hook, ZTSEG_HOOK_CGROUP_INGRESS);
}

TEST_P(HostSubject, AProcessOfAWorkloadNoPolicySelectsIsNotTheHost) {
    addWorkload(kWeb, WorkloadMode::Unmanaged);  // declared, but no policy selects it
    hostPolicy(WorkloadMode::Enforce);
    expectIn(pkt(n_.web, n_.stranger).tcp(40001, 22).build(), kSkbPass,
             ZTSEG_REASON_PASS_NO_ENDPOINT);
    expectOut(pkt(n_.stranger, n_.web).tcp(40001, 443).build(), kSkbPass,
              ZTSEG_REASON_PASS_NO_ENDPOINT);
}

INSTANTIATE_TEST_SUITE_P(Families, HostSubject, ::testing::Values(Family::V4, Family::V6),
                         familyName);

// Processes of other network namespaces are not the host: a container
// nobody declared as a workload keeps today's verdict (its traffic still
// meets the interface ingress stage on the host's devices).
class HostSubjectOtherNetns : public HostSubject {
  protected:
    void customize(DatapathOptions& o) override { o.host_netns_cookie = 0xfeedface12345ull; }
};

TEST_P(HostSubjectOtherNetns, IsNotJudgedAsTheHost) {
    hostPolicy(WorkloadMode::Enforce);
    expectIn(pkt(n_.web, n_.stranger).tcp(40001, 22).build(), kSkbPass,
             ZTSEG_REASON_PASS_NO_ENDPOINT);
    // a declared host address is the host's wherever the socket lives
    expectIn(pkt(n_.web, n_.aud).tcp(40001, 22).build(), kSkbDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

INSTANTIATE_TEST_SUITE_P(Families, HostSubjectOtherNetns, ::testing::Values(Family::V4, Family::V6),
                         familyName);

}  // namespace
}  // namespace ztseg::test
