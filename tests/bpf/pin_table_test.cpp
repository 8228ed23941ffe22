// The datapath's pin table lists every map of the BPF object: a map it missed
// would be recreated empty at every restart instead of adopted. create()
// refuses such an object; these tests hold the table and the object together.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "bpf/datapath_fixture.hpp"
#include "datapath/pins.hpp"
#include "datapath/slot_maps.hpp"
#include "ztseg.skel.h"

namespace fs = std::filesystem;

namespace ztseg::test {
namespace {

std::vector<std::string> objectMaps() {
    std::vector<std::string> names;
    ztseg_bpf* skel = ztseg_bpf__open();
    EXPECT_NE(skel, nullptr);
    if (skel != nullptr) {
        const bpf_map* m = nullptr;
        bpf_object__for_each_map(m, skel->obj) {
            names.emplace_back(bpf_map__name(m));
        }
        ztseg_bpf__destroy(skel);
    }
    return names;
}

TEST(PinTable, AMapTheTableLacksIsReported) {
    const auto missing = Datapath::mapsMissingFromPinTable(
        {"ztseg_config", "ztseg_new_map", ".rodata", "ztseg_ident4.inner", "ztseg_events"});
    EXPECT_EQ(missing, std::vector<std::string>{"ztseg_new_map"});
}

TEST(PinTable, TheObjectHasNoMapTheTableLacks) {
    const auto maps = objectMaps();
    ASSERT_GE(maps.size(), 20u);
    EXPECT_EQ(Datapath::mapsMissingFromPinTable(maps), std::vector<std::string>{});
}

// The slot-map table (ZTSEG_SLOT_MAPS) and the object agree: every row is an
// array of ZTSEG_SLOTS maps whose inner template has the row's shape, and the
// object has no other array of maps.
TEST(SlotMapTable, MatchesTheObjectsArraysOfMaps) {
    ztseg_bpf* skel = ztseg_bpf__open();
    ASSERT_NE(skel, nullptr);
    size_t arrays_of_maps = 0;
    const bpf_map* m = nullptr;
    bpf_object__for_each_map(m, skel->obj) {
        arrays_of_maps += bpf_map__type(m) == BPF_MAP_TYPE_ARRAY_OF_MAPS;
    }
    EXPECT_EQ(arrays_of_maps, kSlotMaps.size());
    for (const SlotMapSpec& s : kSlotMaps) {
        bpf_map* outer = bpf_object__find_map_by_name(skel->obj, s.name);
        ASSERT_NE(outer, nullptr) << s.name;
        EXPECT_EQ(bpf_map__type(outer), BPF_MAP_TYPE_ARRAY_OF_MAPS) << s.name;
        EXPECT_EQ(bpf_map__max_entries(outer), uint32_t(ZTSEG_SLOTS)) << s.name;
        bpf_map* inner = bpf_map__inner_map(outer);
        ASSERT_NE(inner, nullptr) << s.name;
        EXPECT_EQ(bpf_map__type(inner), s.type) << s.name;
        EXPECT_EQ(bpf_map__key_size(inner), s.key_size) << s.name;
        EXPECT_EQ(bpf_map__value_size(inner), s.value_size) << s.name;
        EXPECT_EQ(bpf_map__max_entries(inner), DatapathOptions{}.*(s.capacity)) << s.name;
    }
    ztseg_bpf__destroy(skel);
}

class PinnedMaps : public DatapathTest {};

TEST_F(PinnedMaps, EveryMapOfTheObjectIsPinned) {
    for (const std::string& name : objectMaps()) {
        if (name.find('.') != std::string::npos) {
            continue;  // libbpf's internal maps
        }
        EXPECT_TRUE(fs::exists(pins::mapsDir(options().pin_dir) + "/" + name)) << name;
    }
}

}  // namespace
}  // namespace ztseg::test
