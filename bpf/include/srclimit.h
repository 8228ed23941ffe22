/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Drop events budgeted per source: each key (peer address, local identity,
 * verdict) emits at most ZTSEG_CFG_DROP_EVENT_SOURCE_BUDGET drop events per
 * window of ZTSEG_CFG_DROP_EVENT_INTERVAL_NS (the window starts with the
 * key's first event, so that one is never suppressed); the rest are counted
 * into one summary event per key and window. A flow evicted from the per-flow
 * limiter folds what it had suppressed into its key's summary. Every drop is
 * an event, in an event's suppressed or summary count, pending in a map
 * entry, or in evstat LOST_DROPS. */
#ifndef ZTSEG_SRCLIMIT_H
#define ZTSEG_SRCLIMIT_H

#include "counters.h"

/* A BPF-to-BPF call with a stack frame of its own: inlined, these would grow
 * ztseg_emit's frame past what the XDP program's (512 bytes for the whole
 * call chain) leaves it. Unused in the objects that do not emit. */
#define ZTSEG_SUBPROG static __noinline __attribute__((unused))

/* Whose drops share a budget (peer, family, local_id, verdict), and how the
 * drop at hand is shown in a summary (the rest). */
struct ztseg_src_key {
    __u32 peer[4];
    __u32 local_id;
    __u32 peer_id;
    __u8 family;
    __u8 verdict;
    __u8 hook;
    __u8 reason;
    __u8 direction;
    __u8 proto;
    __u16 dport;
};

static __always_inline int ztseg_src_match(const struct ztseg_srclimit_entry* e,
                                           const struct ztseg_src_key* k) {
    return e->peer[0] == k->peer[0] && e->peer[1] == k->peer[1] && e->peer[2] == k->peer[2] &&
           e->peer[3] == k->peer[3] && e->local_id == k->local_id && e->family == k->family &&
           e->verdict == k->verdict;
}

static __always_inline __u32 ztseg_src_slot(const struct ztseg_src_key* k) {
    __u32 h = k->peer[0] ^ k->peer[1] ^ k->peer[2] ^ k->peer[3] ^ k->local_id ^
              ((__u32)k->verdict << 24) ^ k->family;
    return (h * 0x9e3779b1u) >> (32 - ZTSEG_SRCLIMIT_BITS);
}

/* The summary of a key's window: `drops` drops, counted as lost if the ring
 * buffer is full. */
static __always_inline void ztseg_emit_summary(const struct ztseg_srclimit_entry* s, __u32 drops) {
    struct ztseg_flow_event* e = bpf_ringbuf_reserve(&ztseg_events, sizeof(*e), 0);

    if (!e) {
        ztseg_evstat(ZTSEG_EVSTAT_LOST_RINGBUF);
        ztseg_evstat_add(ZTSEG_EVSTAT_LOST_DROPS, drops);
        return;
    }
    __builtin_memset(e, 0, sizeof(*e));
    e->ts_ns = s->last_ns;
    e->window_start_ns = s->window_start_ns;
    if (s->direction == ZTSEG_DIR_EGRESS) {
        __builtin_memcpy(e->daddr, s->peer, 16);
        e->src_identity = s->local_id;
        e->dst_identity = s->peer_id;
    } else {
        __builtin_memcpy(e->saddr, s->peer, 16);
        e->src_identity = s->peer_id;
        e->dst_identity = s->local_id;
    }
    e->suppressed = drops;
    e->port_bits = s->port_bits;
    e->family = s->family;
    e->proto = s->proto;
    e->hook = s->hook;
    e->verdict = s->verdict;
    e->reason = s->reason;
    e->direction = s->direction;
    e->kind = ZTSEG_EVENT_SUMMARY;
    bpf_ringbuf_submit(e, 0);
    ztseg_evstat(ZTSEG_EVSTAT_EMITTED);
    ztseg_evstat(ZTSEG_EVSTAT_SUMMARIES);
}

/* Start key k's window in slot e, summarizing what the slot held first. */
static __always_inline void ztseg_src_restart(struct ztseg_srclimit_entry* e,
                                              const struct ztseg_src_key* k, __u64 now,
                                              __u32 tokens) {
    __u32 drops = e->summarized;

    if (drops) {
        e->summarized = 0;
        ztseg_emit_summary(e, drops);
    }
    __builtin_memcpy(e->peer, k->peer, 16);
    e->local_id = k->local_id;
    e->peer_id = k->peer_id;
    e->family = k->family;
    e->verdict = k->verdict;
    e->tokens = tokens;
    e->window_start_ns = now;
    e->last_ns = now;
    e->port_bits = 0;
    e->ports[0] = e->ports[1] = e->ports[2] = e->ports[3] = 0;
}

/* Count n drops of key k (its drop at hand shows how) into the summary. */
static __always_inline void ztseg_src_summarize(struct ztseg_srclimit_entry* e,
                                                const struct ztseg_src_key* k, __u32 n, __u64 now) {
    __u32 h = k->dport;
    __u32 bit, word;
    __u64 mask;

    /* murmur3's finalizer: linear counting needs ports spread at random, and
     * Fibonacci hashing spreads a run of ports evenly instead */
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    bit = h >> 24; /* 0..255 */
    mask = 1ull << (bit & 63);
    word = (bit >> 6) & 3;

    if (!(e->ports[word] & mask)) {
        e->ports[word] |= mask;
        e->port_bits++;
    }
    __sync_fetch_and_add(&e->summarized, n);
    e->last_ns = now;
    e->hook = k->hook;
    e->reason = k->reason;
    e->direction = k->direction;
    e->proto = k->proto;
}

static __always_inline __u32 ztseg_src_budget(void) {
    __u32 cfg = ZTSEG_CFG_DROP_EVENT_SOURCE_BUDGET;
    __u64* budget = bpf_map_lookup_elem(&ztseg_config, &cfg);

    if (!budget || *budget == 0 || *budget > 0xffffffffull)
        return 0xffffffffu; /* no budget: the window only collects folds */
    return (__u32)*budget;
}

/* May this drop of key k have an event of its own? If not, it is summarized
 * with `carried`, the drops of its flow suppressed before it. */
ZTSEG_SUBPROG int ztseg_src_allowed(const struct ztseg_src_key* k, __u32 carried, __u64 interval,
                                    __u64 now) {
    __u32 slot = ztseg_src_slot(k);
    struct ztseg_srclimit_entry* e = bpf_map_lookup_elem(&ztseg_srclimit, &slot);

    if (!e)
        return 1;
    if (!ztseg_src_match(e, k) || now - e->window_start_ns >= interval) {
        ztseg_src_restart(e, k, now, ztseg_src_budget() - 1);
        return 1;
    }
    if (e->tokens > 0) {
        e->tokens--;
        return 1;
    }
    ztseg_src_summarize(e, k, 1 + carried, now);
    ztseg_evstat(ZTSEG_EVSTAT_SOURCE_LIMITED);
    return 0;
}

/* The key of a flow in the per-flow limiter (hook 0xff: tuple oriented peer
 * -> local whatever the direction). */
static __always_inline void ztseg_src_key_of_flow(struct ztseg_src_key* k,
                                                  const struct ztseg_ratelimit_entry* f) {
    int peer_is_dst = f->hook != 0xff && f->direction == ZTSEG_DIR_EGRESS;

    __builtin_memcpy(k->peer, peer_is_dst ? f->daddr : f->saddr, 16);
    k->local_id = f->local_id;
    k->peer_id = f->peer_id;
    k->family = f->family;
    k->verdict = f->verdict;
    k->hook = f->event_hook;
    k->reason = f->reason;
    k->direction = f->direction;
    k->proto = f->proto;
    k->dport = f->dport;
}

/* A flow's slot in the per-flow limiter is taken over: what it suppressed
 * goes into its key's summary (no token used). k: the caller's scratch (the
 * stack of the programs calling ztseg_emit has no room for another key). */
ZTSEG_SUBPROG void ztseg_flow_evict(const struct ztseg_ratelimit_entry* f, __u64 now,
                                    struct ztseg_src_key* k) {
    struct ztseg_srclimit_entry* e;
    __u32 slot;

    if (f->suppressed == 0)
        return;
    ztseg_src_key_of_flow(k, f);
    slot = ztseg_src_slot(k);
    e = bpf_map_lookup_elem(&ztseg_srclimit, &slot);
    if (!e) {
        ztseg_evstat_add(ZTSEG_EVSTAT_LOST_DROPS, f->suppressed);
        return;
    }
    if (!ztseg_src_match(e, k))
        ztseg_src_restart(e, k, now, ztseg_src_budget());
    ztseg_src_summarize(e, k, f->suppressed, now);
}

#endif /* ZTSEG_SRCLIMIT_H */
