// Datapath: atomic generations (docs/datapath.md#atomic-generations). A new
// generation is written into the inactive slot, incrementally when this
// process wrote that slot before, else built off to the side and swapped in;
// one 8-byte write of ZTSEG_CFG_ACTIVE_SLOT makes it live.
#include <bpf/bpf.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <string_view>
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

// Ids of the inner maps installed in `slot` (0 where none), by ztseg_slot_map.
SlotMapIds Datapath::slotMapIds(uint32_t slot) const {
    SlotMapIds ids{};
    for (const SlotMapSpec& s : kSlotMaps) {
        if (!slot_maps_[s.id].lookup(&slot, &ids[s.id])) {
            ids[s.id] = 0;
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

void writeEntries(const BpfMap& m, const PackedEntries& e, bool batch) {
    if (e.empty()) {
        return;
    }
    if (batch) {
        m.updateBatch(e.keys(), e.values(), uint32_t(e.size()), e.keySize(), e.valueSize());
    } else {
        for (size_t i = 0; i < e.size(); ++i) {
            m.update(e.key(i), e.value(i));
        }
    }
}

void writeDiff(const BpfMap& m, const MapDiff& d, bool batch) {
    // Deletes first: a map at capacity must make room before it takes new keys.
    for (size_t i = 0; i < d.deletes.size(); ++i) {
        m.erase(d.deletes.key(i));
    }
    writeEntries(m, d.upserts, batch);
}

}  // namespace

// Fresh inner maps for `slot`, filled off to the side, then swapped in. Each
// outer-map update waits for an RCU grace period, so they run in parallel.
void Datapath::buildSlot(uint32_t slot, const SlotContent& c) {
    std::vector<BpfMap> inner;
    for (const SlotMapSpec& s : kSlotMaps) {
        inner.push_back(BpfMap::create(s.type, s.inner_name, s.key_size, s.value_size,
                                       opts_.*(s.capacity), BPF_F_NO_PREALLOC));
        writeEntries(inner.back(), slotEntries(c, s.id), s.batch());
    }
    std::array<int, kSlotMapCount> errors{};
    {
        std::vector<std::jthread> threads;
        for (size_t i = 0; i < kSlotMaps.size(); ++i) {
            threads.emplace_back([&, i] {
                uint32_t key = slot;
                uint32_t fd = uint32_t(inner[i].fd());
                if (bpf_map_update_elem(slot_maps_[i].fd(), &key, &fd, 0) != 0) {
                    errors[i] = errno;
                }
            });
        }
    }
    for (size_t i = 0; i < kSlotMaps.size(); ++i) {
        if (errors[i] != 0) {
            throwErrno(
                "install inner map into " + slot_maps_[i].name() + " slot " + std::to_string(slot),
                errors[i]);
        }
        mirror_[slot].map_ids[i] = mapIdOf(inner[i]);
    }
}

// Rewrite `slot` in place from `from` to `to`: only the differing entries.
// The slot is inactive and a grace period has passed since it was last live.
size_t Datapath::patchSlot(uint32_t slot, const SlotContent& from, const SlotContent& to) {
    SlotDiff d = diffSlots(from, to);
    for (const SlotMapSpec& s : kSlotMaps) {
        BpfMap inner(innerMapFd(slot_maps_[s.id], slot), std::string(s.name) + "(slot)");
        writeDiff(inner, d[s.id], s.batch());
    }
    return d.size();
}

// Throws CapacityError if `c` does not fit the inner maps (rows that bound the
// same thing share their capacity).
void Datapath::checkCapacity(const SlotContent& c) const {
    std::map<std::string_view, size_t> need;
    for (const SlotMapSpec& s : kSlotMaps) {
        need[s.bounds] += slotEntryCount(c, s.id);
    }
    for (const SlotMapSpec& s : kSlotMaps) {
        uint32_t cap = opts_.*(s.capacity);
        if (need[s.bounds] > cap) {
            throw CapacityError("apply: " + std::string(s.bounds) + " needs " +
                                std::to_string(need[s.bounds]) + " entries, capacity is " +
                                std::to_string(cap) + " (raise " + s.capacity_option +
                                "); nothing changed");
        }
    }
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
    SlotContent built = buildSlotContent(gen, {target, active});
    static const SlotContent kNothingActive;
    built.rules = assignRuleCounters(gen, target, raw == 0 ? &kNothingActive : active);
    try {
        installGeneration(gen, slot, target, std::make_shared<const SlotContent>(std::move(built)),
                          t0);
    } catch (...) {
        // The counters assigned for it are not what the slot holds.
        forgetRuleCounterAssignment();
        throw;
    }
}

void Datapath::installGeneration(const Generation& gen, uint32_t slot, const SlotContent* target,
                                 std::shared_ptr<const SlotContent> next,
                                 std::chrono::steady_clock::time_point t0) {
    using Clock = std::chrono::steady_clock;
    checkCapacity(*next);
    size_t policy_entries = next->policy_entries;

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
    size_t total = 0;
    for (const SlotMapSpec& s : kSlotMaps) {
        total += slotEntryCount(*next, s.id);
    }
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
    UniqueFd inner = innerMapFd(slot_maps_[ZTSEG_SLOT_ENDPOINTS], raw - 1);
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
    BpfMap m(innerMapFd(slot_maps_[ZTSEG_SLOT_ENDPOINTS], raw - 1), "ztseg_endpoints(active)");
    ztseg_endpoint_key k{cgroup_id};
    m.erase(&k);
    if (auto& mirror = mirror_[raw - 1].content) {
        auto next = std::make_shared<SlotContent>(*mirror);
        eraseEndpointEntry(next->endpoints, cgroup_id);
        mirror = std::move(next);
    }
}

}  // namespace ztseg
