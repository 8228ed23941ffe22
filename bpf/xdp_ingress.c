// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * XDP on host interfaces: the earliest, cheapest verdict. Drops what it can
 * know from the wire before the stack allocates anything: malformed packets,
 * sources without identity, and flows the destination workload's policy does
 * not admit. Everything it admits is judged exactly again by cgroup_skb.
 */
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
        return XDP_PASS;
    }
    ztseg_count(j->hook, ZTSEG_REASON_DROP_FRAGMENT, j->len);
    ztseg_emit(j, ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_FRAGMENT);
    return XDP_DROP;
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

static __always_inline int ztseg_xdp_verdict(struct ztseg_judgement* j) {
    struct ztseg_identity_info src, dst;

    ztseg_load_active(&j->active);
    src = ztseg_identity_of(&j->active, j->pkt.t.family, j->pkt.t.saddr);
    dst = ztseg_identity_of(&j->active, j->pkt.t.family, j->pkt.t.daddr);
    j->peer_id = src.identity;
    j->local_id = dst.identity;
    j->local_flags = dst.flags;

    if (dst.flags & ZTSEG_IDF_AUDIT) {
        /* audit: nothing is dropped; the cgroup stage reports would-drops once */
        ztseg_count(j->hook, ZTSEG_REASON_PASS_TO_STACK, j->len);
        return ZTSEG_PASS;
    }
    if (dst.flags & ZTSEG_IDF_ENFORCE)
        return ztseg_judge(j, ZTSEG_J_CONNTRACK);
    if (src.identity == ZTSEG_ID_UNLABELED) {
        ztseg_count(j->hook, ZTSEG_REASON_DROP_UNLABELED, j->len);
        ztseg_emit(j, ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_UNLABELED);
        return ZTSEG_DROP;
    }
    ztseg_count(j->hook, ZTSEG_REASON_PASS_TO_STACK, j->len);
    return ZTSEG_PASS;
}

SEC("xdp")
int ztseg_xdp(struct xdp_md* ctx) {
    struct ztseg_judgement j = {};
    int rc, verdict;

    j.hook = ZTSEG_HOOK_XDP;
    j.direction = ZTSEG_DIR_INGRESS;
    j.ifindex = ctx->ingress_ifindex;
    j.len = ctx->data_end - ctx->data;

    rc = ztseg_parse_xdp(ctx, &j.pkt);
    if (rc == ZTSEG_PARSE_NOT_SUBJECT) {
        ztseg_count(j.hook, ZTSEG_REASON_PASS_NOT_SUBJECT, j.len);
        return XDP_PASS;
    }
    if (rc != ZTSEG_PARSE_OK) {
        ztseg_count(j.hook, ZTSEG_REASON_DROP_MALFORMED, j.len);
        ztseg_emit(&j, ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_MALFORMED);
        return XDP_DROP;
    }
    if (j.pkt.frag == ZTSEG_FRAG_LATER)
        return ztseg_later_fragment(&j);

    verdict = ztseg_xdp_verdict(&j);
    if (j.pkt.frag == ZTSEG_FRAG_FIRST)
        ztseg_remember_first_fragment(&j.pkt, verdict == ZTSEG_PASS);
    return verdict == ZTSEG_PASS ? XDP_PASS : XDP_DROP;
}
