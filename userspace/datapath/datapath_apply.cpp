// Datapath: atomic generations (docs/datapath.md#atomic-generations). A new
// generation is written into the inactive slot, incrementally when this
// process wrote that slot before, else built off to the side and swapped in;
// one 8-byte write of ZTSEG_CFG_ACTIVE_SLOT makes it live.
#include <bpf/bpf.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>
#include <thread>

#include "common/error.hpp"
#include "datapath/datapath.hpp"
#include "datapath/grace_period.hpp"
#include "datapath/policy_entries.hpp"
#include "datapath/slot_content.hpp"

namespace ztseg {

void Datapath::writeConfig(uint32_t index, uint64_t value) const {
    config_.update(&index, &value);
}

uint32_t Datapath::activeSlotRaw() const {
    uint32_t key = ZTSEG_CFG_ACTIVE_SLOT;
    uint64_t v = 0;
    config_.lookup(&key, &v);
    return uint32_t(v);
}

uint64_t Datapath::activeGeneration() const {
    uint32_t raw = activeSlotRaw();
    if (raw == 0) {
        return 0;
    }
    uint32_t slot = raw - 1;
    ztseg_slot_meta m{};
    slots_.lookup(&slot, &m);
    return m.generation;
}

uint64_t Datapath::previousGeneration() const {
    uint32_t raw = activeSlotRaw();
    if (raw == 0) {
        return 0;
    }
    uint32_t other = raw == 1 ? 1 : 0;
    ztseg_slot_meta m{};
    slots_.lookup(&other, &m);
    return (m.flags & ZTSEG_SLOTF_BUILDING) ? 0 : m.generation;
}

namespace {

// An fd for the inner map installed in outer[slot] (userspace reads map ids).
UniqueFd innerMapFd(const BpfMap& outer, uint32_t slot) {
    uint32_t id = 0;
    if (!outer.lookup(&slot, &id) || id == 0) {
        throw Error("map " + outer.name() + " has no inner map in slot " + std::to_string(slot));
    }
    int fd = bpf_map_get_fd_by_id(id);
    if (fd < 0) {
        throwErrno("open inner map " + std::to_string(id) + " of " + outer.name(), errno);
    }
    return UniqueFd(fd);
}

}  // namespace

void Datapath::flipTo(uint32_t slot) {
    // One 8-byte write: every packet from now on sees the new slot. Programs
    // still running against the old one are waited for in the background,
    // before anything rewrites that slot.
    writeConfig(ZTSEG_CFG_ACTIVE_SLOT, uint64_t(slot) + 1);
    grace_->start();
}

void Datapath::writeSlotMeta(uint32_t slot, uint64_t generation, const ProbeMasks& probes,
                             uint32_t flags) const {
    ztseg_slot_meta meta{};
    meta.generation = generation;
    meta.flags = flags;
    std::copy(probes.begin(), probes.end(), meta.probe_masks);
    slots_.update(&slot, &meta);
}

// Ids of the inner maps installed in `slot` (0 where none), in buildSlot's order.
std::array<uint32_t, 6> Datapath::slotMapIds(uint32_t slot) const {
    std::array<uint32_t, 6> ids{};
    const BpfMap* outers[] = {&policy_, &ident4_, &ident6_, &host4_, &host6_, &endpoints_};
    for (size_t i = 0; i < ids.size(); ++i) {
        if (!outers[i]->lookup(&slot, &ids[i])) {
            ids[i] = 0;
        }
    }
    return ids;
}

namespace {

uint32_t mapIdOf(const BpfMap& m) {
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(m.fd(), &info, &len) != 0) {
        throwErrno("get info of map " + m.name(), errno);
    }
    return info.id;
}

template <typename Entry>
void fillOneByOne(const BpfMap& m, const std::vector<Entry>& entries) {
    for (const Entry& e : entries) {
        m.update(&e.key, &e.value);
    }
}

template <typename Entry>
void fillBatch(const BpfMap& m, const std::vector<Entry>& entries) {
    using Key = decltype(Entry::key);
    std::vector<Key> keys;
    std::vector<ztseg_identity_info> values;
    keys.reserve(entries.size());
    values.reserve(entries.size());
    for (const Entry& e : entries) {
        keys.push_back(e.key);
        values.push_back(e.value);
    }
    m.updateBatch(keys.data(), values.data(), uint32_t(keys.size()), sizeof(Key),
                  sizeof(ztseg_identity_info));
}

template <typename Key, typename Value>
void writeDiff(const BpfMap& m, const MapDiff<Key, Value>& d, bool batch) {
    // Deletes first: a map at capacity must make room before it takes new keys.
    for (const Key& k : d.deletes) {
        m.erase(&k);
    }
    if (d.upsert_keys.empty()) {
        return;
    }
    if (batch) {
        m.updateBatch(d.upsert_keys.data(), d.upsert_values.data(), uint32_t(d.upsert_keys.size()),
                      sizeof(Key), sizeof(Value));
    } else {
        for (size_t i = 0; i < d.upsert_keys.size(); ++i) {
            m.update(&d.upsert_keys[i], &d.upsert_values[i]);
        }
    }
}

}  // namespace

// Fresh inner maps for `slot`, filled off to the side, then swapped in. Each
// outer-map update waits for an RCU grace period, so the six run in parallel.
void Datapath::buildSlot(uint32_t slot, const SlotContent& c) {
    BpfMap pol_map =
        BpfMap::create(BPF_MAP_TYPE_HASH, "ztseg_pol_gen", sizeof(ztseg_policy_key),
                       sizeof(ztseg_policy_value), opts_.policy_capacity, BPF_F_NO_PREALLOC);
    BpfMap id4_map =
        BpfMap::create(BPF_MAP_TYPE_LPM_TRIE, "ztseg_id4_gen", sizeof(ztseg_ident4_key),
                       sizeof(ztseg_identity_info), opts_.identity_capacity, BPF_F_NO_PREALLOC);
    BpfMap id6_map =
        BpfMap::create(BPF_MAP_TYPE_LPM_TRIE, "ztseg_id6_gen", sizeof(ztseg_ident6_key),
                       sizeof(ztseg_identity_info), opts_.identity_capacity, BPF_F_NO_PREALLOC);
    BpfMap h4_map =
        BpfMap::create(BPF_MAP_TYPE_HASH, "ztseg_h4_gen", sizeof(ztseg_host4_key),
                       sizeof(ztseg_identity_info), opts_.identity_capacity, BPF_F_NO_PREALLOC);
    BpfMap h6_map =
        BpfMap::create(BPF_MAP_TYPE_HASH, "ztseg_h6_gen", sizeof(ztseg_host6_key),
                       sizeof(ztseg_identity_info), opts_.identity_capacity, BPF_F_NO_PREALLOC);
    BpfMap ep_map =
        BpfMap::create(BPF_MAP_TYPE_HASH, "ztseg_ep_gen", sizeof(ztseg_endpoint_key),
                       sizeof(ztseg_identity_info), opts_.endpoint_capacity, BPF_F_NO_PREALLOC);
    {
        std::vector<ztseg_policy_key> keys;
        std::vector<ztseg_policy_value> vals;
        keys.reserve(c.policy_entries);
        vals.reserve(c.policy_entries);
        for (const auto& [key, g] : c.groups) {
            for (const auto& e : g->entries.entries) {
                keys.push_back(e.key);
                vals.push_back(e.value);
            }
        }
        pol_map.updateBatch(keys.data(), vals.data(), uint32_t(keys.size()), sizeof(keys[0]),
                            sizeof(vals[0]));
    }
    fillOneByOne(id4_map, c.identities->v4);  // LPM tries have no batch update
    fillOneByOne(id6_map, c.identities->v6);
    fillBatch(h4_map, c.identities->h4);
    fillBatch(h6_map, c.identities->h6);
    fillBatch(ep_map, c.endpoints);

    std::array<std::pair<const BpfMap*, const BpfMap*>, 6> installs = {{{&policy_, &pol_map},
                                                                        {&ident4_, &id4_map},
                                                                        {&ident6_, &id6_map},
                                                                        {&host4_, &h4_map},
                                                                        {&host6_, &h6_map},
                                                                        {&endpoints_, &ep_map}}};
    std::array<int, 6> errors{};
    {
        std::vector<std::jthread> threads;
        for (size_t i = 0; i < installs.size(); ++i) {
            threads.emplace_back([&, i] {
                uint32_t key = slot;
                uint32_t fd = uint32_t(installs[i].second->fd());
                if (bpf_map_update_elem(installs[i].first->fd(), &key, &fd, 0) != 0) {
                    errors[i] = errno;
                }
            });
        }
    }
    for (size_t i = 0; i < installs.size(); ++i) {
        if (errors[i] != 0) {
            throwErrno("install inner map into " + installs[i].first->name() + " slot " +
                           std::to_string(slot),
                       errors[i]);
        }
    }
    mirror_[slot].map_ids = {mapIdOf(pol_map), mapIdOf(id4_map), mapIdOf(id6_map),
                             mapIdOf(h4_map),  mapIdOf(h6_map),  mapIdOf(ep_map)};
}

// Rewrite `slot` in place from `from` to `to`: only the differing entries.
// The slot is inactive and a grace period has passed since it was last live.
size_t Datapath::patchSlot(uint32_t slot, const SlotContent& from, const SlotContent& to) {
    SlotDiff d = diffSlots(from, to);
    BpfMap pol(innerMapFd(policy_, slot), "ztseg_policy(slot)");
    BpfMap id4(innerMapFd(ident4_, slot), "ztseg_ident4(slot)");
    BpfMap id6(innerMapFd(ident6_, slot), "ztseg_ident6(slot)");
    BpfMap h4(innerMapFd(host4_, slot), "ztseg_host4(slot)");
    BpfMap h6(innerMapFd(host6_, slot), "ztseg_host6(slot)");
    BpfMap ep(innerMapFd(endpoints_, slot), "ztseg_endpoints(slot)");
    writeDiff(pol, d.policy, true);
    writeDiff(id4, d.ident4, false);
    writeDiff(id6, d.ident6, false);
    writeDiff(h4, d.host4, true);
    writeDiff(h6, d.host6, true);
    writeDiff(ep, d.endpoints, true);
    return d.size();
}

void Datapath::apply(const Generation& gen) {
    using Clock = std::chrono::steady_clock;
    if (gen.number == 0) {
        throw Error("apply: generation number 0 is reserved for 'no policy'");
    }
    for (const IdentityPrefix& ip : gen.identities) {
        if (ip.identity == kUnlabeled || ip.identity == kAnyIdentity) {
            throw Error("apply: prefix " + ip.prefix.str() + " maps to reserved identity " +
                        std::to_string(ip.identity));
        }
    }
    auto t0 = Clock::now();
    raiseWorkloadLevels(gen.endpoints);
    uint32_t raw = activeSlotRaw();
    uint32_t slot = raw == 1 ? 1 : 0;  // the inactive slot
    std::shared_ptr<const SlotContent> active_owner, target_owner = mirror_[slot].content;
    if (raw != 0) {
        active_owner = mirror_[raw - 1].content;
    }
    const SlotContent* active = active_owner.get();
    const SlotContent* target = target_owner.get();
    auto next = std::make_shared<const SlotContent>(buildSlotContent(gen, {target, active}));

    auto check = [](size_t need, uint32_t cap, const char* what, const char* option) {
        if (need > cap) {
            throw CapacityError("apply: " + std::string(what) + " needs " + std::to_string(need) +
                                " entries, capacity is " + std::to_string(cap) + " (raise " +
                                option + "); nothing changed");
        }
    };
    size_t policy_entries = next->policy_entries;
    check(policy_entries, opts_.policy_capacity, "policy map", "policy_capacity");
    check(next->identities->family4(), opts_.identity_capacity, "IPv4 identity map",
          "identity_capacity");
    check(next->identities->family6(), opts_.identity_capacity, "IPv6 identity map",
          "identity_capacity");
    check(next->endpoints.size(), opts_.endpoint_capacity, "endpoint map", "endpoint_capacity");

    // Patch in place only if the slot still holds what this process wrote
    // there, and the change is small next to the generation.
    bool incremental = false;
    if (target != nullptr) {
        ztseg_slot_meta meta{};
        slots_.lookup(&slot, &meta);
        incremental = meta.generation == target->generation &&
                      !(meta.flags & ZTSEG_SLOTF_BUILDING) &&
                      slotMapIds(slot) == mirror_[slot].map_ids;
    }
    size_t total = policy_entries + next->identities->family4() + next->identities->family6() +
                   next->endpoints.size();
    SlotDiff diff;
    if (incremental) {
        diff = diffSlots(*target, *next);
        incremental = diff.size() <= std::max<size_t>(4096, total / 2);
    }
    auto t1 = Clock::now();

    // Nothing may still read this slot (its metadata or maps): wait out the
    // grace period of the flip that made it inactive (usually long over).
    grace_->wait();
    // From here the slot is incomplete until its metadata says otherwise.
    mirror_[slot].content.reset();
    writeSlotMeta(slot, 0, {}, ZTSEG_SLOTF_BUILDING);
    size_t writes = 0;
    if (incremental) {
        writes = patchSlot(slot, *target, *next);
    } else {
        buildSlot(slot, *next);
        writes = total;
    }
    writeSlotMeta(slot, gen.number, next->probe_masks, next->identities->slotFlags());
    mirror_[slot].content = next;
    flipTo(slot);
    auto t2 = Clock::now();

    last_apply_ = {incremental, writes, policy_entries,
                   std::chrono::duration<double, std::milli>(t1 - t0).count(),
                   std::chrono::duration<double, std::milli>(t2 - t1).count()};
    spdlog::info(
        "generation {} active: {} policy entries, {}+{} identity prefixes, {} endpoints ({}, {} "
        "map writes, {:.2f} ms)",
        gen.number, policy_entries, next->identities->family4(), next->identities->family6(),
        next->endpoints.size(), incremental ? "incremental" : "full build", writes,
        last_apply_.build_ms + last_apply_.write_ms);
}

void Datapath::rollback() {
    uint32_t raw = activeSlotRaw();
    uint64_t prev = previousGeneration();
    if (raw == 0 || prev == 0) {
        throw Error("rollback: no previous generation to return to");
    }
    uint64_t cur = activeGeneration();
    flipTo(raw == 1 ? 1 : 0);
    spdlog::info("rolled back from generation {} to {}", cur, prev);
}

void Datapath::upsertEndpoint(const Endpoint& ep, WorkloadMode mode, bool raw_sockets) {
    uint32_t raw = activeSlotRaw();
    if (raw == 0) {
        throw Error("add endpoint: no policy generation loaded yet");
    }
    raiseWorkloadLevels({ep});
    UniqueFd inner = innerMapFd(endpoints_, raw - 1);
    BpfMap m(std::move(inner), "ztseg_endpoints(active)");
    EndpointEntry e{{ep.cgroup_id}, {ep.identity, identityFlags(mode, raw_sockets)}};
    m.update(&e.key, &e.value);
    if (auto& mirror = mirror_[raw - 1].content) {
        auto next = std::make_shared<SlotContent>(*mirror);
        upsertEndpointEntry(next->endpoints, e);
        mirror = std::move(next);
    }
}

void Datapath::removeEndpoint(uint64_t cgroup_id) {
    uint32_t raw = activeSlotRaw();
    if (raw == 0) {
        return;
    }
    BpfMap m(innerMapFd(endpoints_, raw - 1), "ztseg_endpoints(active)");
    ztseg_endpoint_key k{cgroup_id};
    m.erase(&k);
    if (auto& mirror = mirror_[raw - 1].content) {
        auto next = std::make_shared<SlotContent>(*mirror);
        eraseEndpointEntry(next->endpoints, cgroup_id);
        mirror = std::move(next);
    }
}

}  // namespace ztseg
