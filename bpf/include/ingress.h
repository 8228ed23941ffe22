/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The interface ingress stage: the earliest, cheapest verdict, shared by XDP
 * (bpf/xdp_ingress.c: physical NICs, native mode) and tc at tcx ingress
 * (bpf/tc_ingress.c: veth and other virtual devices). Drops what it can know
 * from the wire before the stack does any work on it: malformed packets,
 * forged loopback addresses, sources without identity, and flows the
 * destination workload's policy does not admit. Everything it admits is
 * judged exactly again by cgroup_skb. The hooks differ only in how bytes are
 * read (struct ztseg_ingress_ctx) and in their return codes.
 */
#ifndef ZTSEG_INGRESS_H
#define ZTSEG_INGRESS_H

#include "verdict.h"

static __always_inline void ztseg_frag_key_of(struct ztseg_frag_key* k, const struct ztseg_pkt* p) {
    __builtin_memcpy(k->saddr, p->t.saddr, 16);
    __builtin_memcpy(k->daddr, p->t.daddr, 16);
    k->id = p->frag_id;
    k->proto = p->t.proto;
    k->family = p->t.family;
    k->pad[0] = k->pad[1] = 0;
}

/* Non-first fragments carry no ports: they follow their first fragment's verdict. */
static __always_inline int ztseg_later_fragment(struct ztseg_judgement* j) {
    struct ztseg_frag_key k;
    struct ztseg_frag_value* v;

    ztseg_frag_key_of(&k, &j->pkt);
    v = bpf_map_lookup_elem(&ztseg_frags, &k);
    if (v && v->admitted) {
        ztseg_count(j->hook, ZTSEG_REASON_PASS_TO_STACK, j->len);
        return ZTSEG_PASS;
    }
    ztseg_count(j->hook, ZTSEG_REASON_DROP_FRAGMENT, j->len);
    ztseg_emit(j, ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_FRAGMENT);
    return ZTSEG_DROP;
}

static __always_inline void ztseg_remember_first_fragment(const struct ztseg_pkt* p, int admitted) {
    struct ztseg_frag_key k;
    struct ztseg_frag_value v = {};

    ztseg_frag_key_of(&k, p);
    v.seen_ns = bpf_ktime_get_coarse_ns();
    v.sport = p->t.sport;
    v.dport = p->t.dport;
    v.admitted = admitted;
    bpf_map_update_elem(&ztseg_frags, &k, &v, BPF_ANY);
}

static __always_inline __u32 ztseg_flowcache_slot(const struct ztseg_tuple* t) {
    return ztseg_tuple_slot(t, 0, ZTSEG_FLOWCACHE_BITS);
}

static __always_inline int ztseg_flowcache_match(const struct ztseg_flowcache_entry* e,
                                                 const struct ztseg_tuple* t, __u64 generation) {
    return e->generation == generation && ztseg_tuple_equal(e, t);
}

static __always_inline void ztseg_flowcache_fill(struct ztseg_flowcache_entry* e,
                                                 const struct ztseg_tuple* t, __u64 generation) {
    __builtin_memcpy(e, t, sizeof(*t));
    e->generation = generation;
}

/* An unlabeled source sending to the host (a declared host address, or an
 * address no identity owns) on a failsafe flow: the first packet of a flow a
 * failsafe rule admits (SSH from a management range), or a reply to one the
 * host opened (DNS, the controller). Stateless here: the cgroup stage judges
 * the host's sockets again, with conntrack. A workload's address never
 * qualifies: failsafe rules are the host's. */
static __always_inline int ztseg_ingress_failsafe(struct ztseg_judgement* j,
                                                  struct ztseg_identity_info dst) {
    const struct ztseg_tuple* t = &j->pkt.t;
    const struct ztseg_addr* src = (const struct ztseg_addr*)t->saddr;

    if (dst.identity != ZTSEG_ID_HOST && (dst.flags & ZTSEG_IDF_MANAGED))
        return 0;
    if (!ztseg_has_ports(t->proto))
        return 0;
    return ztseg_failsafe_find(ztseg_failsafe_query(ZTSEG_DIR_INGRESS, t->proto), t->dport,
                               t->family, src) ||
           ztseg_failsafe_find(ztseg_failsafe_query(ZTSEG_DIR_EGRESS, t->proto), t->sport,
                               t->family, src);
}

static __always_inline int ztseg_ingress_verdict(struct ztseg_judgement* j) {
    struct ztseg_identity_info dst;

    /* The destination decides how much to do; the source is looked up only
     * when needed (not for established connections of enforced workloads). */
    dst = ztseg_identity_of(&j->active, j->pkt.t.family, j->pkt.t.daddr);
    j->local_id = dst.identity;
    j->local_flags = dst.flags;

    if (dst.flags & ZTSEG_IDF_AUDIT) {
        /* audit: nothing is dropped; the cgroup stage reports would-drops once */
        ztseg_count(j->hook, ZTSEG_REASON_PASS_TO_STACK, j->len);
        return ZTSEG_PASS;
    }
    ztseg_resolve_peer(j);
    /* No connection with an unlabeled peer is ever tracked for an enforced
     * workload (such flows are refused both ways), so an unlabeled source is
     * dropped before the conntrack probe: the cheapest verdict for a flood.
     * ICMP errors are the exception: one about a tracked connection may come
     * from any router on the path and is judged in full.
     * A SYN opens a connection: judged by policy alone (XDP tracks nothing; a
     * retransmitted SYN of an admitted connection is admitted by the same
     * policy, and in a simultaneous open the SYN-ACK still finds the entry). */
    if ((dst.flags & ZTSEG_IDF_ENFORCE) && (j->peer_id != ZTSEG_ID_UNLABELED || j->pkt.icmp_error))
        return ztseg_judge(j, ztseg_is_tcp_syn(&j->pkt) ? 0 : ZTSEG_J_CONNTRACK);
    if (j->peer_id == ZTSEG_ID_UNLABELED && ztseg_ingress_failsafe(j, dst)) {
        ztseg_count(j->hook, ZTSEG_REASON_ALLOW_FAILSAFE, j->len);
        return ZTSEG_PASS;
    }
    if (j->peer_id == ZTSEG_ID_UNLABELED) {
        ztseg_count(j->hook, ZTSEG_REASON_DROP_UNLABELED, j->len);
        ztseg_emit(j, ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_UNLABELED);
        return ZTSEG_DROP;
    }
    /* any destination: a fleet peer's address proves its SYNs or is refused */
    if (ztseg_is_tcp_syn(&j->pkt) && !ztseg_prove_peer(j)) {
        ztseg_count(j->hook, ZTSEG_REASON_DROP_UNPROVEN, j->len);
        ztseg_emit(j, ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_UNPROVEN);
        return ZTSEG_DROP;
    }
    ztseg_count(j->hook, ZTSEG_REASON_PASS_TO_STACK, j->len);
    return ZTSEG_PASS;
}

/* What the ingress stage needs from the hook that runs it: the packet (an
 * xdp_md, or an __sk_buff at tcx ingress), how to read its bytes (`xdp`:
 * direct packet access; otherwise bpf_skb_load_bytes), where the frame
 * starts (`l3`: at the IP header, else at an Ethernet header), the device
 * and the whole frame's length. `xdp` and `l3` are constants per program. */
struct ztseg_ingress_ctx {
    void* ctx;
    void* data;
    void* data_end;
    __u32 ifindex;
    __u32 len;
};

/* tc: bpf_skb_load_bytes parses into scratch buffers; in a global function
 * (verified once) they live on its own frame, off the stack that the
 * conntrack and policy lookups build on (512 bytes for a call chain).
 * Defined in tc_ingress.c; XDP never calls it (direct packet access). */
__attribute__((noinline)) int ztseg_parse_tc_frame(struct __sk_buff* skb, struct ztseg_pkt* pkt,
                                                   int l3);

/* The whole interface ingress stage for one packet: ZTSEG_PASS or ZTSEG_DROP.
 * XDP and tc run exactly this (the same decisions, counters and events;
 * both count and report as ZTSEG_HOOK_XDP, "the interface ingress stage"),
 * and only map the verdict to their return codes. */
static __always_inline int ztseg_ingress_run(const struct ztseg_ingress_ctx* ic, const int xdp,
                                             const int l3) {
    struct ztseg_judgement j = {};
    struct ztseg_flowcache_entry* cached = 0;
    __u32 cache_slot;
    int rc, verdict;

    j.hook = ZTSEG_HOOK_XDP;
    j.direction = ZTSEG_DIR_INGRESS;
    j.ifindex = ic->ifindex;
    j.len = ic->len;

    rc = xdp ? ztseg_parse_frame(ic->ctx, ic->data, ic->data_end, xdp, l3, j.len, &j.pkt)
             : ztseg_parse_tc_frame(ic->ctx, &j.pkt, l3);
    if (rc == ZTSEG_PARSE_MALFORMED) {
        ztseg_count(j.hook, ZTSEG_REASON_DROP_MALFORMED, j.len);
        ztseg_emit(&j, ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_MALFORMED);
        return ZTSEG_DROP;
    }
    ztseg_load_active(&j.active);
    /* The ingress stage never runs on loopback: a loopback address here is
     * forged (an attack on route_localnet). Dropped before any identity
     * lookup, with or without a policy, ND/MLD included. */
    if (j.pkt.t.family && ztseg_is_martian(&j.pkt.t)) {
        ztseg_count(j.hook, ZTSEG_REASON_DROP_MARTIAN, j.len);
        ztseg_emit(&j, ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_MARTIAN);
        return ZTSEG_DROP;
    }
    if (rc == ZTSEG_PARSE_NOT_SUBJECT) {
        ztseg_count(j.hook, ZTSEG_REASON_PASS_NOT_SUBJECT, j.len);
        return ZTSEG_PASS;
    }
    /* No policy loaded yet: there are no identities, so every source would be
     * "unlabeled" and a freshly started ztsegd would cut the host off. Until
     * the first generation is active, the ingress stage passes to the stack. */
    if (j.active.slot < 0) {
        ztseg_count(j.hook, ZTSEG_REASON_PASS_TO_STACK, j.len);
        return ZTSEG_PASS;
    }
    if (j.pkt.frag == ZTSEG_FRAG_LATER)
        return ztseg_later_fragment(&j);

    if (j.pkt.frag == ZTSEG_FRAG_NONE) {
        cache_slot = ztseg_flowcache_slot(&j.pkt.t);
        cached = bpf_map_lookup_elem(&ztseg_flowcache, &cache_slot);
        if (cached && ztseg_flowcache_match(cached, &j.pkt.t, j.active.generation)) {
            ztseg_count(j.hook, ZTSEG_REASON_ALLOW_CONNTRACK, j.len);
            return ZTSEG_PASS;
        }
    }
    verdict = ztseg_ingress_verdict(&j);
    if (cached && j.ct_hit)
        ztseg_flowcache_fill(cached, &j.pkt.t, j.active.generation);
    if (j.pkt.frag == ZTSEG_FRAG_FIRST)
        ztseg_remember_first_fragment(&j.pkt, verdict == ZTSEG_PASS);
    return verdict;
}

#endif /* ZTSEG_INGRESS_H */
