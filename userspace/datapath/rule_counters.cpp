#include "datapath/rule_counters.hpp"

#include <bpf/bpf.h>
#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/error.hpp"

namespace ztseg {
namespace {

uint64_t clockNs(clockid_t clock) {
    timespec ts{};
    ::clock_gettime(clock, &ts);
    return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

// ztseg_rule_hits slots 0..last, every CPU's value (slot * cpus + cpu): one
// batch read instead of a syscall per rule (slots are handed out lowest
// first, so they are dense). Falls back to one lookup per slot.
std::vector<ztseg_rule_hits> readSlots(const BpfMap& hits, uint32_t last, int cpus) {
    const uint32_t n = last + 1;
    std::vector<ztseg_rule_hits> values(size_t(n) * size_t(cpus));
    std::vector<uint32_t> keys(n);
    uint32_t out_batch = 0, count = n;
    int rc = bpf_map_lookup_batch(hits.fd(), nullptr, &out_batch, keys.data(), values.data(),
                                  &count, nullptr);
    // An array's batch read reports ENOENT when it reached the last entry.
    if ((rc == 0 || errno == ENOENT) && count == n) {
        return values;
    }
    for (uint32_t slot = 0; slot < n; ++slot) {
        auto raw = hits.lookupPerCpu(&slot, sizeof(ztseg_rule_hits));
        std::memcpy(&values[size_t(slot) * size_t(cpus)], raw.data(),
                    size_t(cpus) * sizeof(ztseg_rule_hits));
    }
    return values;
}

}  // namespace

RuleCounterTable::RuleCounterTable(const BpfMap& slots, const BpfMap& hits)
    : capacity_(hits.maxEntries()) {
    uint64_t key = 0, next = 0;
    const void* prev = nullptr;
    while (slots.nextKey(prev, &next)) {
        ztseg_rule_slot v{};
        if (slots.lookup(&next, &v) && v.counter != 0 && v.counter < capacity_ &&
            taken_.insert(v.counter).second) {
            by_fingerprint_[next] = v;
        }
        key = next;
        prev = &key;
    }
}

uint32_t RuleCounterTable::allocate(const BpfMap& slots, const BpfMap& hits, uint64_t fingerprint) {
    uint32_t counter = next_free_hint_;
    while (counter < capacity_ && taken_.count(counter) != 0) {
        ++counter;
    }
    if (counter >= capacity_) {
        // Full: remember it, or every further rule rescans every slot (an
        // apply at 100k rules over 65k slots took minutes after a restart).
        next_free_hint_ = capacity_;
        return 0;
    }
    next_free_hint_ = counter + 1;
    // A fresh start: whatever a released rule left in the slot is not this rule's.
    std::vector<ztseg_rule_hits> zero(static_cast<size_t>(possibleCpus()));
    hits.update(&counter, zero.data());
    ztseg_rule_slot v{};
    v.counter = counter;
    v.since_unix_ns = clockNs(CLOCK_REALTIME);
    slots.update(&fingerprint, &v);
    taken_.insert(counter);
    by_fingerprint_[fingerprint] = v;
    return counter;
}

void RuleCounterTable::release(const BpfMap& slots, uint64_t fingerprint) {
    auto it = by_fingerprint_.find(fingerprint);
    if (it == by_fingerprint_.end()) {
        return;
    }
    slots.erase(&fingerprint);
    taken_.erase(it->second.counter);
    next_free_hint_ = std::min(next_free_hint_, it->second.counter);
    by_fingerprint_.erase(it);
}

std::vector<RuleRefEntry> RuleCounterTable::assign(
    const BpfMap& slots, const BpfMap& hits, const std::map<uint32_t, uint64_t>& fingerprints,
    const std::optional<std::set<uint32_t>>& in_use) {
    std::set<uint64_t> wanted;
    for (const auto& [rule, fp] : fingerprints) {
        wanted.insert(fp);
    }
    // Release first, so a full table makes room for this generation's new rules.
    std::vector<uint64_t> unused;
    for (const auto& [fp, slot] : by_fingerprint_) {
        if (in_use && wanted.count(fp) == 0 && in_use->count(slot.counter) == 0) {
            unused.push_back(fp);
        }
    }
    for (uint64_t fp : unused) {
        release(slots, fp);
    }
    std::vector<RuleRefEntry> out;
    uncounted_ = 0;
    for (const auto& [rule, fp] : fingerprints) {
        auto it = by_fingerprint_.find(fp);
        uint32_t counter =
            it != by_fingerprint_.end() ? it->second.counter : allocate(slots, hits, fp);
        if (counter == 0) {
            ++uncounted_;
            continue;
        }
        out.push_back({{rule}, {counter}});
    }
    if (uncounted_ != 0) {
        spdlog::warn(
            "{} rules are enforced but not counted: the rule counters are full ({} slots; raise "
            "datapath.rule_capacity)",
            uncounted_, capacity_ - 1);
    }
    std::sort(out.begin(), out.end(), [](const RuleRefEntry& a, const RuleRefEntry& b) {
        return std::memcmp(&a.key, &b.key, sizeof(a.key)) < 0;
    });
    return out;
}

std::vector<RuleHitCount> RuleCounterTable::read(const BpfMap& hits,
                                                 const std::vector<RuleRefEntry>& rules) const {
    std::map<uint32_t, uint64_t> since;
    for (const auto& [fp, slot] : by_fingerprint_) {
        since[slot.counter] = slot.since_unix_ns;
    }
    const int cpus = possibleCpus();
    // ztseg_rule_hits.last_ns is CLOCK_MONOTONIC (coarse): shift it to wall time.
    const uint64_t mono = clockNs(CLOCK_MONOTONIC), wall = clockNs(CLOCK_REALTIME);
    std::vector<RuleHitCount> out;
    out.reserve(rules.size());
    uint32_t highest = 0;
    for (const RuleRefEntry& r : rules) {
        highest = std::max(highest, r.value.counter);
    }
    const std::vector<ztseg_rule_hits> values =
        rules.empty() ? std::vector<ztseg_rule_hits>{} : readSlots(hits, highest, cpus);
    for (const RuleRefEntry& r : rules) {
        RuleHitCount c;
        c.rule_id = r.key.rule_id;
        uint32_t counter = r.value.counter;
        uint64_t last = 0;
        for (int cpu = 0; cpu < cpus; ++cpu) {
            const ztseg_rule_hits& h = values[size_t(counter) * size_t(cpus) + size_t(cpu)];
            c.packets += h.packets;
            c.bytes += h.bytes;
            c.admitted += h.admitted;
            c.refused += h.refused;
            last = std::max<uint64_t>(last, h.last_ns);
        }
        if (last != 0) {
            c.last_unix_ns = wall - std::min(wall, mono > last ? mono - last : 0);
        }
        auto s = since.find(counter);
        c.since_unix_ns = s == since.end() ? 0 : s->second;
        out.push_back(c);
    }
    return out;
}

}  // namespace ztseg
