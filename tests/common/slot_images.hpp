// Map images: a slot's contents as key bytes -> value bytes, computed from
// a SlotContent, from a Generation without any grouping or reuse (the
// reference), or read from the kernel's active slot. Tests compare them.
#pragma once

#include <array>
#include <map>
#include <string>

#include "datapath/slot_content.hpp"
#include "datapath/slot_maps.hpp"

namespace ztseg::test {

using Image = std::map<std::string, std::string>;

template <typename K, typename V>
std::pair<std::string, std::string> keyValueBytes(const K& k, const V& v) {
    return {std::string(reinterpret_cast<const char*>(&k), sizeof(k)),
            std::string(reinterpret_cast<const char*>(&v), sizeof(v))};
}

// One image per slot map, by ztseg_slot_map (kSlotMaps order).
struct Images {
    std::array<Image, kSlotMapCount> maps;
    Image& operator[](ztseg_slot_map m) { return maps[m]; }
    const Image& operator[](ztseg_slot_map m) const { return maps[m]; }
    bool operator==(const Images&) const = default;
};

Images imagesOf(const SlotContent& c);
// The whole generation's entries, computed plainly (no grouping, no reuse).
Images referenceImages(const Generation& g);
// What the kernel's active slot holds, read through the maps pinned in pin_dir.
// Rule counter slots (ztseg_rules) are the counter table's choice, not the
// generation's content: left out here and in the images above, read with
// activeRuleSlots().
Images activeSlotImages(const std::string& pin_dir);
// The active slot's ztseg_rules: rule id -> its ztseg_rule_hits slot.
std::map<uint32_t, uint32_t> activeRuleSlots(const std::string& pin_dir);

}  // namespace ztseg::test
