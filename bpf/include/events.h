/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Flow events: drop events rate-limited per flow and budgeted per source
 * (srclimit.h), and the emit path. Every event that cannot be delivered (ring
 * buffer full, rate limited, summarized) is counted. */
#ifndef ZTSEG_EVENTS_H
#define ZTSEG_EVENTS_H

#include "identity.h"
#include "srclimit.h"

/* Drop events repeat for every packet of a blocked flow; emit at most one per
 * flow and interval and report how many were suppressed in between. */
#ifdef ZTSEG_DEFINE_LOOKUPS
/* both_ways: one key for the flow in either direction at any hook (audit
 * would-drops of peers without identity, which are never tracked). */
static __always_inline int ztseg_drop_event_allowed(const struct ztseg_judgement* j, __u8 reason,
                                                    __u32* suppressed, int both_ways,
                                                    __u64 interval, __u64 now,
                                                    struct ztseg_src_key* scratch) {
    struct ztseg_ratelimit_entry* e;
    struct ztseg_tuple t = j->pkt.t;
    __u8 hook = both_ways ? 0xff : j->hook;
    __u32 slot, salt;

    if (both_ways && j->direction == ZTSEG_DIR_EGRESS) { /* orient as peer -> local */
        __builtin_memcpy(t.saddr, j->pkt.t.daddr, 16);
        __builtin_memcpy(t.daddr, j->pkt.t.saddr, 16);
        t.sport = j->pkt.t.dport;
        t.dport = j->pkt.t.sport;
    }
    salt = j->local_id ^ ((__u32)hook << 24) ^ ((__u32)reason << 16);
    slot = ztseg_tuple_slot(&t, salt, ZTSEG_RATELIMIT_BITS);
    e = bpf_map_lookup_elem(&ztseg_ratelimit, &slot);
    if (!e)
        return 1;
    if (ztseg_tuple_equal(e, &t) && e->hook == hook && e->reason == reason &&
        e->local_id == j->local_id) {
        if (now - e->last_emit_ns < interval) {
            __sync_fetch_and_add(&e->suppressed, 1);
            ztseg_evstat(ZTSEG_EVSTAT_RATE_LIMITED);
            return 0;
        }
        *suppressed = e->suppressed;
    } else {
        /* a new flow, or another flow's slot: take it over */
        ztseg_flow_evict(e, now, scratch);
        __builtin_memcpy(e, &t, sizeof(t));
        e->hook = hook;
        e->reason = reason;
        e->local_id = j->local_id;
        e->peer_id = j->peer_id;
        e->verdict = both_ways ? ZTSEG_VERDICT_WOULD_DROP : ZTSEG_VERDICT_DROPPED;
        e->direction = j->direction;
        e->event_hook = j->hook;
    }
    e->suppressed = 0;
    e->last_emit_ns = now;
    return 1;
}

/* The source key of a drop or would-drop of this judgement. */
static __always_inline void ztseg_src_key_of(struct ztseg_src_key* k,
                                             const struct ztseg_judgement* j, __u8 verdict,
                                             __u8 reason) {
    const __u32* peer = j->direction == ZTSEG_DIR_EGRESS ? j->pkt.t.daddr : j->pkt.t.saddr;

    __builtin_memcpy(k->peer, peer, 16);
    k->local_id = j->local_id;
    k->peer_id = j->peer_id;
    k->family = j->pkt.t.family;
    k->verdict = verdict;
    k->hook = j->hook;
    k->reason = reason;
    k->direction = j->direction;
    k->proto = j->pkt.t.proto;
    k->dport = j->pkt.t.dport;
}

/* Drops and would-drops: may this one have an event of its own (per-flow
 * limit, then the source's budget)? *suppressed: its flow's drops since the
 * last event, to report with it. */
static __always_inline int ztseg_drop_event_due(const struct ztseg_judgement* j, __u8 verdict,
                                                __u8 reason, __u32* suppressed) {
    __u64 interval = ztseg_config_get(ZTSEG_CFG_DROP_EVENT_INTERVAL_NS);
    /* jiffy resolution is plenty for intervals of ms to s, at a tenth of the cost */
    __u64 now = bpf_ktime_get_coarse_ns();
    int unlabeled = reason == ZTSEG_REASON_DROP_UNLABELED;
    struct ztseg_src_key k = {};

    if (interval == 0)
        return 1;
    if (verdict == ZTSEG_VERDICT_DROPPED &&
        !ztseg_drop_event_allowed(j, reason, suppressed, 0, interval, now, &k))
        return 0;
    if (verdict == ZTSEG_VERDICT_WOULD_DROP && unlabeled &&
        !ztseg_drop_event_allowed(j, reason, suppressed, 1, interval, now, &k))
        return 0;
    ztseg_src_key_of(&k, j, verdict, reason);
    return ztseg_src_allowed(&k, *suppressed, interval, now);
}
#endif

/* A flow event for this judgement (drops rate-limited per flow, budgeted per
 * source). */
ZTSEG_LOOKUP int ztseg_emit(const struct ztseg_judgement* j, __u32 verdict, __u32 reason);
#ifdef ZTSEG_DEFINE_LOOKUPS
ZTSEG_LOOKUP int ztseg_emit(const struct ztseg_judgement* j, __u32 verdict, __u32 reason) {
    struct ztseg_flow_event* e;
    __u32 suppressed = 0;

    if (!j)
        return 0;
    if (verdict != ZTSEG_VERDICT_ALLOWED && !ztseg_drop_event_due(j, verdict, reason, &suppressed))
        return 0;
    e = bpf_ringbuf_reserve(&ztseg_events, sizeof(*e), 0);
    if (!e) {
        ztseg_evstat(ZTSEG_EVSTAT_LOST_RINGBUF);
        if (verdict != ZTSEG_VERDICT_ALLOWED)
            ztseg_evstat_add(ZTSEG_EVSTAT_LOST_DROPS, 1 + (__u64)suppressed);
        return 0;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->cgroup_id = j->cgroup_id;
    e->generation = j->active.generation;
    __builtin_memcpy(e->saddr, j->pkt.t.saddr, 16);
    __builtin_memcpy(e->daddr, j->pkt.t.daddr, 16);
    if (j->direction == ZTSEG_DIR_EGRESS) {
        e->src_identity = j->local_id;
        e->dst_identity = j->peer_id;
    } else {
        e->src_identity = j->peer_id;
        e->dst_identity = j->local_id;
    }
    e->rule_id = j->rule_id;
    e->pkt_len = j->len;
    e->suppressed = suppressed;
    e->ifindex = j->ifindex;
    e->sport = j->pkt.t.sport;
    e->dport = j->pkt.t.dport;
    e->family = j->pkt.t.family;
    e->proto = j->pkt.t.proto;
    e->hook = j->hook;
    e->verdict = verdict;
    e->reason = reason;
    e->direction = j->direction;
    e->icmp_type = j->pkt.icmp_type;
    e->icmp_code = j->pkt.icmp_code;
    e->kind = ZTSEG_EVENT_FLOW;
    e->flags = j->pkt.proof == ZTSEG_PROOF_VALID ? ZTSEG_EVF_PROVEN : 0;
    e->port_bits = 0;
    e->window_start_ns = 0;
    bpf_ringbuf_submit(e, 0);
    ztseg_evstat(ZTSEG_EVSTAT_EMITTED);
    return 1;
}
#endif

#endif /* ZTSEG_EVENTS_H */
