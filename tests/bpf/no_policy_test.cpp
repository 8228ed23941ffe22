// Before the first generation is active (ZTSEG_CFG_ACTIVE_SLOT == 0) there
// are no identities: judging would call every source `unlabeled` and cut a
// server off the moment ztsegd starts, its operator included. So until then
// both XDP programs pass to the stack (counted `pass-to-stack`); only what no
// policy could admit (malformed, martian) is still dropped.
#include <vector>

#include "bpf/scenario.hpp"

namespace ztseg::test {
namespace {

class NoPolicy : public FamilyTest {
  protected:
    void expectPassed(const PacketBuilder& p) {
        expectXdp(p.build(), kXdpPass, ZTSEG_REASON_PASS_TO_STACK);
        expectXdpL3(p.buildL3(), kXdpPass, ZTSEG_REASON_PASS_TO_STACK);
    }
};

TEST_P(NoPolicy, UnlabeledSourcesPassToStack) {
    ASSERT_EQ(dp().activeGeneration(), 0u);
    expectPassed(pkt(n_.stranger, n_.router).tcp(40000, 22));
    expectPassed(pkt(n_.stranger, n_.db).udp(4000, 53));
    expectPassed(pkt(n_.stranger, n_.db).icmpEcho(1));
    expectPassed(pkt(n_.stranger, n_.db).fragment(5, 40, false).payload(16));
    EXPECT_TRUE(takeEvents().empty()) << "a pass is no event";
}

TEST_P(NoPolicy, MalformedStillDropped) {
    auto p = pkt(n_.stranger, n_.router).tcp(40000, 22).buildL3();
    p.resize(n_.v6 ? 39 : 19);
    expectXdpL3(p, kXdpDrop, ZTSEG_REASON_DROP_MALFORMED);
}

// The first generation ends it, even one without any identity.
TEST_P(NoPolicy, FirstGenerationJudges) {
    applyGen();
    expectXdp(pkt(n_.stranger, n_.router).tcp(40000, 22).build(), kXdpDrop,
              ZTSEG_REASON_DROP_UNLABELED);
    expectXdpL3(pkt(n_.stranger, n_.router).tcp(40000, 22).buildL3(), kXdpDrop,
                ZTSEG_REASON_DROP_UNLABELED);
}

INSTANTIATE_TEST_SUITE_P(Families, NoPolicy, ::testing::Values(Family::V4, Family::V6), familyName);

}  // namespace
}  // namespace ztseg::test
