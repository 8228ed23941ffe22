/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Map definitions. Exactly one object (bpf/maps.c) defines them; the entry
 * programs declare them extern and `bpftool gen object` links all into one
 * object, so every program shares the same maps.
 */
#ifndef ZTSEG_MAPS_H
#define ZTSEG_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"

#ifdef ZTSEG_DEFINE_MAPS
#define ZTSEG_MAP
#else
#define ZTSEG_MAP __attribute__((weak))
#endif

ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, ZTSEG_CFG_MAX);
    __type(key, __u32);
    __type(value, __u64);
} ztseg_config SEC(".maps");

ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, ZTSEG_SLOTS);
    __type(key, __u32);
    __type(value, struct ztseg_slot_meta);
} ztseg_slots SEC(".maps");

/* The per-generation maps (ZTSEG_SLOT_MAPS in abi.h): an inner-map template
 * each, and an array of ZTSEG_SLOTS such maps. Userspace creates fresh inner
 * maps of these shapes for every generation and installs them into the
 * inactive slot. Sizes, not BTF types: clang only emits forward declarations
 * for types reached this deep, which the static linker cannot size. */
#define ZTSEG_SLOT_MAP_DEFINE_(id, name, kind, key_type, value_type, inner_name, capacity, ...) \
    struct name##_inner {                                                                       \
        __uint(type, BPF_MAP_TYPE_##kind);                                                      \
        __uint(map_flags, BPF_F_NO_PREALLOC);                                                   \
        __uint(max_entries, ZTSEG_DEFAULT_##capacity);                                          \
        __uint(key_size, sizeof(key_type));                                                     \
        __uint(value_size, sizeof(value_type));                                                 \
    };                                                                                          \
    ZTSEG_MAP struct {                                                                          \
        __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);                                               \
        __uint(max_entries, ZTSEG_SLOTS);                                                       \
        __type(key, __u32);                                                                     \
        __array(values, struct name##_inner);                                                   \
    } name SEC(".maps");
ZTSEG_SLOT_MAPS(ZTSEG_SLOT_MAP_DEFINE_)
#undef ZTSEG_SLOT_MAP_DEFINE_

ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, ZTSEG_DEFAULT_CT_CAPACITY);
    __type(key, struct ztseg_ct_key);
    __type(value, struct ztseg_ct_value);
} ztseg_ct SEC(".maps");

ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, ZTSEG_DEFAULT_CT_NEW_CAPACITY);
    __type(key, struct ztseg_ct_key);
    __type(value, struct ztseg_ct_value);
} ztseg_ct_new SEC(".maps");

ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, ZTSEG_CTSTAT_MAX);
    __type(key, __u32);
    __type(value, __u64);
} ztseg_ctstats SEC(".maps");

/* Workload cgroups not classified yet (see abi.h). Shared by every slot:
 * written by the cgroup_mkdir tracepoint program at creation, synchronously. */
ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, ZTSEG_DEFAULT_PENDING_CAPACITY);
    __type(key, __u64);
    __type(value, struct ztseg_pending_cgroup);
} ztseg_cg_pending SEC(".maps");

ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, ZTSEG_DEFAULT_CG_NAMES_CAPACITY);
    __type(key, struct ztseg_cg_name_key);
    __type(value, struct ztseg_identity_info);
} ztseg_cg_names SEC(".maps");

ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, ZTSEG_DEFAULT_CG_NAMES_CAPACITY);
    __type(key, __u64);
    __type(value, struct ztseg_cg_guard);
} ztseg_cg_guards SEC(".maps");

ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, ZTSEG_DEFAULT_FRAG_CAPACITY);
    __type(key, struct ztseg_frag_key);
    __type(value, struct ztseg_frag_value);
} ztseg_frags SEC(".maps");

ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, ZTSEG_FLOWCACHE_SLOTS);
    __type(key, __u32);
    __type(value, struct ztseg_flowcache_entry);
} ztseg_flowcache SEC(".maps");

ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, ZTSEG_COUNTER_SLOTS);
    __type(key, __u32);
    __type(value, struct ztseg_counter);
} ztseg_counters SEC(".maps");

ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, ZTSEG_EVSTAT_MAX);
    __type(key, __u32);
    __type(value, __u64);
} ztseg_evstats SEC(".maps");

ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, ZTSEG_RATELIMIT_SLOTS);
    __type(key, __u32);
    __type(value, struct ztseg_ratelimit_entry);
} ztseg_ratelimit SEC(".maps");

/* Per-rule hit counters (abi.h): sized by userspace before load. */
ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, ZTSEG_DEFAULT_RULE_CAPACITY);
    __type(key, __u32);
    __type(value, struct ztseg_rule_hits);
} ztseg_rule_hits SEC(".maps");

/* Which rule fingerprint holds which ztseg_rule_hits slot: read and written
 * by ztsegd only, pinned so the assignment outlives its restarts. */
ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __uint(max_entries, ZTSEG_DEFAULT_RULE_CAPACITY);
    __type(key, __u64);
    __type(value, struct ztseg_rule_slot);
} ztseg_rule_slots SEC(".maps");

ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, ZTSEG_SRCLIMIT_SLOTS);
    __type(key, __u32);
    __type(value, struct ztseg_srclimit_entry);
} ztseg_srclimit SEC(".maps");

/* Failsafe rules (abi.h): written by ztsegd at start, read by every hook. */
ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __uint(max_entries, ZTSEG_FAILSAFE_CAPACITY);
    __type(key, struct ztseg_failsafe_key);
    __type(value, struct ztseg_failsafe_value);
} ztseg_failsafe SEC(".maps");

/* Proven identity on the wire (abi.h): which addresses are a fleet peer's,
 * and each peer's keys. Written by ztsegd, read by sock_ops (to prove) and by
 * the ingress hooks (to check). */
ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __uint(max_entries, ZTSEG_WIRE_ADDR_CAPACITY);
    __type(key, struct ztseg_wire_addr_key);
    __type(value, struct ztseg_wire_addr_value);
} ztseg_wire_addrs SEC(".maps");

ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, ZTSEG_WIRE_PEER_CAPACITY);
    __type(key, __u32);
    __type(value, struct ztseg_wire_peer);
} ztseg_wire_peers SEC(".maps");

/* (peer, identity) for every workload identity a peer may prove. */
ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, ZTSEG_WIRE_IDENT_CAPACITY);
    __type(key, struct ztseg_wire_ident_key);
    __type(value, __u8);
} ztseg_wire_idents SEC(".maps");

/* A connecting socket's peer and identity, from connect to its SYN's proof. */
ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct ztseg_sk_proof);
} ztseg_sk_proofs SEC(".maps");

ZTSEG_MAP struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, ZTSEG_DEFAULT_RINGBUF_BYTES);
} ztseg_events SEC(".maps");

#endif /* ZTSEG_MAPS_H */
