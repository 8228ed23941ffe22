// Incremental apply against the kernel: after every apply, whether patched in
// place or built fresh, the active slot's maps hold exactly what a plain full
// computation of the generation gives, and packets see the new rules.
#include <bpf/bpf.h>

#include <set>

#include "bpf/datapath_fixture.hpp"
#include "common/packet_builder.hpp"
#include "common/random_generation.hpp"
#include "common/slot_images.hpp"

namespace ztseg::test {
namespace {

constexpr IdentityId kWeb = 300, kDb = 301;

Generation webToDb(uint64_t number, uint64_t cgroup_id, uint16_t port) {
    Generation g;
    g.number = number;
    g.identities.push_back({IpPrefix::parse("10.1.0.10/32"), kWeb});
    g.identities.push_back({IpPrefix::parse("10.1.0.20/32"), kDb});
    g.modes[kDb] = WorkloadMode::Enforce;
    g.endpoints.push_back({cgroup_id, kDb});
    g.rules.push_back(
        {kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {port, port}, Action::Allow, 1});
    for (uint32_t i = 0; i < 2000; ++i) {  // other workloads' rules, untouched by the edits
        g.rules.push_back({5000 + i % 50, 6000 + i, Direction::Ingress, ZTSEG_PROTO_UDP,
                           PortRange{uint16_t(1000 + i), uint16_t(1000 + i)}, Action::Allow,
                           i + 2});
    }
    return g;
}

std::vector<uint8_t> synTo(uint16_t port) {
    return PacketBuilder::ipv4("10.1.0.10", "10.1.0.20").tcp(40000, port).build();
}

class IncrementalApply : public DatapathTest {
  protected:
    bool passesIngress(uint16_t port) {
        dp().flushConntrack();
        return runCgroupIngress(synTo(port)).retval == kSkbPass;
    }
};

TEST_F(IncrementalApply, OneRuleChangeWritesOneEntryAndTakesEffect) {
    uint64_t cg = selfCgroupId();
    dp().apply(webToDb(1, cg, 1000));
    EXPECT_FALSE(dp().lastApply().incremental) << "first apply: nothing to patch";
    dp().apply(webToDb(2, cg, 1000));
    EXPECT_FALSE(dp().lastApply().incremental) << "the other slot was never written";

    // Slot of generation 1 is patched into generation 3: port 1000 -> 2000.
    dp().apply(webToDb(3, cg, 2000));
    EXPECT_TRUE(dp().lastApply().incremental);
    EXPECT_EQ(dp().lastApply().map_writes, 2u) << "one delete (port 1000), one insert (2000)";
    EXPECT_EQ(dp().activeGeneration(), 3u);
    EXPECT_FALSE(passesIngress(1000));
    EXPECT_TRUE(passesIngress(2000));
    EXPECT_EQ(activeSlotImages(options().pin_dir), referenceImages(webToDb(3, cg, 2000)));

    // And back: the slot of generation 2 (port 1000) becomes generation 4 (port 3000).
    dp().apply(webToDb(4, cg, 3000));
    EXPECT_TRUE(dp().lastApply().incremental);
    EXPECT_FALSE(passesIngress(2000));
    EXPECT_TRUE(passesIngress(3000));
    EXPECT_EQ(activeSlotImages(options().pin_dir), referenceImages(webToDb(4, cg, 3000)));
}

TEST_F(IncrementalApply, RandomEditsLeaveExactlyTheFullBuildContent) {
    RandomGenerations r(11);
    Generation g = r.generation(1);
    int incremental = 0;
    for (uint64_t n = 1; n <= 60; ++n) {
        g = n % 15 == 0 ? r.generation(n) : r.mutate(g, n);
        dp().apply(g);
        incremental += dp().lastApply().incremental;
        ASSERT_EQ(activeSlotImages(options().pin_dir), referenceImages(g)) << "generation " << n;
        ASSERT_EQ(dp().activeGeneration(), n);
        // Every rule has its own counter slot, patched or built.
        std::set<uint32_t> rule_ids, slots;
        for (const Rule& rule : g.rules) {
            rule_ids.insert(rule.rule_id);
        }
        std::set<uint32_t> counted;
        for (const auto& [rule, slot] : activeRuleSlots(options().pin_dir)) {
            counted.insert(rule);
            EXPECT_NE(slot, 0u);
            EXPECT_TRUE(slots.insert(slot).second) << "slot " << slot << " given twice";
        }
        ASSERT_EQ(counted, rule_ids) << "generation " << n;
    }
    EXPECT_GT(incremental, 40) << "small edits should be patched in place";
}

TEST_F(IncrementalApply, RollbackAfterPatchReturnsToTheIntactPreviousGeneration) {
    uint64_t cg = selfCgroupId();
    for (uint64_t n = 1; n <= 4; ++n) {
        dp().apply(webToDb(n, cg, uint16_t(1000 * n)));
    }
    ASSERT_TRUE(dp().lastApply().incremental);
    dp().rollback();
    EXPECT_EQ(dp().activeGeneration(), 3u);
    EXPECT_TRUE(passesIngress(3000));
    EXPECT_FALSE(passesIngress(4000));
    EXPECT_EQ(activeSlotImages(options().pin_dir), referenceImages(webToDb(3, cg, 3000)));
    // The next apply patches the slot just left (generation 4) without a mix.
    dp().apply(webToDb(5, cg, 5000));
    EXPECT_EQ(activeSlotImages(options().pin_dir), referenceImages(webToDb(5, cg, 5000)));
    EXPECT_EQ(dp().previousGeneration(), 3u);
}

// Endpoints added between applies are part of the active slot; the next
// patch of the other slot must still carry exactly the generation's endpoints.
TEST_F(IncrementalApply, EndpointChangesBetweenAppliesStayConsistent) {
    uint64_t cg = selfCgroupId();
    dp().apply(webToDb(1, cg, 1000));
    dp().apply(webToDb(2, cg, 1000));
    dp().upsertEndpoint({cg + 1000, kWeb}, WorkloadMode::Enforce);
    Generation g3 = webToDb(3, cg, 1000);
    g3.endpoints.push_back({cg + 1000, kWeb});
    g3.modes[kWeb] = WorkloadMode::Enforce;
    dp().apply(g3);
    EXPECT_EQ(activeSlotImages(options().pin_dir), referenceImages(g3));
    dp().removeEndpoint(cg + 1000);
    Generation g4 = webToDb(4, cg, 1000);
    g4.modes[kWeb] = WorkloadMode::Enforce;
    dp().apply(g4);
    EXPECT_TRUE(dp().lastApply().incremental);
    EXPECT_EQ(activeSlotImages(options().pin_dir), referenceImages(g4));
}

// Another writer (a second process adopting the pins) replaced a slot: this
// process must notice and rebuild rather than patch a slot it no longer knows.
TEST_F(IncrementalApply, SlotRewrittenByAnotherWriterIsRebuiltNotPatched) {
    uint64_t cg = selfCgroupId();
    dp().apply(webToDb(1, cg, 1000));
    dp().apply(webToDb(2, cg, 2000));
    {
        Datapath other = Datapath::adopt(options());
        other.apply(webToDb(3, cg, 3000));  // rewrites the slot of generation 1
    }
    dp().apply(webToDb(4, cg, 4000));  // patches generation 2's slot, which is still ours
    EXPECT_TRUE(dp().lastApply().incremental);
    EXPECT_EQ(activeSlotImages(options().pin_dir), referenceImages(webToDb(4, cg, 4000)));
    dp().apply(webToDb(5, cg, 5000));  // now the slot the other writer built
    EXPECT_FALSE(dp().lastApply().incremental);
    EXPECT_EQ(activeSlotImages(options().pin_dir), referenceImages(webToDb(5, cg, 5000)));
    EXPECT_TRUE(passesIngress(5000));
}

}  // namespace
}  // namespace ztseg::test
