/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Connection tracking shared by every program: allowed flows are recorded per
 * (connection, local identity); replies and later packets match the same entry. */
#ifndef ZTSEG_CONNTRACK_H
#define ZTSEG_CONNTRACK_H

#include "failsafe.h"
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
#define ZTSEG_CT_VERDICT 0x3 /* mask for the above */
#define ZTSEG_CT_ASSURED 0x4 /* or'ed in: the entry is in ztseg_ct, not ztseg_ct_new */

/* How a lookup may treat the entry. */
#define ZTSEG_CTL_RELATED 0x1 /* on behalf of an ICMP error: never change the entry */
#define ZTSEG_CTL_TRACK 0x2   /* the hook tracks: note replies, move assured flows */

/* ACK numbers accepted as confirming a reply: a blind spoofer guesses one in
 * 2^16. */
#define ZTSEG_CT_ACK_WINDOW (1u << 16)

static __always_inline void ztseg_ctstat(__u32 which) {
    __u64* c = bpf_map_lookup_elem(&ztseg_ctstats, &which);
    if (c)
        (*c)++;
}

/* A new flow's state machine (ztseg_ct_new): note the first reply; assure the
 * flow when the original side then proves it saw that reply. Returns 1 when
 * the flow is assured (the caller moves it to ztseg_ct). */
static __always_inline int ztseg_ct_progress(struct ztseg_ct_value* v,
                                             const struct ztseg_judgement* j) {
    const struct ztseg_pkt* p = &j->pkt;
    int tcp = p->t.proto == IPPROTO_TCP;

    if (j->direction != v->direction) {
        if (!(v->flags & ZTSEG_CTF_SEEN_REPLY)) {
            v->flags |= ZTSEG_CTF_SEEN_REPLY;
            v->reply_isn = p->tcp_seq + ((p->tcp_flags & ZTSEG_TCP_SYN) ? 1 : 0);
        }
        return 0;
    }
    if (!(v->flags & ZTSEG_CTF_SEEN_REPLY))
        return 0;
    if (!tcp)
        return 1;
    /* ACK without SYN whose acknowledgement number covers the reply */
    return (p->tcp_flags & (ZTSEG_TCP_SYN | ZTSEG_TCP_ACK)) == ZTSEG_TCP_ACK &&
           p->tcp_ack - v->reply_isn < ZTSEG_CT_ACK_WINDOW;
}

/* Is this tuple a tracked connection of j->local_id? Looks in ztseg_ct
 * (assured) first, then ztseg_ct_new. An entry admitted under an older
 * generation, or only by audit mode while the workload no longer is in audit,
 * is judged again against the current policy (so revoking a rule or enforcing
 * a workload cuts existing connections), then refreshed or forgotten. The
 * peer's identity is resolved only for such a re-judgement, so an established
 * packet costs one lookup here. With ZTSEG_CTL_RELATED (an ICMP error, whose
 * sender is not the connection's peer) the entry's recorded identity is used
 * and nothing is changed. Returns ZTSEG_CT_* (| ZTSEG_CT_ASSURED); on a hit
 * j->counter is the entry's rule counter. */
ZTSEG_LOOKUP int ztseg_ct_lookup(struct ztseg_judgement* j, const struct ztseg_tuple* t,
                                 __u32 mode);
#ifdef ZTSEG_DEFINE_LOOKUPS
ZTSEG_LOOKUP int ztseg_ct_lookup(struct ztseg_judgement* j, const struct ztseg_tuple* t,
                                 __u32 mode) {
    struct ztseg_ct_key k;
    struct ztseg_ct_value* v;
    __u64 now, lifetime;
    int related, assured = 1, hit;

    if (!j || !t)
        return ZTSEG_CT_MISS;
    related = mode & ZTSEG_CTL_RELATED;
    ztseg_ct_key_of(&k, t, j->local_id);
    v = bpf_map_lookup_elem(&ztseg_ct, &k);
    if (!v) {
        assured = 0;
        v = bpf_map_lookup_elem(&ztseg_ct_new, &k);
        if (!v)
            return ZTSEG_CT_MISS;
    }
    now = bpf_ktime_get_coarse_ns();
    lifetime = (assured && t->proto == IPPROTO_TCP) ? ZTSEG_CT_TCP_LIFETIME_NS
                                                    : ZTSEG_CT_OTHER_LIFETIME_NS;
    if (now - v->last_seen_ns > lifetime)
        goto forget;
    if (v->generation != j->active.generation ||
        ((v->flags & ZTSEG_CTF_AUDIT) && !(j->local_flags & ZTSEG_IDF_AUDIT))) {
        __u64 p = 0;
        __u32 peer_id = related
                            ? v->peer_id
                            : (__u32)ztseg_identity_find(&j->active, t->family, ztseg_peer_addr(j));
        int allowed, audit;
        /* The host's failsafe flows stay admitted whatever the generation says
         * (an ICMP error's sender is not the peer: the entry's flag decides). */
        __u64 failsafe = 0;
        if (j->local_id == ZTSEG_ID_HOST)
            failsafe = related
                           ? (v->flags & ZTSEG_CTF_FAILSAFE)
                           : ztseg_failsafe_find(ztseg_failsafe_query(v->direction, v->proto),
                                                 v->service_port, t->family, ztseg_peer_addr(j));
        if (!failsafe && peer_id != ZTSEG_ID_UNLABELED)
            p = ztseg_policy_find(&j->active, j->local_id, peer_id,
                                  ztseg_policy_query(v->direction, v->proto, v->service_port));
        allowed = failsafe || (p >> 32) == ZTSEG_ACTION_ALLOW;
        audit = !allowed && peer_id != ZTSEG_ID_UNLABELED && (j->local_flags & ZTSEG_IDF_AUDIT);
        if (!allowed && !audit)
            goto forget;
        if (related)
            return allowed ? ZTSEG_CT_HIT : ZTSEG_CT_HIT_AUDIT;
        if (allowed) {
            v->flags &= ~(ZTSEG_CTF_AUDIT | ZTSEG_CTF_FAILSAFE);
            if (failsafe)
                v->flags |= ZTSEG_CTF_FAILSAFE;
            v->rule_id = (__u32)p;
        } else {
            v->flags |= ZTSEG_CTF_AUDIT;
        }
        v->counter = ztseg_rule_counter(&j->active, (__u32)p);
        v->peer_id = peer_id;
        v->generation = j->active.generation;
    }
    hit = (v->flags & ZTSEG_CTF_AUDIT) ? ZTSEG_CT_HIT_AUDIT : ZTSEG_CT_HIT;
    j->counter = related ? 0 : v->counter;
    if (related)
        return hit | (assured ? ZTSEG_CT_ASSURED : 0);
    /* refresh at most once a second: avoids a cache-line write per packet */
    if (now - v->last_seen_ns > 1000000000ull)
        v->last_seen_ns = now;
    if (!assured && (mode & ZTSEG_CTL_TRACK) && ztseg_ct_progress(v, j)) {
        v->last_seen_ns = now;
        if (bpf_map_update_elem(&ztseg_ct, &k, v, BPF_ANY) == 0) {
            bpf_map_delete_elem(&ztseg_ct_new, &k);
            ztseg_ctstat(ZTSEG_CTSTAT_ASSURED);
            assured = 1;
        }
    }
    return hit | (assured ? ZTSEG_CT_ASSURED : 0);
forget:
    if (!related)
        bpf_map_delete_elem(assured ? (void*)&ztseg_ct : (void*)&ztseg_ct_new, &k);
    return ZTSEG_CT_MISS;
}
#endif

/* A flow admitted just now: tracked as new until assured. */
static __always_inline void ztseg_ct_create(const struct ztseg_judgement* j, __u32 rule_id,
                                            __u8 flags) {
    struct ztseg_ct_key k;
    struct ztseg_ct_value v = {};
    const struct ztseg_tuple* t = &j->pkt.t;

    ztseg_ct_key_of(&k, t, j->local_id);
    v.created_ns = v.last_seen_ns = bpf_ktime_get_coarse_ns();
    v.generation = j->active.generation;
    v.peer_id = j->peer_id;
    v.rule_id = rule_id;
    v.counter = j->counter;
    v.service_port = ztseg_service_port(t);
    v.proto = t->proto;
    v.direction = j->direction;
    v.flags = flags;
    if (bpf_map_update_elem(&ztseg_ct_new, &k, &v, BPF_ANY) == 0)
        ztseg_ctstat(ZTSEG_CTSTAT_CREATED);
}

#endif /* ZTSEG_CONNTRACK_H */
