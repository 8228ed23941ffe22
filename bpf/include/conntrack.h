/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Connection tracking shared by every program: allowed flows are recorded per
 * (connection, local identity); replies and later packets match the same entry. */
#ifndef ZTSEG_CONNTRACK_H
#define ZTSEG_CONNTRACK_H

#include "parse.h"
#include "policy.h"

/* (a, pa) < (b, pb) over address words then port: picks the canonical order. */
static __always_inline int ztseg_ep_less(const __u32* a, __u16 pa, const __u32* b, __u16 pb) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
        __u32 x = bpf_ntohl(a[i]), y = bpf_ntohl(b[i]);
        if (x != y)
            return x < y;
    }
    return pa < pb;
}

static __always_inline void ztseg_ct_key_of(struct ztseg_ct_key* k, const struct ztseg_tuple* t,
                                            __u32 local_id) {
    int fwd = ztseg_ep_less(t->saddr, t->sport, t->daddr, t->dport);
    __builtin_memcpy(k->addr_a, fwd ? t->saddr : t->daddr, 16);
    __builtin_memcpy(k->addr_b, fwd ? t->daddr : t->saddr, 16);
    k->port_a = fwd ? t->sport : t->dport;
    k->port_b = fwd ? t->dport : t->sport;
    k->proto = t->proto;
    k->family = t->family;
    k->pad[0] = k->pad[1] = 0;
    k->local_id = local_id;
}

#define ZTSEG_CT_MISS 0
#define ZTSEG_CT_HIT 1       /* tracked and still admitted */
#define ZTSEG_CT_HIT_AUDIT 2 /* tracked, admitted only by audit mode */

/* Is this tuple a tracked connection of local_id? An entry admitted under an
 * older generation, or only by audit mode while the workload no longer is in
 * audit, is judged again against the current policy (so revoking a rule or
 * enforcing a workload cuts existing connections), then refreshed or forgotten.
 * peer_addr is the peer's address in the tuple; its identity is resolved only
 * for such a re-judgement, so an established packet costs one lookup here.
 * NULL: a lookup on behalf of an ICMP error, whose sender is not the
 * connection's peer: re-judge with the identity the entry recorded, and never
 * change or delete the entry. */
ZTSEG_LOOKUP int ztseg_ct_lookup(const struct ztseg_active* a, const struct ztseg_tuple* t,
                                 __u32 local_id, __u32 local_flags,
                                 const struct ztseg_addr* peer_addr);
#ifdef ZTSEG_DEFINE_LOOKUPS
ZTSEG_LOOKUP int ztseg_ct_lookup(const struct ztseg_active* a, const struct ztseg_tuple* t,
                                 __u32 local_id, __u32 local_flags,
                                 const struct ztseg_addr* peer_addr) {
    struct ztseg_ct_key k;
    struct ztseg_ct_value* v;
    __u64 now, lifetime;
    int related = peer_addr == 0;

    if (!a || !t)
        return ZTSEG_CT_MISS;
    ztseg_ct_key_of(&k, t, local_id);
    v = bpf_map_lookup_elem(&ztseg_ct, &k);
    if (!v)
        return ZTSEG_CT_MISS;
    now = bpf_ktime_get_coarse_ns();
    lifetime = t->proto == IPPROTO_TCP ? ZTSEG_CT_TCP_LIFETIME_NS : ZTSEG_CT_OTHER_LIFETIME_NS;
    if (now - v->last_seen_ns > lifetime)
        goto forget;
    if (v->generation != a->generation ||
        ((v->flags & ZTSEG_CTF_AUDIT) && !(local_flags & ZTSEG_IDF_AUDIT))) {
        __u64 p = 0;
        __u32 peer_id = related ? v->peer_id : (__u32)ztseg_identity_find(a, t->family, peer_addr);
        int allowed, audit;
        if (peer_id != ZTSEG_ID_UNLABELED)
            p = ztseg_policy_find(a, local_id, peer_id,
                                  ztseg_policy_query(v->direction, v->proto, v->service_port));
        allowed = (p >> 32) == ZTSEG_ACTION_ALLOW;
        audit = !allowed && (local_flags & ZTSEG_IDF_AUDIT);
        if (!allowed && !audit)
            goto forget;
        if (related)
            return allowed ? ZTSEG_CT_HIT : ZTSEG_CT_HIT_AUDIT;
        if (allowed) {
            v->flags &= ~ZTSEG_CTF_AUDIT;
            v->rule_id = (__u32)p;
        } else {
            v->flags |= ZTSEG_CTF_AUDIT;
        }
        v->peer_id = peer_id;
        v->generation = a->generation;
    }
    /* refresh at most once a second: avoids a cache-line write per packet */
    if (!related && now - v->last_seen_ns > 1000000000ull)
        v->last_seen_ns = now;
    return (v->flags & ZTSEG_CTF_AUDIT) ? ZTSEG_CT_HIT_AUDIT : ZTSEG_CT_HIT;
forget:
    if (!related)
        bpf_map_delete_elem(&ztseg_ct, &k);
    return ZTSEG_CT_MISS;
}
#endif

static __always_inline void ztseg_ct_create(const struct ztseg_active* a,
                                            const struct ztseg_tuple* t, __u32 local_id,
                                            __u32 peer_id, __u8 dir, __u32 rule_id, __u8 flags) {
    struct ztseg_ct_key k;
    struct ztseg_ct_value v = {};

    ztseg_ct_key_of(&k, t, local_id);
    v.created_ns = v.last_seen_ns = bpf_ktime_get_coarse_ns();
    v.generation = a->generation;
    v.peer_id = peer_id;
    v.rule_id = rule_id;
    v.service_port = ztseg_service_port(t);
    v.proto = t->proto;
    v.direction = dir;
    v.flags = flags;
    bpf_map_update_elem(&ztseg_ct, &k, &v, BPF_ANY);
}

#endif /* ZTSEG_CONNTRACK_H */
