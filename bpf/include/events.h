/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Counters and flow events. Every verdict is counted; every event that cannot
 * be delivered (ring buffer full, rate limited) is counted too. */
#ifndef ZTSEG_EVENTS_H
#define ZTSEG_EVENTS_H

#include "conntrack.h"

static __always_inline void ztseg_count(__u32 hook, __u32 reason, __u32 bytes) {
    __u32 idx = hook * ZTSEG_REASON_MAX + reason;
    struct ztseg_counter* c = bpf_map_lookup_elem(&ztseg_counters, &idx);
    if (c) {
        c->packets++; /* per-CPU slot: no atomics needed */
        c->bytes += bytes;
    }
}

static __always_inline void ztseg_evstat(__u32 which) {
    __u64* c = bpf_map_lookup_elem(&ztseg_evstats, &which);
    if (c)
        (*c)++;
}

/* Everything known about a packet when its verdict is taken. */
struct ztseg_judgement {
    struct ztseg_pkt pkt;
    struct ztseg_active active;
    __u64 cgroup_id;
    __u32 local_id;
    __u32 local_flags;
    __u32 peer_id;
    __u32 rule_id;
    __u32 ifindex;
    __u32 len;
    __u8 hook;
    __u8 direction;
};

/* Drop events repeat for every packet of a blocked flow; emit at most one per
 * flow and interval and report how many were suppressed in between. */
static __always_inline int ztseg_drop_event_allowed(const struct ztseg_judgement* j, __u8 reason,
                                                    __u32* suppressed) {
    struct ztseg_ratelimit_key k = {};
    struct ztseg_ratelimit_value *v, nv = {};
    __u32 cfg = ZTSEG_CFG_DROP_EVENT_INTERVAL_NS;
    __u64* interval = bpf_map_lookup_elem(&ztseg_config, &cfg);
    __u64 now = bpf_ktime_get_ns();

    if (!interval || *interval == 0)
        return 1;
    ztseg_ct_key_of(&k.flow, &j->pkt.t, j->local_id);
    k.hook = j->hook;
    k.reason = reason;
    v = bpf_map_lookup_elem(&ztseg_ratelimit, &k);
    if (v && now - v->last_emit_ns < *interval) {
        __sync_fetch_and_add(&v->suppressed, 1);
        ztseg_evstat(ZTSEG_EVSTAT_RATE_LIMITED);
        return 0;
    }
    *suppressed = v ? v->suppressed : 0;
    nv.last_emit_ns = now;
    bpf_map_update_elem(&ztseg_ratelimit, &k, &nv, BPF_ANY);
    return 1;
}

static __always_inline void ztseg_emit(const struct ztseg_judgement* j, __u8 verdict, __u8 reason) {
    struct ztseg_flow_event* e;
    __u32 suppressed = 0;

    if (verdict == ZTSEG_VERDICT_DROPPED && !ztseg_drop_event_allowed(j, reason, &suppressed))
        return;
    e = bpf_ringbuf_reserve(&ztseg_events, sizeof(*e), 0);
    if (!e) {
        ztseg_evstat(ZTSEG_EVSTAT_LOST_RINGBUF);
        return;
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
    bpf_ringbuf_submit(e, 0);
    ztseg_evstat(ZTSEG_EVSTAT_EMITTED);
}

#endif /* ZTSEG_EVENTS_H */
