/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Resolving who a packet's peer is: the active generation's identity maps
 * for addresses (exact host match first, then the LPM trie), the endpoint
 * map for local workload cgroups. */
#ifndef ZTSEG_IDENTITY_H
#define ZTSEG_IDENTITY_H

#include "context.h"

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

/* The workload a cgroup belongs to: the nearest of its ancestors (itself
 * included) that is a classified workload cgroup or a pending one, looked up
 * only at the levels where such cgroups exist, deepest first. skb: the
 * socket's cgroup of a packet; NULL: the current task's cgroup (sock_addr and
 * LSM hooks). Packed like ztseg_identity_find(): identity in the low 32 bits,
 * flags in the high 32; 0 when that is no managed workload;
 * ZTSEG_WL_QUARANTINE when pending with no known workload (callers drop as
 * ZTSEG_REASON_DROP_UNCLASSIFIED). Callers wrap it in a global function so
 * the verifier walks the loop once. */
#define ZTSEG_WL_QUARANTINE (1ull << 63)
/* `unmanaged`: what a cgroup of a workload no policy selects yields (0, or
 * ZTSEG_WL_UNMANAGED where the caller must tell it from "no workload at all":
 * such a process is a workload's, never the host's). */
#define ZTSEG_WL_UNMANAGED (1ull << 62)
static __always_inline __u64 ztseg_workload_walk(const struct ztseg_active* a,
                                                 struct __sk_buff* skb, __u64 unmanaged) {
    __u64 pending_levels = ztseg_config_get(ZTSEG_CFG_PENDING_LEVELS);
    __u64 levels = ztseg_config_get(ZTSEG_CFG_WORKLOAD_LEVELS) | pending_levels;
    void* endpoints = 0;
    __u32 slot;

    if (!a || !levels)
        return 0;
    if (a->slot >= 0) {
        slot = a->slot;
        endpoints = bpf_map_lookup_elem(&ztseg_endpoints, &slot);
    }
    for (int i = ZTSEG_CG_MAX_LEVEL - 1; i >= 0; i--) {
        struct ztseg_identity_info* ep;
        struct ztseg_pending_cgroup* p;
        __u64 id;

        if (!(levels & (1ull << i)))
            continue;
        id = skb ? bpf_skb_ancestor_cgroup_id(skb, i) : bpf_get_current_ancestor_cgroup_id(i);
        if (!id)
            continue; /* the cgroup is shallower than this level */
        if (endpoints) {
            ep = bpf_map_lookup_elem(endpoints, &id);
            if (ep)
                return (ep->flags & ZTSEG_IDF_MANAGED) ? ((__u64)ep->flags << 32) | ep->identity
                                                       : unmanaged;
        }
        if (!(pending_levels & (1ull << i)))
            continue; /* no cgroup was ever pending at this level */
        p = bpf_map_lookup_elem(&ztseg_cg_pending, &id);
        if (p) {
            if (p->info.identity == ZTSEG_ID_UNLABELED)
                return ZTSEG_WL_QUARANTINE;
            return (p->info.flags & ZTSEG_IDF_MANAGED)
                       ? ((__u64)p->info.flags << 32) | p->info.identity
                       : unmanaged;
        }
    }
    return 0;
}

/* The current task's workload (see ztseg_workload_walk). */
ZTSEG_LOOKUP __u64 ztseg_workload_of_current(const struct ztseg_active* a);
#ifdef ZTSEG_DEFINE_LOOKUPS
ZTSEG_LOOKUP __u64 ztseg_workload_of_current(const struct ztseg_active* a) {
    return ztseg_workload_walk(a, 0, 0);
}
#endif

/* The peer's address: the source of what arrives, the destination of what leaves. */
static __always_inline const struct ztseg_addr* ztseg_peer_addr(const struct ztseg_judgement* j) {
    return (const struct ztseg_addr*)(j->direction == ZTSEG_DIR_INGRESS ? j->pkt.t.saddr
                                                                        : j->pkt.t.daddr);
}

static __always_inline void ztseg_resolve_peer(struct ztseg_judgement* j) {
    if (!j->peer_known) {
        j->peer_id = (__u32)ztseg_identity_find(&j->active, j->pkt.t.family, ztseg_peer_addr(j));
        j->peer_known = 1;
    }
}

#endif /* ZTSEG_IDENTITY_H */
