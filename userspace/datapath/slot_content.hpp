// What one generation slot of the datapath holds, kept in userspace so the
// next apply can write only what changed (incremental apply) instead of
// rebuilding every map. Pure computation, no syscalls: Datapath executes the
// plan.
//
// Content is shared between slots where it is identical (shared_ptr), so a
// one-rule change costs one group's recompute and a few map writes, and the
// two slots of a 100k-rule policy do not hold two copies.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "datapath/policy_entries.hpp"
#include "maps.h"
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
    uint32_t slotFlags() const;  // ZTSEG_SLOTF_LPM4/6
};

struct SlotContent {
    uint64_t generation = 0;
    // Sorted by key. Walking two slots' groups side by side finds unchanged
    // ones without hashing; the compiler emits rules in this order already.
    std::vector<std::pair<PolicyGroupKey, std::shared_ptr<const PolicyGroup>>> groups;
    std::shared_ptr<const IdentityTable> identities;
    std::vector<EndpointEntry> endpoints;  // sorted by key bytes
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

// Writes that turn one slot's maps from `from` into `to`.
template <typename Key, typename Value>
struct MapDiff {
    std::vector<Key> upsert_keys;
    std::vector<Value> upsert_values;
    std::vector<Key> deletes;
    size_t size() const { return upsert_keys.size() + deletes.size(); }
};

struct SlotDiff {
    MapDiff<ztseg_policy_key, ztseg_policy_value> policy;
    MapDiff<ztseg_ident4_key, ztseg_identity_info> ident4;
    MapDiff<ztseg_ident6_key, ztseg_identity_info> ident6;
    MapDiff<ztseg_host4_key, ztseg_identity_info> host4;
    MapDiff<ztseg_host6_key, ztseg_identity_info> host6;
    MapDiff<ztseg_endpoint_key, ztseg_identity_info> endpoints;
    size_t size() const {
        return policy.size() + ident4.size() + ident6.size() + host4.size() + host6.size() +
               endpoints.size();
    }
};

SlotDiff diffSlots(const SlotContent& from, const SlotContent& to);

// Endpoint table edits between applies (the active slot's mirror follows them).
void upsertEndpointEntry(std::vector<EndpointEntry>& table, const EndpointEntry& e);
void eraseEndpointEntry(std::vector<EndpointEntry>& table, uint64_t cgroup_id);

}  // namespace ztseg
