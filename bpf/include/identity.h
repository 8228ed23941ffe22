/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Resolving who a packet's peer is: the active generation's identity maps
 * for addresses (exact host match first, then the LPM trie), the endpoint
 * map for local workload cgroups. */
#ifndef ZTSEG_IDENTITY_H
#define ZTSEG_IDENTITY_H

#include "bpf_maps.h"

/* The generation currently enforced. slot < 0: no policy loaded yet. */
struct ztseg_active {
    int slot;
    __u32 flags; /* ZTSEG_SLOTF_LPM4/6: the tries hold something */
    __u64 generation;
    __u32 probe_masks[ZTSEG_PROBE_COMBOS];
};

static __always_inline void ztseg_load_active(struct ztseg_active* a) {
    __u32 k = ZTSEG_CFG_ACTIVE_SLOT;
    __u64* v = bpf_map_lookup_elem(&ztseg_config, &k);
    struct ztseg_slot_meta* m;
    __u32 slot;

    a->slot = -1;
    if (!v || *v == 0 || *v > ZTSEG_SLOTS)
        return;
    slot = (__u32)*v - 1;
    m = bpf_map_lookup_elem(&ztseg_slots, &slot);
    if (!m)
        return;
    a->slot = slot;
    a->flags = m->flags;
    __builtin_memcpy(a->probe_masks, m->probe_masks, sizeof(a->probe_masks));
    a->generation = m->generation;
}

/* Bodies of the shared lookups are compiled once (bpf/lookups.c defines
 * ZTSEG_DEFINE_LOOKUPS) as global functions: the verifier checks each once
 * instead of once per call site, and every program calls the same code. */
#define ZTSEG_LOOKUP __attribute__((noinline))

/* An address as the lookups take it (IPv4 in w[0]), network order. */
struct ztseg_addr {
    __u32 w[4];
};

/* Identity of an address: identity in the low 32 bits, its ZTSEG_IDF_* flags
 * in the high 32; 0 (unlabeled, no flags) if nothing matches. Inlined: it is
 * on every packet's path and cheap to verify. */
static __always_inline __u64 ztseg_identity_find(const struct ztseg_active* a, __u32 family,
                                                 const struct ztseg_addr* addr) {
    struct ztseg_identity_info* info = 0;
    __u32 slot;
    void* inner;

    if (!a || !addr || a->slot < 0)
        return 0;
    slot = a->slot;
    if (family == 4) {
        struct ztseg_host4_key h;
        __builtin_memcpy(h.addr, addr->w, 4);
        inner = bpf_map_lookup_elem(&ztseg_host4, &slot);
        if (inner)
            info = bpf_map_lookup_elem(inner, &h);
        if (!info && (a->flags & ZTSEG_SLOTF_LPM4)) {
            struct ztseg_ident4_key k = {.prefixlen = 32};
            __builtin_memcpy(k.addr, addr->w, 4);
            inner = bpf_map_lookup_elem(&ztseg_ident4, &slot);
            if (inner)
                info = bpf_map_lookup_elem(inner, &k);
        }
    } else {
        struct ztseg_host6_key h;
        __builtin_memcpy(h.addr, addr->w, 16);
        inner = bpf_map_lookup_elem(&ztseg_host6, &slot);
        if (inner)
            info = bpf_map_lookup_elem(inner, &h);
        if (!info && (a->flags & ZTSEG_SLOTF_LPM6)) {
            struct ztseg_ident6_key k = {.prefixlen = 128};
            __builtin_memcpy(k.addr, addr->w, 16);
            inner = bpf_map_lookup_elem(&ztseg_ident6, &slot);
            if (inner)
                info = bpf_map_lookup_elem(inner, &k);
        }
    }
    return info ? ((__u64)info->flags << 32) | info->identity : 0;
}

/* Identity of an address (network order), or ZTSEG_ID_UNLABELED with flags 0. */
static __always_inline struct ztseg_identity_info ztseg_identity_of(const struct ztseg_active* a,
                                                                    __u8 family,
                                                                    const __u32* addr) {
    __u64 found = ztseg_identity_find(a, family, (const struct ztseg_addr*)addr);
    struct ztseg_identity_info info = {(__u32)found, (__u32)(found >> 32)};
    return info;
}

/* The managed workload a cgroup belongs to, or NULL. */
static __always_inline struct ztseg_identity_info* ztseg_endpoint_of(const struct ztseg_active* a,
                                                                     __u64 cgroup_id) {
    struct ztseg_endpoint_key k = {.cgroup_id = cgroup_id};
    __u32 slot = a->slot;
    struct ztseg_identity_info* ep;
    void* inner;

    if (a->slot < 0)
        return 0;
    inner = bpf_map_lookup_elem(&ztseg_endpoints, &slot);
    if (!inner)
        return 0;
    ep = bpf_map_lookup_elem(inner, &k);
    if (!ep || !(ep->flags & ZTSEG_IDF_MANAGED))
        return 0;
    return ep;
}

/* The managed workload the current task belongs to, or NULL: for hooks that
 * run in a task's context (BPF LSM) rather than on a socket or packet. */
static __always_inline struct ztseg_identity_info* ztseg_workload_of_current(
    const struct ztseg_active* a) {
    return ztseg_endpoint_of(a, bpf_get_current_cgroup_id());
}

#endif /* ZTSEG_IDENTITY_H */
