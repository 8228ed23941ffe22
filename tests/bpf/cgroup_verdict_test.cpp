// docs/design.md#policy-model at cgroup_skb ingress and egress, IPv4 and IPv6: the exact
// per-workload verdict, connection tracking in both directions, audit mode,
// generation changes and the flow events that report them. The local workload
// is this process's cgroup (identity web, address web).
#include <arpa/inet.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "bpf/scenario.hpp"

namespace ztseg::test {
namespace {

std::array<uint32_t, 4> addrWords(bool v6, const std::string& text) {
    std::array<uint32_t, 4> w{};
    EXPECT_EQ(inet_pton(v6 ? AF_INET6 : AF_INET, text.c_str(), w.data()), 1) << text;
    return w;
}

class CgroupVerdict : public FamilyTest {
  protected:
    void SetUp() override {
        FamilyTest::SetUp();
        addHosts({{n_.web, kWeb}, {n_.db, kDb}, {n_.api, kApi}});
    }

    // This process becomes workload web in `mode`, with `rules`, as generation 1.
    void setup(WorkloadMode mode, const std::vector<Rule>& rules) {
        addWorkload(kWeb, mode);
        addRules(rules);
        applyGen();
    }

    void expectEvent(uint8_t verdict, uint8_t reason, uint32_t rule_id, uint8_t hook) {
        auto e = onlyEvent();
        EXPECT_EQ(e.verdict, verdict);
        EXPECT_EQ(e.reason, reason);
        EXPECT_EQ(e.rule_id, rule_id);
        EXPECT_EQ(e.hook, hook);
    }
};

constexpr Rule kWebFromApi8080{
    kWeb, kApi, Direction::Ingress, ZTSEG_PROTO_TCP, {8080, 8080}, Action::Allow, 1};
constexpr Rule kWebToDb5432{kWeb,          kDb, Direction::Egress, ZTSEG_PROTO_TCP, {5432, 5432},
                            Action::Allow, 2};

// ---- unlabeled, default deny, deny vs allow

TEST_P(CgroupVerdict, UnlabeledPeerDroppedAtIngress) {
    setup(WorkloadMode::Enforce,
          {{kWeb, kAnyIdentity, Direction::Ingress, kAnyProtocol, {}, Action::Allow, 3}});
    expectIn(pkt(n_.stranger, n_.web).tcp(40000, 8080).build(), kSkbDrop,
             ZTSEG_REASON_DROP_UNLABELED);
    auto e = onlyEvent(ZTSEG_REASON_DROP_UNLABELED, kUnlabeled, kWeb);
    EXPECT_EQ(e.verdict, ZTSEG_VERDICT_DROPPED);
}

TEST_P(CgroupVerdict, UnlabeledPeerDroppedAtEgress) {
    setup(WorkloadMode::Enforce,
          {{kWeb, kAnyIdentity, Direction::Egress, kAnyProtocol, {}, Action::Allow, 3}});
    expectOut(pkt(n_.web, n_.stranger).tcp(40000, 443).build(), kSkbDrop,
              ZTSEG_REASON_DROP_UNLABELED);
    auto e = onlyEvent(ZTSEG_REASON_DROP_UNLABELED, kWeb, kUnlabeled);
    EXPECT_EQ(e.direction, ZTSEG_DIR_EGRESS);
}

TEST_P(CgroupVerdict, IngressWithoutRuleDefaultDenied) {
    setup(WorkloadMode::Enforce, {kWebFromApi8080});
    expectIn(pkt(n_.db, n_.web).tcp(40000, 8080).build(), kSkbDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectEvent(ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_DEFAULT_DENY, 0,
                ZTSEG_HOOK_CGROUP_INGRESS);
}

TEST_P(CgroupVerdict, EgressWithoutRuleDefaultDenied) {
    setup(WorkloadMode::Enforce, {kWebToDb5432});
    expectOut(pkt(n_.web, n_.db).tcp(40000, 5433).build(), kSkbDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectEvent(ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_DEFAULT_DENY, 0, ZTSEG_HOOK_CGROUP_EGRESS);
}

TEST_P(CgroupVerdict, IngressRuleDoesNotAdmitEgress) {
    setup(WorkloadMode::Enforce, {kWebFromApi8080});
    expectOut(pkt(n_.web, n_.api).tcp(40000, 8080).build(), kSkbDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(CgroupVerdict, NarrowDenyBeatsBroadAllowAtIngress) {
    setup(WorkloadMode::Enforce,
          {{kWeb, kAnyIdentity, Direction::Ingress, ZTSEG_PROTO_TCP, {}, Action::Allow, 10},
           {kWeb, kApi, Direction::Ingress, ZTSEG_PROTO_TCP, {8080, 8080}, Action::Deny, 11}});
    expectIn(pkt(n_.api, n_.web).tcp(40000, 8080).build(), kSkbDrop, ZTSEG_REASON_DROP_POLICY_DENY);
    expectEvent(ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_POLICY_DENY, 11,
                ZTSEG_HOOK_CGROUP_INGRESS);
    EXPECT_EQ(dp().conntrackEntries(), 0u);
}

TEST_P(CgroupVerdict, BroadDenyBeatsNarrowAllowAtEgress) {
    setup(
        WorkloadMode::Enforce,
        {{kWeb, kDb, Direction::Egress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 20},
         {kWeb, kAnyIdentity, Direction::Egress, ZTSEG_PROTO_TCP, {5000, 5999}, Action::Deny, 21}});
    expectOut(pkt(n_.web, n_.db).tcp(40000, 5432).build(), kSkbDrop, ZTSEG_REASON_DROP_POLICY_DENY);
    expectEvent(ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_POLICY_DENY, 21, ZTSEG_HOOK_CGROUP_EGRESS);
}

// ---- allow + conntrack, both directions

TEST_P(CgroupVerdict, AllowedIngressTrackedForRepliesAndLaterPackets) {
    setup(WorkloadMode::Enforce, {kWebFromApi8080});
    expectIn(pkt(n_.api, n_.web).tcp(40000, 8080).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    EXPECT_EQ(dp().conntrackEntries(), 1u);
    expectOut(pkt(n_.web, n_.api).tcp(8080, 40000, kTcpSyn | kTcpAck).build(), kSkbPass,
              ZTSEG_REASON_ALLOW_CONNTRACK);
    expectIn(pkt(n_.api, n_.web).tcp(40000, 8080, kTcpAck).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_CONNTRACK);
    // only the admitting packet is reported
    expectEvent(ZTSEG_VERDICT_ALLOWED, ZTSEG_REASON_ALLOW_POLICY, 1, ZTSEG_HOOK_CGROUP_INGRESS);
}

TEST_P(CgroupVerdict, AllowedEgressTrackedForReplies) {
    setup(WorkloadMode::Enforce, {kWebToDb5432});
    expectOut(pkt(n_.web, n_.db).tcp(40000, 5432).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectIn(pkt(n_.db, n_.web).tcp(5432, 40000, kTcpSyn | kTcpAck).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_CONNTRACK);
    expectEvent(ZTSEG_VERDICT_ALLOWED, ZTSEG_REASON_ALLOW_POLICY, 2, ZTSEG_HOOK_CGROUP_EGRESS);
}

TEST_P(CgroupVerdict, ConntrackDistinguishesSourcePorts) {
    setup(WorkloadMode::Enforce, {kWebToDb5432});
    expectOut(pkt(n_.web, n_.db).tcp(40000, 5432).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    // a "reply" to a port web never used is a new ingress flow: no ingress rule
    expectIn(pkt(n_.db, n_.web).tcp(5432, 40001, kTcpSyn | kTcpAck).build(), kSkbDrop,
             ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(CgroupVerdict, ConntrackEntryBelongsToOneWorkload) {
    setup(WorkloadMode::Enforce, {kWebToDb5432});
    expectOut(pkt(n_.web, n_.db).tcp(40000, 5432).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    // this cgroup becomes another workload: web's connection admits nothing into it
    dp().upsertEndpoint({selfCgroupId(), kOther}, WorkloadMode::Enforce);
    expectIn(pkt(n_.db, n_.web).tcp(5432, 40000, kTcpSyn | kTcpAck).build(), kSkbDrop,
             ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(CgroupVerdict, IcmpEchoAllowedAndReplyTracked) {
    setup(WorkloadMode::Enforce,
          {{kWeb, kApi, Direction::Ingress, icmpProto(), {}, Action::Allow, 30}});
    expectIn(pkt(n_.api, n_.web).icmpEcho(777).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectOut(pkt(n_.web, n_.api).icmpEcho(777, true).build(), kSkbPass,
              ZTSEG_REASON_ALLOW_CONNTRACK);
    // an echo reply is judged as the request it answers (the kernel answers
    // pings without a socket): api may ping web, db may not
    expectOut(pkt(n_.web, n_.api).icmpEcho(778, true).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectOut(pkt(n_.web, n_.db).icmpEcho(779, true).build(), kSkbDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(CgroupVerdict, AnyProtocolAnyPortRuleAdmitsUdpAndRawProtocols) {
    setup(WorkloadMode::Enforce,
          {{kWeb, kDb, Direction::Egress, kAnyProtocol, {}, Action::Allow, 31}});
    expectOut(pkt(n_.web, n_.db).udp(40000, 53).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectOut(pkt(n_.web, n_.db).protocol(47).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectOut(pkt(n_.web, n_.api).udp(40000, 53).build(), kSkbDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(CgroupVerdict, PortRangeEdgesAtEgress) {
    setup(WorkloadMode::Enforce,
          {{kWeb, kDb, Direction::Egress, ZTSEG_PROTO_UDP, {1000, 1999}, Action::Allow, 32}});
    expectOut(pkt(n_.web, n_.db).udp(40000, 1000).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectOut(pkt(n_.web, n_.db).udp(40000, 1999).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectOut(pkt(n_.web, n_.db).udp(40000, 999).build(), kSkbDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectOut(pkt(n_.web, n_.db).udp(40000, 2000).build(), kSkbDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(CgroupVerdict, SctpAllowedAndTracked) {
    setup(WorkloadMode::Enforce,
          {{kWeb, kApi, Direction::Ingress, ZTSEG_PROTO_SCTP, {3868, 3868}, Action::Allow, 33}});
    expectIn(pkt(n_.api, n_.web).sctp(40000, 3868).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectOut(pkt(n_.web, n_.api).sctp(3868, 40000).build(), kSkbPass,
              ZTSEG_REASON_ALLOW_CONNTRACK);
    expectIn(pkt(n_.api, n_.web).sctp(40000, 3869).build(), kSkbDrop,
             ZTSEG_REASON_DROP_DEFAULT_DENY);
}

// ---- ICMP errors

TEST_P(CgroupVerdict, PathMtuErrorFromUnlabeledRouterAboutTrackedFlowAllowedRelated) {
    setup(WorkloadMode::Enforce, {kWebToDb5432});
    auto out = pkt(n_.web, n_.db).tcp(40000, 5432);
    expectOut(out.build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectIn(pathMtu(n_.router, n_.web, out), kSkbPass, ZTSEG_REASON_ALLOW_RELATED);
}

// A forged "port unreachable" from an address without identity would tear
// down a workload's connection: only path-MTU and time-exceeded pass.
TEST_P(CgroupVerdict, UnreachableFromUnlabeledSourceAboutTrackedFlowDropped) {
    setup(WorkloadMode::Enforce, {kWebToDb5432});
    auto out = pkt(n_.web, n_.db).tcp(40000, 5432);
    expectOut(out.build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectIn(unreachable(n_.stranger, n_.web, out), kSkbDrop, ZTSEG_REASON_DROP_UNLABELED);
    // from the labeled peer of the flow it is related
    expectIn(unreachable(n_.db, n_.web, out), kSkbPass, ZTSEG_REASON_ALLOW_RELATED);
}

TEST_P(CgroupVerdict, UnrelatedIcmpErrorFromUnlabeledRouterDropped) {
    setup(WorkloadMode::Enforce, {kWebToDb5432});
    auto out = pkt(n_.web, n_.db).tcp(40000, 5432);
    expectIn(unreachable(n_.router, n_.web, out), kSkbDrop, ZTSEG_REASON_DROP_UNLABELED);
}

TEST_P(CgroupVerdict, UnrelatedIcmpErrorFromLabeledPeerJudgedByPolicy) {
    setup(WorkloadMode::Enforce,
          {kWebToDb5432, {kWeb, kDb, Direction::Ingress, icmpProto(), {}, Action::Allow, 34}});
    auto out = pkt(n_.web, n_.db).tcp(40001, 5432);  // never sent
    expectIn(unreachable(n_.db, n_.web, out), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectIn(unreachable(n_.api, n_.web, out), kSkbDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(CgroupVerdict, IcmpErrorAboutTrackedEchoAllowedRelated) {
    setup(WorkloadMode::Enforce,
          {{kWeb, kDb, Direction::Egress, icmpProto(), {}, Action::Allow, 35}});
    auto ping = pkt(n_.web, n_.db).icmpEcho(4242);
    expectOut(ping.build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectIn(pathMtu(n_.router, n_.web, ping), kSkbPass, ZTSEG_REASON_ALLOW_RELATED);
}

TEST_P(CgroupVerdict, OutgoingIcmpErrorAboutTrackedFlowAllowedRelated) {
    setup(WorkloadMode::Enforce,
          {{kWeb, kApi, Direction::Ingress, ZTSEG_PROTO_UDP, {53, 53}, Action::Allow, 36}});
    auto query = pkt(n_.api, n_.web).udp(40000, 53);
    expectIn(query.build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    // web's stack answers "port unreachable": no egress ICMP rule; judged as
    // the query it answers, a tracked flow
    auto err = pkt(n_.web, n_.api).icmpError(n_.v6 ? 1 : 3, n_.v6 ? 4 : 3, query.icmpQuote());
    expectOut(err.build(), kSkbPass, ZTSEG_REASON_ALLOW_CONNTRACK);
    // an answer to a query db may not send is dropped
    auto other = pkt(n_.db, n_.web).udp(40000, 53);
    auto err2 = pkt(n_.web, n_.db).icmpError(n_.v6 ? 1 : 3, n_.v6 ? 4 : 3, other.icmpQuote());
    expectOut(err2.build(), kSkbDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

// The kernel's RST for a closed port leaves from the workload's address: it is
// judged as the peer's packet it answers, so open and closed ports look alike
// to a peer that may not connect.
TEST_P(CgroupVerdict, KernelRstJudgedAsTheConnectionAttemptItAnswers) {
    setup(WorkloadMode::Enforce,
          {{kWeb, kApi, Direction::Ingress, ZTSEG_PROTO_TCP, {8080, 8080}, Action::Allow, 37}});
    expectOut(pkt(n_.web, n_.api).tcp(8080, 40000, kTcpRst | kTcpAck).build(), kSkbPass,
              ZTSEG_REASON_ALLOW_POLICY);
    expectOut(pkt(n_.web, n_.api).tcp(22, 40000, kTcpRst | kTcpAck).build(), kSkbDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectOut(pkt(n_.web, n_.stranger).tcp(8080, 40000, kTcpRst | kTcpAck).build(), kSkbDrop,
              ZTSEG_REASON_DROP_UNLABELED);
}

// A generation change must not turn a related ICMP error (here from a router
// without identity, e.g. "fragmentation needed") into a reason to forget a
// connection the new generation still allows.
TEST_P(CgroupVerdict, IcmpErrorAfterGenerationChangeKeepsAllowedConnection) {
    setup(WorkloadMode::Enforce, {kWebToDb5432});
    auto out = pkt(n_.web, n_.db).tcp(40000, 5432);
    expectOut(out.build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    applyGen();  // generation 2, same rules
    expectIn(pathMtu(n_.router, n_.web, out), kSkbPass, ZTSEG_REASON_ALLOW_RELATED);
    expectIn(pkt(n_.db, n_.web).tcp(5432, 40000, kTcpSyn | kTcpAck).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_CONNTRACK);
}

// ---- audit mode

TEST_P(CgroupVerdict, AuditDefaultDenyBecomesOneWouldDropEvent) {
    setup(WorkloadMode::Audit, {kWebToDb5432});
    auto syn = pkt(n_.api, n_.web).tcp(40000, 22).build();
    expectIn(syn, kSkbPass, ZTSEG_REASON_AUDIT);
    EXPECT_EQ(counted(ZTSEG_HOOK_CGROUP_INGRESS, ZTSEG_REASON_DROP_DEFAULT_DENY), 0u);
    auto e = onlyEvent(ZTSEG_REASON_DROP_DEFAULT_DENY, kApi, kWeb);
    EXPECT_EQ(e.verdict, ZTSEG_VERDICT_WOULD_DROP);
    EXPECT_EQ(e.hook, ZTSEG_HOOK_CGROUP_INGRESS);
    // later packets and replies of the audited flow pass silently
    expectIn(pkt(n_.api, n_.web).tcp(40000, 22, kTcpAck).build(), kSkbPass, ZTSEG_REASON_AUDIT);
    expectOut(pkt(n_.web, n_.api).tcp(22, 40000, kTcpSyn | kTcpAck).build(), kSkbPass,
              ZTSEG_REASON_AUDIT);
    EXPECT_TRUE(takeEvents().empty());
}

TEST_P(CgroupVerdict, AuditUnlabeledPeerWouldDrop) {
    setup(WorkloadMode::Audit, {});
    expectOut(pkt(n_.web, n_.stranger).udp(40000, 53).build(), kSkbPass, ZTSEG_REASON_AUDIT);
    EXPECT_EQ(counted(ZTSEG_HOOK_CGROUP_EGRESS, ZTSEG_REASON_DROP_UNLABELED), 0u);
    expectEvent(ZTSEG_VERDICT_WOULD_DROP, ZTSEG_REASON_DROP_UNLABELED, 0, ZTSEG_HOOK_CGROUP_EGRESS);
}

TEST_P(CgroupVerdict, AuditPolicyDenyWouldDropCarriesRule) {
    setup(WorkloadMode::Audit,
          {{kWeb, kDb, Direction::Egress, ZTSEG_PROTO_TCP, {22, 22}, Action::Deny, 40}});
    expectOut(pkt(n_.web, n_.db).tcp(40000, 22).build(), kSkbPass, ZTSEG_REASON_AUDIT);
    expectEvent(ZTSEG_VERDICT_WOULD_DROP, ZTSEG_REASON_DROP_POLICY_DENY, 40,
                ZTSEG_HOOK_CGROUP_EGRESS);
}

TEST_P(CgroupVerdict, AuditAllowedFlowReportedAsAllowed) {
    setup(WorkloadMode::Audit, {kWebFromApi8080});
    expectIn(pkt(n_.api, n_.web).tcp(40000, 8080).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectEvent(ZTSEG_VERDICT_ALLOWED, ZTSEG_REASON_ALLOW_POLICY, 1, ZTSEG_HOOK_CGROUP_INGRESS);
    expectOut(pkt(n_.web, n_.api).tcp(8080, 40000, kTcpSyn | kTcpAck).build(), kSkbPass,
              ZTSEG_REASON_ALLOW_CONNTRACK);
}

TEST_P(CgroupVerdict, AuditedFlowEnforcedAfterSwitchToEnforce) {
    setup(WorkloadMode::Audit, {});
    expectIn(pkt(n_.api, n_.web).tcp(40000, 22).build(), kSkbPass, ZTSEG_REASON_AUDIT);
    gen().modes[kWeb] = WorkloadMode::Enforce;
    applyGen();
    expectIn(pkt(n_.api, n_.web).tcp(40000, 22, kTcpAck).build(), kSkbDrop,
             ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(CgroupVerdict, AuditedFlowTrackedAsAllowedOnceRuleAdded) {
    setup(WorkloadMode::Audit, {});
    expectIn(pkt(n_.api, n_.web).tcp(40000, 8080).build(), kSkbPass, ZTSEG_REASON_AUDIT);
    addRule(kWebFromApi8080);
    applyGen();
    expectIn(pkt(n_.api, n_.web).tcp(40000, 8080, kTcpAck).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_CONNTRACK);
}

// Switching the workload to enforce between applies (endpoint update, same
// generation) must end the pass-through of flows admitted only by audit.
TEST_P(CgroupVerdict, AuditedFlowEnforcedAfterEndpointSwitchedToEnforce) {
    setup(WorkloadMode::Audit, {});
    expectIn(pkt(n_.api, n_.web).tcp(40000, 22).build(), kSkbPass, ZTSEG_REASON_AUDIT);
    dp().upsertEndpoint({selfCgroupId(), kWeb}, WorkloadMode::Enforce);
    expectIn(pkt(n_.api, n_.web).tcp(40000, 22, kTcpAck).build(), kSkbDrop,
             ZTSEG_REASON_DROP_DEFAULT_DENY);
}

// ---- generation changes

TEST_P(CgroupVerdict, GenerationSwapRevokesTrackedConnection) {
    setup(WorkloadMode::Enforce, {kWebFromApi8080});
    expectIn(pkt(n_.api, n_.web).tcp(40000, 8080).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    takeEvents();
    gen().rules.clear();
    applyGen();
    expectOut(pkt(n_.web, n_.api).tcp(8080, 40000, kTcpSyn | kTcpAck).build(), kSkbDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectIn(pkt(n_.api, n_.web).tcp(40000, 8080, kTcpAck).build(), kSkbDrop,
             ZTSEG_REASON_DROP_DEFAULT_DENY);
    EXPECT_EQ(dp().conntrackEntries(), 0u);
    auto ev = takeEvents();
    ASSERT_EQ(ev.size(), 2u);
    EXPECT_EQ(ev[0].generation, 2u);
    EXPECT_EQ(ev[0].verdict, ZTSEG_VERDICT_DROPPED);
}

TEST_P(CgroupVerdict, GenerationSwapToDenyDropsTrackedConnection) {
    setup(WorkloadMode::Enforce, {kWebFromApi8080});
    expectIn(pkt(n_.api, n_.web).tcp(40000, 8080).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    takeEvents();
    gen().rules = {{kWeb, kApi, Direction::Ingress, ZTSEG_PROTO_TCP, {}, Action::Deny, 41}};
    applyGen();
    expectIn(pkt(n_.api, n_.web).tcp(40000, 8080, kTcpAck).build(), kSkbDrop,
             ZTSEG_REASON_DROP_POLICY_DENY);
    expectEvent(ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_POLICY_DENY, 41,
                ZTSEG_HOOK_CGROUP_INGRESS);
}

TEST_P(CgroupVerdict, GenerationSwapKeepsStillAllowedConnection) {
    setup(WorkloadMode::Enforce, {kWebFromApi8080});
    expectIn(pkt(n_.api, n_.web).tcp(40000, 8080).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    takeEvents();
    // another rule id, same admission
    gen().rules = {
        {kWeb, kApi, Direction::Ingress, ZTSEG_PROTO_TCP, {8000, 8999}, Action::Allow, 42}};
    applyGen();
    expectOut(pkt(n_.web, n_.api).tcp(8080, 40000, kTcpSyn | kTcpAck).build(), kSkbPass,
              ZTSEG_REASON_ALLOW_CONNTRACK);
    expectIn(pkt(n_.api, n_.web).tcp(40000, 8080, kTcpAck).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_CONNTRACK);
    EXPECT_EQ(dp().conntrackEntries(), 1u);
    EXPECT_TRUE(takeEvents().empty());
}

TEST_P(CgroupVerdict, GenerationSwapRejudgesWithPeersNewIdentity) {
    setup(WorkloadMode::Enforce, {kWebFromApi8080});
    expectIn(pkt(n_.api, n_.web).tcp(40000, 8080).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    for (auto& ip : gen().identities) {
        if (ip.identity == kApi) {
            ip.identity = kDb;  // api's address now belongs to db, which web does not admit
        }
    }
    applyGen();
    expectIn(pkt(n_.api, n_.web).tcp(40000, 8080, kTcpAck).build(), kSkbDrop,
             ZTSEG_REASON_DROP_DEFAULT_DENY);
}

// ---- event fields

TEST_P(CgroupVerdict, AllowedIngressEventFields) {
    setup(WorkloadMode::Enforce, {kWebFromApi8080});
    auto f = pkt(n_.api, n_.web).tcp(40000, 8080).build();
    expectIn(f, kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    auto e = onlyEvent();
    EXPECT_EQ(e.verdict, ZTSEG_VERDICT_ALLOWED);
    EXPECT_EQ(e.reason, ZTSEG_REASON_ALLOW_POLICY);
    EXPECT_EQ(e.rule_id, 1u);
    EXPECT_EQ(e.generation, 1u);
    EXPECT_EQ(e.hook, ZTSEG_HOOK_CGROUP_INGRESS);
    EXPECT_EQ(e.direction, ZTSEG_DIR_INGRESS);
    EXPECT_EQ(e.family, n_.v6 ? 6 : 4);
    EXPECT_EQ(e.proto, ZTSEG_PROTO_TCP);
    EXPECT_EQ(e.sport, 40000);
    EXPECT_EQ(e.dport, 8080);
    EXPECT_EQ(e.src_identity, kApi);
    EXPECT_EQ(e.dst_identity, kWeb);
    EXPECT_EQ(e.cgroup_id, selfCgroupId());
    EXPECT_EQ(e.pkt_len, f.size() - 14);  // cgroup_skb sees the IP packet
    auto s = addrWords(n_.v6, n_.api), d = addrWords(n_.v6, n_.web);
    EXPECT_EQ(std::memcmp(e.saddr, s.data(), 16), 0);
    EXPECT_EQ(std::memcmp(e.daddr, d.data(), 16), 0);
}

TEST_P(CgroupVerdict, AllowedEgressEventFields) {
    setup(WorkloadMode::Enforce, {kWebToDb5432});
    expectOut(pkt(n_.web, n_.db).tcp(40000, 5432).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    auto e = onlyEvent();
    EXPECT_EQ(e.verdict, ZTSEG_VERDICT_ALLOWED);
    EXPECT_EQ(e.rule_id, 2u);
    EXPECT_EQ(e.generation, 1u);
    EXPECT_EQ(e.hook, ZTSEG_HOOK_CGROUP_EGRESS);
    EXPECT_EQ(e.direction, ZTSEG_DIR_EGRESS);
    EXPECT_EQ(e.sport, 40000);
    EXPECT_EQ(e.dport, 5432);
    EXPECT_EQ(e.src_identity, kWeb);
    EXPECT_EQ(e.dst_identity, kDb);
    EXPECT_EQ(e.cgroup_id, selfCgroupId());
    auto s = addrWords(n_.v6, n_.web), d = addrWords(n_.v6, n_.db);
    EXPECT_EQ(std::memcmp(e.saddr, s.data(), 16), 0);
    EXPECT_EQ(std::memcmp(e.daddr, d.data(), 16), 0);
}

TEST_P(CgroupVerdict, IcmpEventCarriesTypeAndCode) {
    setup(WorkloadMode::Enforce, {});
    expectIn(pkt(n_.api, n_.web).icmpEcho(99).build(), kSkbDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    auto e = onlyEvent();
    EXPECT_EQ(e.proto, icmpProto());
    EXPECT_EQ(e.icmp_type, n_.v6 ? 128 : 8);
    EXPECT_EQ(e.icmp_code, 0);
    EXPECT_EQ(e.sport, 99);  // echo identifier
}

// ---- not subject / no endpoint

TEST_P(CgroupVerdict, NoEndpointPasses) {
    setup(WorkloadMode::Enforce, {});
    dp().removeEndpoint(selfCgroupId());
    // neither the socket's cgroup nor the local address is a managed workload's
    expectIn(pkt(n_.stranger, n_.router).tcp(40000, 22).build(), kSkbPass,
             ZTSEG_REASON_PASS_NO_ENDPOINT);
    expectOut(pkt(n_.router, n_.stranger).tcp(40000, 22).build(), kSkbPass,
              ZTSEG_REASON_PASS_NO_ENDPOINT);
    EXPECT_TRUE(takeEvents().empty());
}

// A socket created outside the workload (socket activation, a passed fd, the
// kernel's reply sockets) still carries the workload's traffic: judged by the
// local address.
TEST_P(CgroupVerdict, SocketOutsideWorkloadJudgedAsTheWorkloadOwningItsAddress) {
    setup(WorkloadMode::Enforce, {});
    dp().removeEndpoint(selfCgroupId());
    expectIn(pkt(n_.stranger, n_.web).tcp(40000, 22).build(), kSkbDrop,
             ZTSEG_REASON_DROP_UNLABELED);
    expectOut(pkt(n_.web, n_.api).tcp(40000, 22).build(), kSkbDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(CgroupVerdict, UnmanagedWorkloadPassesNoEndpoint) {
    setup(WorkloadMode::Unmanaged, {});
    expectIn(pkt(n_.api, n_.web).tcp(40000, 22).build(), kSkbPass, ZTSEG_REASON_PASS_NO_ENDPOINT);
}

TEST_P(CgroupVerdict, LoopbackNotSubject) {
    setup(WorkloadMode::Enforce, {});
    expectIn(pkt(n_.loop, n_.loop).tcp(40000, 22).build(), kSkbPass, ZTSEG_REASON_PASS_NOT_SUBJECT);
    expectOut(pkt(n_.loop, n_.loop).tcp(22, 40000).build(), kSkbPass,
              ZTSEG_REASON_PASS_NOT_SUBJECT);
    EXPECT_TRUE(takeEvents().empty());
}

TEST_P(CgroupVerdict, FirstFragmentJudgedByPortsLaterFragmentDropped) {
    setup(WorkloadMode::Enforce, {kWebFromApi8080});
    expectIn(pkt(n_.api, n_.web).fragment(77, 0, true).tcp(40000, 8080).payload(16).build(),
             kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    takeEvents();
    // the stack reassembles before cgroup_skb: a non-first fragment here is bogus
    expectIn(pkt(n_.api, n_.web).fragment(77, 40, false).tcp(40000, 8080).payload(16).build(),
             kSkbDrop, ZTSEG_REASON_DROP_FRAGMENT);
    expectEvent(ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_FRAGMENT, 0, ZTSEG_HOOK_CGROUP_INGRESS);
}

INSTANTIATE_TEST_SUITE_P(Families, CgroupVerdict, ::testing::Values(Family::V4, Family::V6),
                         familyName);

class CgroupNotSubject : public DatapathTest {};

TEST_F(CgroupNotSubject, NeighbourDiscoveryPassesBothHooks) {
    addIdentity("fd00:1::10/128", kWeb);
    addWorkload(kWeb, WorkloadMode::Enforce);
    applyGen();
    auto ns = PacketBuilder::ipv6("fd00:9::9", "fd00:1::10").ttl(255).icmp(135, 0).build();
    EXPECT_EQ(runCgroupIngress(ns).retval, kSkbPass);
    EXPECT_EQ(counted(ZTSEG_HOOK_CGROUP_INGRESS, ZTSEG_REASON_PASS_NOT_SUBJECT), 1u);
    auto na = PacketBuilder::ipv6("fd00:1::10", "fd00:9::9").ttl(255).icmp(136, 0).build();
    EXPECT_EQ(runCgroupEgress(na).retval, kSkbPass);
    EXPECT_EQ(counted(ZTSEG_HOOK_CGROUP_EGRESS, ZTSEG_REASON_PASS_NOT_SUBJECT), 1u);
    EXPECT_TRUE(takeEvents().empty());
}

}  // namespace
}  // namespace ztseg::test
