// What a datapath is created with: where it pins, how large its maps are,
// which raw-socket guard it may use. Plain data (no libbpf), so the daemon's
// config can hold it.
#pragma once

#include <cstdint>
#include <string>

#include "abi.h"
#include "datapath/raw_socket_guard.hpp"

namespace ztseg {

inline constexpr const char* kDefaultPinDir = "/sys/fs/bpf/ztseg";

struct DatapathOptions {
    std::string pin_dir = kDefaultPinDir;
    // Per-generation inner maps: an apply that needs more is refused whole.
    uint32_t policy_capacity = ZTSEG_DEFAULT_POLICY_CAPACITY;
    uint32_t identity_capacity = ZTSEG_DEFAULT_IDENT_CAPACITY;  // per address family
    uint32_t endpoint_capacity = ZTSEG_DEFAULT_ENDPOINT_CAPACITY;
    // Rules counted per generation, and the slots of the pinned per-rule
    // counters (ztseg_rule_hits: 32 bytes per slot and CPU). Rules beyond it
    // are enforced but not counted. rule_counters false: nothing is counted.
    uint32_t rule_capacity = ZTSEG_DEFAULT_RULE_CAPACITY;
    bool rule_counters = true;
    // Shared maps, sized at load.
    uint32_t conntrack_capacity = ZTSEG_DEFAULT_CT_CAPACITY;          // assured (established) flows
    uint32_t conntrack_new_capacity = ZTSEG_DEFAULT_CT_NEW_CAPACITY;  // new, not yet assured
    uint32_t ringbuf_bytes = ZTSEG_DEFAULT_RINGBUF_BYTES;
    uint64_t drop_event_interval_ns = 1'000'000'000;  // per flow; 0 = no rate limit
    // Drop events per (source address, local workload, verdict) and interval;
    // the rest go into one summary event (docs/threat-model.md). 0 = no budget.
    uint32_t drop_event_source_budget = 16;
    // The raw-socket guard (datapath/raw_socket_guard.hpp): a BPF LSM program
    // for the whole host. It needs "bpf" in the kernel's active LSM list at
    // lsm_list (tests point it elsewhere). Off only for tests that make their
    // own process (and so its whole cgroup) a workload.
    bool raw_socket_guard = true;
    // Where the kernel does not run BPF LSM programs: confine raw sockets with
    // cgroup/sock_create (raw IP: EPERM) and a kprobe that kills a workload
    // task asking for a packet or XDP socket. Off: such hosts stay unconfined.
    bool raw_socket_fallback = true;
    // The fallback's kill hook (tests force one; Auto picks for the kernel).
    RawKillHook raw_socket_kill_hook = RawKillHook::Auto;
    std::string lsm_list = "/sys/kernel/security/lsm";
    // The network namespace whose processes outside workload cgroups are
    // "the host" for host policies, by netns cookie; 0: the one this process
    // runs in (ztsegd: the host's). Tests name a lab namespace.
    uint64_t host_netns_cookie = 0;
};

}  // namespace ztseg
