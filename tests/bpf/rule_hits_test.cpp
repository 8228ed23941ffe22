// Per-rule hit counters against the real kernel: every packet a rule decides
// is counted once (at the hook where its fate is final), admissions and
// refusals apart; counts follow the rule's fingerprint across generations and
// ztsegd restarts (adopt), a changed rule starts afresh, and a full counter
// table leaves rules enforced but uncounted.
#include <time.h>

#include <chrono>

#include "bpf/scenario.hpp"
#include "common/error.hpp"

namespace ztseg::test {
namespace {

constexpr uint64_t kFpAllowDb = 0x5555, kFpDenySsh = 0x7777, kFpAllowIn = 0x9999,
                   kFpDenyIn = 0xbbbb;

uint64_t wallNs() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

class RuleHits : public DatapathTest {
  protected:
    void SetUp() override {
        DatapathTest::SetUp();
        addIdentity("10.1.0.10/32", kWeb);
        addIdentity("10.1.0.20/32", kDb);
        addWorkload(kWeb, WorkloadMode::Enforce);
        gen().modes[kDb] = WorkloadMode::Enforce;
        addRule({kWeb, kDb, Direction::Egress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 5});
        addRule({kWeb, kDb, Direction::Egress, ZTSEG_PROTO_TCP, {22, 22}, Action::Deny, 7});
        addRule({kWeb, kDb, Direction::Ingress, ZTSEG_PROTO_TCP, {8080, 8080}, Action::Allow, 9});
        addRule({kWeb, kDb, Direction::Ingress, ZTSEG_PROTO_TCP, {23, 23}, Action::Deny, 11});
        gen().rule_fingerprints = {
            {5, kFpAllowDb}, {7, kFpDenySsh}, {9, kFpAllowIn}, {11, kFpDenyIn}};
        applyGen();
    }

    RuleHitCount hitsOf(uint32_t rule_id) {
        for (const RuleHitCount& h : dp().ruleHits()) {
            if (h.rule_id == rule_id) {
                return h;
            }
        }
        ADD_FAILURE() << "rule " << rule_id << " is not counted";
        return {};
    }

    static std::vector<uint8_t> out(uint16_t dport, uint8_t flags, uint16_t sport = 40000) {
        return PacketBuilder::ipv4("10.1.0.10", "10.1.0.20").tcp(sport, dport, flags).build();
    }
    static std::vector<uint8_t> in(uint16_t sport, uint16_t dport, uint8_t flags) {
        return PacketBuilder::ipv4("10.1.0.20", "10.1.0.10").tcp(sport, dport, flags).build();
    }
};

TEST_F(RuleHits, AllowedConnectionCountsEachPacketOnceWhereItsFateIsFinal) {
    const uint64_t before = wallNs();
    snapshotCounters();
    EXPECT_EQ(runCgroupEgress(out(5432, kTcpSyn)).retval, kSkbPass);
    // The reply crosses XDP (not counted there: it passes) and cgroup ingress.
    EXPECT_EQ(runXdp(in(5432, 40000, kTcpSyn | kTcpAck)).retval, kXdpPass);
    EXPECT_EQ(runCgroupIngress(in(5432, 40000, kTcpSyn | kTcpAck)).retval, kSkbPass);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(runCgroupEgress(out(5432, kTcpAck)).retval, kSkbPass);
    }
    RuleHitCount h = hitsOf(5);
    EXPECT_EQ(h.packets, 5u);
    EXPECT_EQ(h.admitted, 1u);
    EXPECT_EQ(h.refused, 0u);
    // The same bytes the verdict counters saw at the cgroup hooks.
    const Counters c = dp().counters();
    uint64_t bytes = 0;
    for (uint32_t hook : {ZTSEG_HOOK_CGROUP_EGRESS, ZTSEG_HOOK_CGROUP_INGRESS}) {
        bytes += c.at(hook, ZTSEG_REASON_ALLOW_POLICY).bytes +
                 c.at(hook, ZTSEG_REASON_ALLOW_CONNTRACK).bytes;
    }
    EXPECT_EQ(h.bytes, bytes);
    EXPECT_GT(h.bytes, 0u);
    // Last hit: wall time, within the coarse clock's tick of now.
    EXPECT_GE(h.last_unix_ns + 100'000'000ull, before);
    EXPECT_LE(h.last_unix_ns, wallNs() + 100'000'000ull);
    EXPECT_LE(h.since_unix_ns, before);
    EXPECT_EQ(hitsOf(7).packets, 0u);
    EXPECT_EQ(hitsOf(7).last_unix_ns, 0u);
}

TEST_F(RuleHits, SynJudgedAtXdpAndCgroupIsCountedOnce) {
    EXPECT_EQ(runXdp(in(50000, 8080, kTcpSyn)).retval, kXdpPass);
    EXPECT_EQ(runCgroupIngress(in(50000, 8080, kTcpSyn)).retval, kSkbPass);
    RuleHitCount h = hitsOf(9);
    EXPECT_EQ(h.packets, 1u);
    EXPECT_EQ(h.admitted, 1u);
}

TEST_F(RuleHits, DenyRulesCountRefusalsAtTheHookThatDrops) {
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(runCgroupEgress(out(22, kTcpSyn, uint16_t(40000 + i))).retval, kSkbDrop);
    }
    EXPECT_EQ(hitsOf(7).refused, 3u);
    EXPECT_EQ(hitsOf(7).packets, 3u);
    EXPECT_EQ(runXdp(in(50000, 23, kTcpSyn)).retval, kXdpDrop);
    EXPECT_EQ(hitsOf(11).refused, 1u);
    EXPECT_EQ(hitsOf(11).packets, 1u);
    EXPECT_EQ(hitsOf(5).packets, 0u);
}

TEST_F(RuleHits, AuditModeCountsWhatTheRuleWouldRefuse) {
    gen().modes[kWeb] = WorkloadMode::Audit;
    applyGen();
    EXPECT_EQ(runCgroupEgress(out(22, kTcpSyn)).retval, kSkbPass);
    EXPECT_EQ(hitsOf(7).refused, 1u);
    EXPECT_EQ(hitsOf(7).packets, 1u);
}

TEST_F(RuleHits, UnchangedRuleKeepsItsCountsAcrossGenerationsAChangedOneStartsAfresh) {
    EXPECT_EQ(runCgroupEgress(out(5432, kTcpSyn)).retval, kSkbPass);
    EXPECT_EQ(runCgroupEgress(out(22, kTcpSyn)).retval, kSkbDrop);
    const uint64_t since = hitsOf(5).since_unix_ns;
    // A rule added before them renumbers both; the deny rule's content changes.
    gen().rules.clear();
    addRule({kWeb, kDb, Direction::Egress, ZTSEG_PROTO_UDP, {53, 53}, Action::Allow, 1});
    addRule({kWeb, kDb, Direction::Egress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 6});
    addRule({kWeb, kDb, Direction::Egress, ZTSEG_PROTO_TCP, {2222, 2222}, Action::Deny, 8});
    gen().rule_fingerprints = {{1, 0x1111}, {6, kFpAllowDb}, {8, 0x8888}};
    applyGen();
    EXPECT_EQ(hitsOf(6).packets, 1u);
    EXPECT_EQ(hitsOf(6).admitted, 1u);
    EXPECT_EQ(hitsOf(6).since_unix_ns, since);
    EXPECT_EQ(hitsOf(8).refused, 0u);
    EXPECT_EQ(hitsOf(1).packets, 0u);
    // The tracked connection now counts for the same rule under its new id.
    EXPECT_EQ(runCgroupEgress(out(5432, kTcpAck)).retval, kSkbPass);
    EXPECT_EQ(hitsOf(6).packets, 2u);
}

TEST_F(RuleHits, CountsSurviveARestartAndTheNextApply) {
    EXPECT_EQ(runCgroupEgress(out(5432, kTcpSyn)).retval, kSkbPass);
    EXPECT_EQ(runCgroupEgress(out(5432, kTcpAck)).retval, kSkbPass);
    Datapath adopted = Datapath::adopt(options());
    auto hits = adopted.ruleHits();
    ASSERT_EQ(hits.size(), 4u);
    EXPECT_EQ(hits[0].rule_id, 5u);
    EXPECT_EQ(hits[0].packets, 2u);
    // The adopting process applies the same rules under new ids: counts stay.
    Generation g = gen();
    g.number = 100;
    for (Rule& r : g.rules) {
        r.rule_id += 100;
    }
    g.rule_fingerprints = {
        {105, kFpAllowDb}, {107, kFpDenySsh}, {109, kFpAllowIn}, {111, kFpDenyIn}};
    adopted.apply(g);
    bool found = false;
    for (const RuleHitCount& h : adopted.ruleHits()) {
        if (h.rule_id == 105) {
            found = true;
            EXPECT_EQ(h.packets, 2u);
        }
    }
    EXPECT_TRUE(found);
}

TEST_F(RuleHits, RulesWithoutFingerprintCountForTheirGenerationOnly) {
    gen().rule_fingerprints.clear();
    applyGen();
    EXPECT_EQ(runCgroupEgress(out(5432, kTcpSyn)).retval, kSkbPass);
    EXPECT_EQ(hitsOf(5).packets, 1u);
    applyGen();
    EXPECT_EQ(hitsOf(5).packets, 0u);
}

class RuleHitsFull : public RuleHits {
  protected:
    void customize(DatapathOptions& o) override { o.rule_capacity = 4; }  // 3 usable slots
};

TEST_F(RuleHitsFull, RulesBeyondCapacityAreEnforcedButNotCounted) {
    // Four rules, three slots: the last rule in id order has none.
    EXPECT_EQ(dp().uncountedRules(), 1u);
    EXPECT_EQ(dp().ruleHits().size(), 3u);
    EXPECT_EQ(runXdp(in(50000, 23, kTcpSyn)).retval, kXdpDrop);  // rule 11: still enforced
    EXPECT_EQ(runCgroupEgress(out(5432, kTcpSyn)).retval, kSkbPass);
    EXPECT_EQ(hitsOf(5).packets, 1u);
}

TEST_F(RuleHitsFull, SlotsComeFreeOnceNeitherTheActiveNorTheNewGenerationHoldsTheirRules) {
    EXPECT_EQ(runCgroupEgress(out(5432, kTcpSyn)).retval, kSkbPass);
    // Every rule changes: the generation in force still holds all three slots.
    gen().rule_fingerprints = {{5, 0x15}, {7, 0x17}, {9, 0x19}, {11, 0x1b}};
    applyGen();
    EXPECT_EQ(dp().uncountedRules(), 4u);
    EXPECT_TRUE(dp().ruleHits().empty());
    // Now nothing refers to the first generation's slots: they are reused,
    // zeroed, for the rules in force.
    applyGen();
    EXPECT_EQ(dp().uncountedRules(), 1u);
    EXPECT_EQ(dp().ruleHits().size(), 3u);
    EXPECT_EQ(hitsOf(5).packets, 0u);
    EXPECT_EQ(runCgroupEgress(out(5432, kTcpSyn, 40001)).retval, kSkbPass);
    EXPECT_EQ(hitsOf(5).packets, 1u);
    // Back to the first rules: they start afresh (their slots were released).
    gen().rule_fingerprints = {{5, kFpAllowDb}, {7, kFpDenySsh}, {9, kFpAllowIn}, {11, kFpDenyIn}};
    applyGen();
    EXPECT_EQ(dp().uncountedRules(), 4u);
    applyGen();
    EXPECT_EQ(dp().uncountedRules(), 1u);
    EXPECT_EQ(hitsOf(5).packets, 0u);
}

TEST_F(RuleHits, AFailedApplyLeavesCountsAndSlotsAsTheyWere) {
    EXPECT_EQ(runCgroupEgress(out(5432, kTcpSyn)).retval, kSkbPass);
    // A generation the datapath refuses (too many endpoints) after its
    // counters were assigned: one rule is new.
    Generation bad = gen();
    bad.number = 50;
    bad.rule_fingerprints = {{5, kFpAllowDb}, {7, 0x7070}, {9, kFpAllowIn}, {11, kFpDenyIn}};
    for (uint64_t i = 0; i < options().endpoint_capacity + 1; ++i) {
        bad.endpoints.push_back({1'000'000 + i, kWeb});
    }
    EXPECT_THROW(dp().apply(bad), CapacityError);
    const uint64_t after_failure = wallNs();
    EXPECT_EQ(hitsOf(5).packets, 1u);
    EXPECT_EQ(hitsOf(7).packets, 0u);
    // The next two applies see the true state: rule 5 keeps its count, and
    // the slot the failed apply took for the new rule is released ...
    applyGen();
    applyGen();
    EXPECT_EQ(hitsOf(5).packets, 1u);
    EXPECT_EQ(dp().ruleHits().size(), 4u);
    EXPECT_EQ(dp().uncountedRules(), 0u);
    // ... so that rule, when it really comes, starts in a fresh slot.
    gen().rule_fingerprints = bad.rule_fingerprints;
    applyGen();
    EXPECT_GE(hitsOf(7).since_unix_ns, after_failure);
    EXPECT_EQ(hitsOf(5).packets, 1u);
}

class RuleHitsOff : public RuleHits {
  protected:
    void customize(DatapathOptions& o) override { o.rule_counters = false; }
};

TEST_F(RuleHitsOff, NothingIsCountedAndEnforcementIsUnchanged) {
    EXPECT_EQ(runCgroupEgress(out(5432, kTcpSyn)).retval, kSkbPass);
    EXPECT_EQ(runCgroupEgress(out(22, kTcpSyn)).retval, kSkbDrop);
    EXPECT_TRUE(dp().ruleHits().empty());
}

}  // namespace
}  // namespace ztseg::test
