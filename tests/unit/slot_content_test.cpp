// Incremental apply planning: a slot's content built from a generation, and
// the diff that turns one slot into another. The diff applied to the old
// slot's entries must give exactly the entries a full build would write.
#include "datapath/slot_content.hpp"

#include <gtest/gtest.h>

#include "common/random_generation.hpp"
#include "common/slot_images.hpp"

namespace ztseg {
namespace {

using test::Image;
using test::Images;
using test::imagesOf;
using test::RandomGenerations;

void applyDiff(Image& im, const MapDiff& d) {
    auto bytes = [](const uint8_t* p, size_t n) {
        return std::string(reinterpret_cast<const char*>(p), n);
    };
    for (size_t i = 0; i < d.deletes.size(); ++i) {
        ASSERT_EQ(im.erase(bytes(d.deletes.key(i), d.deletes.keySize())), 1u)
            << "diff deletes a key that is not there";
    }
    for (size_t i = 0; i < d.upserts.size(); ++i) {
        im[bytes(d.upserts.key(i), d.upserts.keySize())] =
            bytes(d.upserts.value(i), d.upserts.valueSize());
    }
}

TEST(SlotContent, MatchesAPlainFullComputation) {
    RandomGenerations r(1);
    for (int i = 0; i < 200; ++i) {
        Generation g = r.generation(1);
        EXPECT_EQ(imagesOf(buildSlotContent(g, {})), test::referenceImages(g))
            << "generation #" << i;
    }
}

// Old slot + diff == new slot, for random and for small edits, with reuse on.
TEST(SlotContent, DiffTurnsOneSlotIntoTheOther) {
    RandomGenerations r(2);
    for (int i = 0; i < 300; ++i) {
        Generation a = r.generation(1);
        Generation b = i % 2 ? r.generation(2) : r.mutate(a, 2);
        SlotContent ca = buildSlotContent(a, {});
        SlotContent cb = buildSlotContent(b, {&ca});
        Images im = imagesOf(ca);
        SlotDiff d = diffSlots(ca, cb);
        for (const SlotMapSpec& s : kSlotMaps) {
            applyDiff(im[s.id], d[s.id]);
        }
        ASSERT_EQ(im, test::referenceImages(b)) << "pair #" << i;
    }
}

TEST(SlotContent, IdenticalGenerationsShareContentAndNeedNoWrites) {
    RandomGenerations r(3);
    Generation a = r.generation(1);
    SlotContent ca = buildSlotContent(a, {});
    Generation b = a;
    b.number = 2;
    SlotContent cb = buildSlotContent(b, {&ca});
    EXPECT_EQ(cb.identities, ca.identities);
    ASSERT_EQ(cb.groups.size(), ca.groups.size());
    for (size_t i = 0; i < cb.groups.size(); ++i) {
        EXPECT_EQ(cb.groups[i], ca.groups[i]) << "group " << cb.groups[i].first << " recomputed";
    }
    EXPECT_EQ(diffSlots(ca, cb).size(), 0u);
}

// Granting raw sockets changes the identity's flags everywhere they are
// written (address maps and endpoints): the earlier identity table is not reused.
TEST(SlotContent, RawSocketGrantRewritesTheIdentitysFlags) {
    Generation a;
    a.number = 1;
    a.identities.push_back({IpPrefix::parse("10.0.0.1/32"), 300});
    a.modes[300] = WorkloadMode::Enforce;
    a.endpoints.push_back({77, 300});
    SlotContent ca = buildSlotContent(a, {});
    Generation b = a;
    b.number = 2;
    b.raw_sockets.insert(300);
    SlotContent cb = buildSlotContent(b, {&ca});
    EXPECT_NE(cb.identities, ca.identities);
    SlotDiff d = diffSlots(ca, cb);
    ASSERT_EQ(d[ZTSEG_SLOT_HOST4].upserts.size(), 1u);
    EXPECT_EQ(d[ZTSEG_SLOT_HOST4].upserts.valueAs<ztseg_identity_info>(0).flags,
              ZTSEG_IDF_ENFORCE | ZTSEG_IDF_RAW_SOCKETS);
    ASSERT_EQ(d[ZTSEG_SLOT_ENDPOINTS].upserts.size(), 1u);
    EXPECT_EQ(d[ZTSEG_SLOT_ENDPOINTS].upserts.valueAs<ztseg_identity_info>(0).flags,
              ZTSEG_IDF_ENFORCE | ZTSEG_IDF_RAW_SOCKETS);
    EXPECT_EQ(d.size(), 2u);
    // Unmanaged identities get no flags, a grant notwithstanding.
    Generation c = b;
    c.modes.clear();
    EXPECT_EQ(identityFlags(c, 300), 0u);
}

// One more allow rule for one workload: only that workload's group is
// recomputed and only its new entries are written.
TEST(SlotContent, OneRuleChangeTouchesOneGroup) {
    Generation a;
    a.number = 1;
    for (uint32_t w = 0; w < 100; ++w) {
        for (uint32_t p = 0; p < 10; ++p) {
            a.rules.push_back({256 + w, 1000 + p, Direction::Ingress, ZTSEG_PROTO_TCP,
                               PortRange{uint16_t(80 + p), uint16_t(80 + p)}, Action::Allow,
                               w * 10 + p + 1});
        }
    }
    SlotContent ca = buildSlotContent(a, {});
    Generation b = a;
    b.number = 2;
    b.rules.push_back(
        {300, 2000, Direction::Ingress, ZTSEG_PROTO_UDP, PortRange{53, 53}, Action::Allow, 5000});
    SlotContent cb = buildSlotContent(b, {&ca});
    size_t recomputed = 0;
    ASSERT_EQ(cb.groups.size(), ca.groups.size());
    for (size_t i = 0; i < cb.groups.size(); ++i) {
        recomputed += cb.groups[i].second != ca.groups[i].second;
    }
    EXPECT_EQ(recomputed, 1u);
    SlotDiff d = diffSlots(ca, cb);
    EXPECT_EQ(d[ZTSEG_SLOT_POLICY].upserts.size(), 1u);
    EXPECT_EQ(d[ZTSEG_SLOT_POLICY].deletes.size(), 0u);
    EXPECT_EQ(d.size(), 1u);
}

TEST(SlotContent, DuplicatePrefixLastOneWins) {
    Generation g;
    g.number = 1;
    g.identities.push_back({IpPrefix::parse("10.0.0.1/32"), 300});
    g.identities.push_back({IpPrefix::parse("10.0.0.1/32"), 301});
    SlotContent c = buildSlotContent(g, {});
    ASSERT_EQ(c.identities->h4.size(), 1u);
    EXPECT_EQ(c.identities->h4[0].value.identity, 301u);
    EXPECT_TRUE(c.identities->v4.empty()) << "host addresses go to the exact-match map";
    EXPECT_EQ(c.identities->slotFlags(), 0u);
}

TEST(SlotContent, EndpointEditsKeepTheTableSorted) {
    std::vector<EndpointEntry> t;
    upsertEndpointEntry(t, {{30}, {300, 1}});
    upsertEndpointEntry(t, {{10}, {301, 1}});
    upsertEndpointEntry(t, {{20}, {302, 2}});
    upsertEndpointEntry(t, {{10}, {303, 2}});
    ASSERT_EQ(t.size(), 3u);
    EXPECT_EQ(t[0].value.identity, 303u);
    eraseEndpointEntry(t, 20);
    eraseEndpointEntry(t, 99);
    ASSERT_EQ(t.size(), 2u);
    EXPECT_EQ(t[1].key.cgroup_id, 30u);
}

// Every slot map's entries come packed with the row's key and value sizes; an
// entry of another size is refused, not written.
TEST(SlotContent, PackedEntriesFollowTheSlotMapTable) {
    RandomGenerations r(4);
    SlotContent c = buildSlotContent(r.generation(1), {});
    size_t total = 0;
    for (const SlotMapSpec& s : kSlotMaps) {
        PackedEntries e = slotEntries(c, s.id);
        EXPECT_EQ(e.keySize(), s.key_size) << s.name;
        EXPECT_EQ(e.valueSize(), s.value_size) << s.name;
        EXPECT_EQ(e.size(), slotEntryCount(c, s.id)) << s.name;
        total += e.size();
    }
    EXPECT_GT(total, 0u);
    PackedEntries ident4(kSlotMaps[ZTSEG_SLOT_IDENT4]);
    EXPECT_THROW(ident4.push(ztseg_host4_key{}, ztseg_identity_info{}), std::logic_error);
    EXPECT_THROW(ident4.valueAs<uint16_t>(0), std::logic_error);
}

}  // namespace
}  // namespace ztseg
