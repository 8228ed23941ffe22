#include "datapath/rule_counters.hpp"

#include <bpf/bpf.h>
#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <bit>
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
    : capacity_(hits.maxEntries()), taken_((size_t(capacity_) + 63) / 64) {
    uint64_t key = 0, next = 0;
    const void* prev = nullptr;
    while (slots.nextKey(prev, &next)) {
        ztseg_rule_slot v{};
        if (slots.lookup(&next, &v) && v.counter != 0 && v.counter < capacity_ &&
            !isTaken(v.counter)) {
            setTaken(v.counter, true);
            by_fingerprint_[next].slot = v;
        }
        key = next;
        prev = &key;
    }
    sweep_pending_ = !by_fingerprint_.empty();
}

uint32_t RuleCounterTable::allocate(const BpfMap& slots, const BpfMap& hits, uint64_t fingerprint) {
    uint32_t counter = firstFreeFrom(next_free_hint_);
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
    setTaken(counter, true);
    by_fingerprint_[fingerprint] = {v, 1};
    return counter;
}

// A word of the bitmap at a time: finding room after a release in a full
// table of 65k slots is ~1k word reads, not 65k set lookups.
uint32_t RuleCounterTable::firstFreeFrom(uint32_t counter) const {
    while (counter < capacity_) {
        uint64_t word = taken_[counter / 64] | ((uint64_t(1) << (counter % 64)) - 1);
        if (word != ~uint64_t(0)) {
            return std::min(capacity_, counter / 64 * 64 + uint32_t(std::countr_one(word)));
        }
        counter = (counter / 64 + 1) * 64;
    }
    return capacity_;
}

void RuleCounterTable::setTaken(uint32_t counter, bool taken) {
    uint64_t bit = uint64_t(1) << (counter % 64);
    taken_[counter / 64] = taken ? taken_[counter / 64] | bit : taken_[counter / 64] & ~bit;
}

void RuleCounterTable::release(const BpfMap& slots, Table::iterator it) {
    uint64_t fingerprint = it->first;
    slots.erase(&fingerprint);
    setTaken(it->second.slot.counter, false);
    next_free_hint_ = std::min(next_free_hint_, it->second.slot.counter);
    by_fingerprint_.erase(it);
}

void RuleCounterTable::recountReferences(const std::vector<RuleRefEntry>* active) {
    for (auto& [fp, a] : by_fingerprint_) {
        a.references = 0;
    }
    if (active == nullptr) {
        sweep_pending_ = true;
        return;
    }
    for (const RuleRefEntry& e : *active) {
        auto it = by_fingerprint_.find(e.fingerprint);
        if (it != by_fingerprint_.end()) {
            ++it->second.references;
        }
    }
    sweep_pending_ = true;  // whatever the table holds beyond these
}

std::vector<RuleRefEntry> RuleCounterTable::assign(const BpfMap& slots, const BpfMap& hits,
                                                   const std::vector<RuleFingerprint>& want,
                                                   const std::vector<RuleRefEntry>* replaced,
                                                   const std::vector<RuleRefEntry>* active) {
    if (!references_known_) {
        recountReferences(active);
        replaced = nullptr;  // its entries are not among the references
        references_known_ = true;
    }
    // 1. Merge by rule id: an entry `replaced` had with the same fingerprint
    //    carries over with its reference; the others are added or removed.
    std::vector<RuleRefEntry> out;
    out.reserve(want.size());
    std::vector<size_t> added;
    std::vector<uint64_t> removed;
    static const std::vector<RuleRefEntry> kNone;
    const std::vector<RuleRefEntry>& old = replaced != nullptr ? *replaced : kNone;
    size_t r = 0;
    for (const RuleFingerprint& w : want) {
        while (r < old.size() && old[r].key.rule_id < w.rule_id) {
            removed.push_back(old[r++].fingerprint);
        }
        if (r < old.size() && old[r].key.rule_id == w.rule_id) {
            const RuleRefEntry& o = old[r++];
            if (o.fingerprint == w.fingerprint) {
                out.push_back(o);
                continue;
            }
            removed.push_back(o.fingerprint);
        }
        out.push_back({{w.rule_id}, {0}, w.fingerprint});
        added.push_back(out.size() - 1);
    }
    while (r < old.size()) {
        removed.push_back(old[r++].fingerprint);
    }
    // 2. Added entries whose fingerprint has a slot take a reference first, so
    //    a rule that only moved to another id keeps its counts.
    std::vector<size_t> fresh;
    for (size_t i : added) {
        auto it = by_fingerprint_.find(out[i].fingerprint);
        if (it == by_fingerprint_.end()) {
            fresh.push_back(i);
            continue;
        }
        ++it->second.references;
        out[i].value.counter = it->second.slot.counter;
    }
    // 3. Release what nothing refers to any more, so a full table makes room.
    //    While the active slot is unknown, nothing is released.
    for (uint64_t fp : removed) {
        auto it = by_fingerprint_.find(fp);
        if (it == by_fingerprint_.end()) {
            continue;
        }
        if (it->second.references > 0) {
            --it->second.references;
        }
        if (it->second.references == 0 && active != nullptr) {
            release(slots, it);
        }
    }
    if (sweep_pending_ && active != nullptr) {
        for (auto it = by_fingerprint_.begin(); it != by_fingerprint_.end();) {
            auto next = std::next(it);
            if (it->second.references == 0) {
                release(slots, it);
            }
            it = next;
        }
        sweep_pending_ = false;
    }
    // 4. New fingerprints get a zeroed slot while there is one.
    bool allocated = false;
    for (size_t i : fresh) {
        if (!allocated && next_free_hint_ >= capacity_) {
            break;  // full, and no rule here took a slot another one could share
        }
        auto it = by_fingerprint_.find(out[i].fingerprint);
        if (it != by_fingerprint_.end()) {  // an earlier rule of this generation took it
            ++it->second.references;
            out[i].value.counter = it->second.slot.counter;
        } else if ((out[i].value.counter = allocate(slots, hits, out[i].fingerprint)) != 0) {
            allocated = true;
        }
    }
    auto uncounted = std::remove_if(out.begin(), out.end(),
                                    [](const RuleRefEntry& e) { return e.value.counter == 0; });
    uncounted_ = size_t(out.end() - uncounted);
    out.erase(uncounted, out.end());
    if (uncounted_ != 0) {
        spdlog::warn(
            "{} rules are enforced but not counted: the rule counters are full ({} slots; raise "
            "datapath.rule_capacity)",
            uncounted_, capacity_ - 1);
    }
    return out;
}

std::vector<RuleHitCount> RuleCounterTable::read(const BpfMap& hits,
                                                 const std::vector<RuleRefEntry>& rules) const {
    std::map<uint32_t, uint64_t> since;
    for (const auto& [fp, a] : by_fingerprint_) {
        since[a.slot.counter] = a.slot.since_unix_ns;
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
