// Datapath: what the kernel counted (per hook and reason, event stages,
// conntrack occupancy), and resetting connection tracking.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstring>
#include <vector>

#include "datapath/datapath.hpp"

namespace ztseg {

Counters Datapath::counters() const {
    Counters c;
    int cpus = possibleCpus();
    for (uint32_t hook = 0; hook < ZTSEG_HOOK_MAX; ++hook) {
        for (uint32_t reason = 0; reason < ZTSEG_REASON_MAX; ++reason) {
            uint32_t idx = hook * ZTSEG_REASON_MAX + reason;
            auto raw = counters_.lookupPerCpu(&idx, sizeof(ztseg_counter));
            CounterValue& out = c.by_hook[hook][reason];
            for (int cpu = 0; cpu < cpus; ++cpu) {
                ztseg_counter v;
                std::memcpy(&v, raw.data() + size_t(cpu) * sizeof(v), sizeof(v));
                out.packets += v.packets;
                out.bytes += v.bytes;
            }
        }
    }
    for (uint32_t i = 0; i < ZTSEG_EVSTAT_MAX; ++i) {
        auto raw = evstats_.lookupPerCpu(&i, sizeof(uint64_t));
        for (int cpu = 0; cpu < cpus; ++cpu) {
            uint64_t v;
            std::memcpy(&v, raw.data() + size_t(cpu) * sizeof(v), sizeof(v));
            c.events[i] += v;
        }
    }
    return c;
}

uint32_t Datapath::conntrackEntries() const {
    return ct_.countEntries(sizeof(ztseg_ct_key)) + ct_new_.countEntries(sizeof(ztseg_ct_key));
}

void Datapath::flushConntrack() {
    for (const BpfMap* m : {&ct_, &ct_new_}) {
        ztseg_ct_key k{};
        while (bpf_map_get_next_key(m->fd(), nullptr, &k) == 0) {
            m->erase(&k);
        }
    }
    std::vector<ztseg_flowcache_entry> empty(static_cast<size_t>(possibleCpus()));
    for (uint32_t slot = 0; slot < ZTSEG_FLOWCACHE_SLOTS; ++slot) {
        flowcache_.update(&slot, empty.data());
    }
}

void Datapath::setDropEventInterval(uint64_t ns) {
    writeConfig(ZTSEG_CFG_DROP_EVENT_INTERVAL_NS, ns);
}

void Datapath::setDropEventSourceBudget(uint32_t events) {
    writeConfig(ZTSEG_CFG_DROP_EVENT_SOURCE_BUDGET, events);
}

ConntrackUsage Datapath::conntrackUsage() const {
    ConntrackUsage u;
    u.assured = ct_.countEntries(sizeof(ztseg_ct_key));
    u.fresh = ct_new_.countEntries(sizeof(ztseg_ct_key));
    int cpus = libbpf_num_possible_cpus();
    uint64_t* outs[ZTSEG_CTSTAT_MAX] = {&u.created, &u.assured_total, &u.untracked};
    for (uint32_t i = 0; i < ZTSEG_CTSTAT_MAX; ++i) {
        auto raw = ctstats_.lookupPerCpu(&i, sizeof(uint64_t));
        for (int cpu = 0; cpu < cpus; ++cpu) {
            uint64_t v;
            std::memcpy(&v, raw.data() + size_t(cpu) * sizeof(v), sizeof(v));
            *outs[i] += v;
        }
    }
    return u;
}

}  // namespace ztseg
