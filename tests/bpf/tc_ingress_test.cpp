// The interface ingress stage as tc at tcx ingress (ztseg_tcx, ztseg_tcx_l3:
// what virtual devices run) decides exactly what XDP decides: the same cases
// run through both programs must give the same verdict, move the same counter
// and emit the same flow event. (ctest's bpf_packet_tests_tcx also reruns
// every XDP packet test through tc.) tc's own verdicts: TCX_DROP, and
// TCX_NEXT for a pass, so programs attached after ztseg still run.
#include <string>
#include <vector>

#include "bpf/scenario.hpp"

namespace ztseg::test {
namespace {

class TcIngress : public FamilyTest {
  protected:
    void SetUp() override {
        FamilyTest::SetUp();
        addHosts({{n_.web, kWeb}, {n_.db, kDb}, {n_.api, kApi}, {n_.aud, kAud}, {n_.ext, kExt}});
        addWorkload(kWeb, WorkloadMode::Enforce);
        gen().modes[kDb] = WorkloadMode::Enforce;
        gen().modes[kAud] = WorkloadMode::Audit;
    }

    struct Outcome {
        uint32_t verdict;  // kXdpPass / kXdpDrop (tc's mapped onto them)
        std::string counted;
        std::vector<std::pair<uint8_t, uint8_t>> events;  // (reason, hook)
    };
    Outcome runOnce(Ingress which, const std::vector<uint8_t>& frame, bool l3) {
        ingress(which);
        snapshotCounters();
        Outcome o;
        o.verdict = (l3 ? runXdpL3(frame) : runXdp(frame)).retval;
        o.counted = moved(ZTSEG_HOOK_XDP);
        for (const auto& e : takeEvents()) {
            o.events.emplace_back(e.reason, e.hook);
        }
        return o;
    }
    // The same frame through XDP and tc: the same verdict, counters, events.
    void expectSameAsXdp(const std::string& what, const std::vector<uint8_t>& frame,
                         bool l3 = false) {
        Outcome x = runOnce(Ingress::Xdp, frame, l3);
        Outcome t = runOnce(Ingress::Tcx, frame, l3);
        EXPECT_EQ(t.verdict, x.verdict) << what << " (1 = drop, 2 = pass)";
        EXPECT_EQ(t.counted, x.counted) << what;
        EXPECT_EQ(t.events, x.events) << what;
    }
};

constexpr Rule kDbFromWeb5432{
    kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 7};

TEST_P(TcIngress, UnlabeledSourceDroppedWithTcxDropCounterAndEvent) {
    addRule(kDbFromWeb5432);
    applyGen();
    snapshotCounters();
    EXPECT_EQ(runTcx(pkt(n_.stranger, n_.db).tcp(40000, 5432).build()).retval, kTcxDrop);
    EXPECT_EQ(counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_UNLABELED), 1u) << moved(ZTSEG_HOOK_XDP);
    EXPECT_EQ(countedAll(ZTSEG_HOOK_XDP), 1u) << moved(ZTSEG_HOOK_XDP);
    auto e = onlyEvent(ZTSEG_REASON_DROP_UNLABELED, kUnlabeled, kDb);
    EXPECT_EQ(e.verdict, ZTSEG_VERDICT_DROPPED);
    EXPECT_EQ(e.hook, ZTSEG_HOOK_XDP) << "tc reports as the interface ingress stage";
}

TEST_P(TcIngress, AllowedFlowPassesAsTcxNextSoLaterProgramsStillRun) {
    addRule(kDbFromWeb5432);
    applyGen();
    snapshotCounters();
    EXPECT_EQ(runTcx(pkt(n_.web, n_.db).tcp(40000, 5432).build()).retval, kTcxNext);
    EXPECT_EQ(counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_ALLOW_POLICY), 1u) << moved(ZTSEG_HOOK_XDP);
    EXPECT_TRUE(takeEvents().empty());
}

TEST_P(TcIngress, NoPolicyYetPassesEverything) {
    snapshotCounters();
    EXPECT_EQ(runTcx(pkt(n_.stranger, n_.db).tcp(40000, 5432).build()).retval, kTcxNext);
    EXPECT_EQ(counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_PASS_TO_STACK), 1u) << moved(ZTSEG_HOOK_XDP);
}

TEST_P(TcIngress, IpFirstProgramDropsUnlabeledSource) {
    addRule(kDbFromWeb5432);
    applyGen();
    snapshotCounters();
    EXPECT_EQ(runTcxL3(pkt(n_.stranger, n_.db).tcp(40000, 5432).buildL3()).retval, kTcxDrop);
    EXPECT_EQ(counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_UNLABELED), 1u) << moved(ZTSEG_HOOK_XDP);
}

TEST_P(TcIngress, EveryCaseDecidedAsXdpDecidesIt) {
    addRule(kDbFromWeb5432);
    addRule({kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {6000, 6000}, Action::Deny, 8});
    addRule({kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {6000, 6000}, Action::Allow, 9});
    applyGen();
    auto out = pkt(n_.web, n_.db).tcp(40000, 5432);
    const std::vector<std::pair<std::string, std::vector<uint8_t>>> cases = {
        {"unlabeled SYN", pkt(n_.stranger, n_.db).tcp(40000, 5432).build()},
        {"unlabeled to unmanaged", pkt(n_.stranger, n_.ext).udp(5000, 53).build()},
        {"allowed SYN", pkt(n_.web, n_.db).tcp(40000, 5432).build()},
        {"wrong port", pkt(n_.web, n_.db).tcp(40000, 5433).build()},
        {"deny beats allow", pkt(n_.web, n_.db).tcp(40000, 6000).build()},
        {"untracked reply", pkt(n_.db, n_.web).tcp(5432, 40000, kTcpSyn | kTcpAck).build()},
        {"audited destination", pkt(n_.stranger, n_.aud).tcp(40000, 22).build()},
        {"unmanaged destination", pkt(n_.web, n_.ext).tcp(40000, 22).build()},
        {"echo", pkt(n_.web, n_.db).icmpEcho(4321).build()},
        {"unrelated ICMP error", unreachable(n_.api, n_.web, out)},
        {"forged loopback source", pkt(n_.loop, n_.db).tcp(40000, 5432).build()},
        {"VLAN-tagged unlabeled", pkt(n_.stranger, n_.db).vlan(7).tcp(40000, 5432).build()},
        {"first fragment", pkt(n_.stranger, n_.db).fragment(77, 0, true).tcp(40000, 5432).build()},
        {"later fragment", pkt(n_.web, n_.db).fragment(78, 16, false).tcp(40000, 5432).build()},
        {"truncated TCP",
         [&] {
             auto f = pkt(n_.web, n_.db).tcp(40000, 5432).build();
             f.resize(f.size() - 12);
             return f;
         }()},
        {"ARP", PacketBuilder::arpRequest("10.0.0.1", "10.0.0.2")},
    };
    for (const auto& [what, frame] : cases) {
        expectSameAsXdp(what, frame);
    }
    expectSameAsXdp("IP-first unlabeled", pkt(n_.stranger, n_.db).tcp(40000, 5432).buildL3(), true);
    expectSameAsXdp("IP-first allowed", pkt(n_.web, n_.db).tcp(40000, 5432).buildL3(), true);
}

INSTANTIATE_TEST_SUITE_P(Families, TcIngress, ::testing::Values(Family::V4, Family::V6),
                         familyName);

}  // namespace
}  // namespace ztseg::test
