/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Resolving who a packet's peer is: the active generation's LPM identity maps
 * for addresses, the endpoint map for local workload cgroups. */
#ifndef ZTSEG_IDENTITY_H
#define ZTSEG_IDENTITY_H

#include "bpf_maps.h"

/* The generation currently enforced. slot < 0: no policy loaded yet. */
struct ztseg_active {
    int slot;
    __u32 port_plen_mask;
    __u64 generation;
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
    a->port_plen_mask = m->port_plen_mask;
    a->generation = m->generation;
}

/* Identity of an address (network order), or ZTSEG_ID_UNLABELED with flags 0. */
static __always_inline struct ztseg_identity_info ztseg_identity_of(const struct ztseg_active* a,
                                                                    __u8 family,
                                                                    const __u32* addr) {
    struct ztseg_identity_info none = {ZTSEG_ID_UNLABELED, 0};
    struct ztseg_identity_info* info = 0;
    __u32 slot = a->slot;
    void* inner;

    if (a->slot < 0)
        return none;
    if (family == 4) {
        struct ztseg_ident4_key k = {.prefixlen = 32};
        __builtin_memcpy(k.addr, addr, 4);
        inner = bpf_map_lookup_elem(&ztseg_ident4, &slot);
        if (inner)
            info = bpf_map_lookup_elem(inner, &k);
    } else {
        struct ztseg_ident6_key k = {.prefixlen = 128};
        __builtin_memcpy(k.addr, addr, 16);
        inner = bpf_map_lookup_elem(&ztseg_ident6, &slot);
        if (inner)
            info = bpf_map_lookup_elem(inner, &k);
    }
    return info ? *info : none;
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

#endif /* ZTSEG_IDENTITY_H */
