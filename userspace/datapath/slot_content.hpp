// What one generation slot of the datapath holds, kept in userspace so the
// next apply can write only what changed (incremental apply) instead of
// rebuilding every map. Pure computation, no syscalls: Datapath executes the
// plan.
//
// Content is shared between slots where it is identical (shared_ptr), so a
// one-rule change costs one group's recompute and a few map writes, and the
// two slots of a 100k-rule policy do not hold two copies.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "abi.h"
#include "datapath/policy_entries.hpp"
#include "datapath/slot_maps.hpp"
#include "model/types.hpp"

namespace ztseg {

// Policy entries depend only on the rules of one (local identity, direction):
// deny closure never crosses groups.
using PolicyGroupKey = uint64_t;  // local << 8 | direction
struct PolicyGroup {
    std::vector<Rule> rules;  // as given, in input order
    PolicyEntries entries;    // sorted by key bytes
};

template <typename Key>
struct KeyedValue {
    Key key;
    ztseg_identity_info value;
};
using Ident4Entry = KeyedValue<ztseg_ident4_key>;
using Ident6Entry = KeyedValue<ztseg_ident6_key>;
using Host4Entry = KeyedValue<ztseg_host4_key>;
using Host6Entry = KeyedValue<ztseg_host6_key>;
using EndpointEntry = KeyedValue<ztseg_endpoint_key>;
// A rule id's ztseg_rule_hits slot (datapath/rule_counters.hpp assigns them).
struct RuleRefEntry {
    ztseg_rule_key key;
    ztseg_rule_ref value;
    uint64_t fingerprint = 0;  // what the slot follows; not written to the map (0: unknown)
};

// Identity prefixes with their mode flags, each vector sorted by key bytes:
// host addresses (/32, /128) for the exact-match maps, shorter prefixes for
// the LPM tries.
struct IdentityTable {
    std::vector<IdentityPrefix> input;
    std::map<IdentityId, WorkloadMode> modes;
    std::set<IdentityId> raw_sockets;
    std::vector<Ident4Entry> v4;
    std::vector<Ident6Entry> v6;
    std::vector<Host4Entry> h4;
    std::vector<Host6Entry> h6;
    size_t family4() const { return v4.size() + h4.size(); }
    size_t family6() const { return v6.size() + h6.size(); }
    uint32_t slotFlags() const;  // ZTSEG_SLOTF_LPM4/6, ZTSEG_SLOTF_HOST_*
};

struct SlotContent {
    uint64_t generation = 0;
    // Sorted by key. Walking two slots' groups side by side finds unchanged
    // ones without hashing; the compiler emits rules in this order already.
    std::vector<std::pair<PolicyGroupKey, std::shared_ptr<const PolicyGroup>>> groups;
    std::shared_ptr<const IdentityTable> identities;
    std::vector<EndpointEntry> endpoints;  // sorted by key bytes
    std::vector<RuleRefEntry> rules;       // sorted by rule id; empty: nothing counted
    size_t policy_entries = 0;
    ProbeMasks probe_masks{};  // OR of the groups' masks
};

// The content of `gen`, reusing groups and identity tables of `reuse` slots
// whose inputs are identical (nullptr entries are skipped). Costs one pass
// over the rules plus the recompute of changed groups only.
SlotContent buildSlotContent(const Generation& gen,
                             std::initializer_list<const SlotContent*> reuse);

// ZTSEG_IDF_* of a workload identity; raw_sockets adds ZTSEG_IDF_RAW_SOCKETS.
uint32_t identityFlags(WorkloadMode m, bool raw_sockets = false);
// The flags `gen` gives identity `id` (0 for identities it does not manage).
uint32_t identityFlags(const Generation& gen, IdentityId id);

// One slot map's entries as packed key and value arrays (the layout batch
// updates take), sized by its kSlotMaps row. Keys ascend bytewise where
// slotEntries() built them.
class PackedEntries {
  public:
    PackedEntries() = default;
    PackedEntries(uint32_t key_size, uint32_t value_size)
        : key_size_(key_size), value_size_(value_size) {}
    explicit PackedEntries(const SlotMapSpec& s) : PackedEntries(s.key_size, s.value_size) {}

    template <typename K, typename V>
    void push(const K& k, const V& v) {
        checkSizes(sizeof(K), sizeof(V));
        pushBytes(&k, &v);
    }
    template <typename K>
    void pushKey(const K& k) {
        checkSizes(sizeof(K), 0);
        pushBytes(&k, nullptr);
    }
    void pushBytes(const void* key, const void* value);  // value ignored without values
    void reserve(size_t n);

    size_t size() const { return count_; }
    bool empty() const { return count_ == 0; }
    uint32_t keySize() const { return key_size_; }
    uint32_t valueSize() const { return value_size_; }
    const uint8_t* keys() const { return keys_.data(); }
    const uint8_t* values() const { return values_.data(); }
    const uint8_t* key(size_t i) const { return keys_.data() + i * key_size_; }
    const uint8_t* value(size_t i) const { return values_.data() + i * value_size_; }
    // Typed copies (tests, logs); the type must have the row's size.
    template <typename T>
    T keyAs(size_t i) const {
        return copyAs<T>(key(i), key_size_);
    }
    template <typename T>
    T valueAs(size_t i) const {
        return copyAs<T>(value(i), value_size_);
    }

  private:
    void checkSizes(size_t key_size, size_t value_size) const;
    template <typename T>
    static T copyAs(const uint8_t* p, uint32_t size);

    uint32_t key_size_ = 0, value_size_ = 0;
    size_t count_ = 0;
    std::vector<uint8_t> keys_, values_;
};

// The entries slot map `m` holds for content `c`, keys ascending bytewise.
PackedEntries slotEntries(const SlotContent& c, ztseg_slot_map m);
size_t slotEntryCount(const SlotContent& c, ztseg_slot_map m);

// Writes that turn one slot map from one content into another.
struct MapDiff {
    PackedEntries upserts;
    PackedEntries deletes;  // keys only
    size_t size() const { return upserts.size() + deletes.size(); }
};

struct SlotDiff {
    std::array<MapDiff, kSlotMapCount> maps;  // by ztseg_slot_map
    MapDiff& operator[](ztseg_slot_map m) { return maps[m]; }
    const MapDiff& operator[](ztseg_slot_map m) const { return maps[m]; }
    size_t size() const {
        size_t n = 0;
        for (const MapDiff& d : maps) {
            n += d.size();
        }
        return n;
    }
};

SlotDiff diffSlots(const SlotContent& from, const SlotContent& to);

template <typename T>
T PackedEntries::copyAs(const uint8_t* p, uint32_t size) {
    if (sizeof(T) != size) {
        throw std::logic_error("PackedEntries: entry of " + std::to_string(size) +
                               " bytes read as a type of " + std::to_string(sizeof(T)));
    }
    T t;
    std::memcpy(&t, p, sizeof(T));
    return t;
}

// Endpoint table edits between applies (the active slot's mirror follows them).
void upsertEndpointEntry(std::vector<EndpointEntry>& table, const EndpointEntry& e);
void eraseEndpointEntry(std::vector<EndpointEntry>& table, uint64_t cgroup_id);

}  // namespace ztseg
