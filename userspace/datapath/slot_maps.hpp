// The per-generation (slotted) maps as a table, one row each, generated from
// ZTSEG_SLOT_MAPS in abi.h (docs/design.md#slot-maps). Every loop over them
// in userspace walks this table: pins, slot bookkeeping, creating, filling and
// patching inner maps, the capacity check, and the tests' map images.
#pragma once

#include <linux/bpf.h>

#include <array>
#include <cstddef>
#include <cstdint>

#include "abi.h"
#include "datapath/options.hpp"

namespace ztseg {

struct SlotMapSpec {
    ztseg_slot_map id;
    const char* name;        // the ARRAY_OF_MAPS, pinned at maps/<name>
    const char* inner_name;  // the inner maps created for every generation
    bpf_map_type type;       // of the inner maps
    uint32_t key_size;
    uint32_t value_size;
    uint32_t DatapathOptions::*capacity;  // the inner maps' max_entries
    const char* capacity_option;          // ztsegd.yaml datapath.<option>
    const char* bounds;  // what the capacity bounds; rows that name the same thing share it
    // LPM tries have no batch update.
    constexpr bool batch() const { return type != BPF_MAP_TYPE_LPM_TRIE; }
};

inline constexpr size_t kSlotMapCount = ZTSEG_SLOT_MAP_MAX;

#define ZTSEG_SLOT_MAP_SPEC_(id, name, kind, key_type, value_type, inner, capacity, option, \
                             bounds)                                                        \
    SlotMapSpec{ZTSEG_SLOT_##id,                                                            \
                #name,                                                                      \
                #inner,                                                                     \
                BPF_MAP_TYPE_##kind,                                                        \
                sizeof(key_type),                                                           \
                sizeof(value_type),                                                         \
                &DatapathOptions::option,                                                   \
                #option,                                                                    \
                bounds},
inline constexpr std::array<SlotMapSpec, kSlotMapCount> kSlotMaps = {
    {ZTSEG_SLOT_MAPS(ZTSEG_SLOT_MAP_SPEC_)}};
#undef ZTSEG_SLOT_MAP_SPEC_

constexpr bool slotMapRowsInEnumOrder() {
    for (size_t i = 0; i < kSlotMaps.size(); ++i) {
        if (size_t(kSlotMaps[i].id) != i) {
            return false;
        }
    }
    return true;
}
static_assert(slotMapRowsInEnumOrder(), "kSlotMaps is indexed by enum ztseg_slot_map");

// Ids of the inner maps installed in one slot, by ztseg_slot_map (0: none).
using SlotMapIds = std::array<uint32_t, kSlotMapCount>;

}  // namespace ztseg
