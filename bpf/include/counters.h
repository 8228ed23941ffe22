/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU counters: every verdict by (hook, reason), every event stage. */
#ifndef ZTSEG_COUNTERS_H
#define ZTSEG_COUNTERS_H

#include "maps.h"

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

/* What a rule's hit adds to its counters (ztseg_rule_hits). */
#define ZTSEG_RH_PACKET 0   /* a packet it decided */
#define ZTSEG_RH_ADMITTED 1 /* ... which opened a connection it admitted */
#define ZTSEG_RH_REFUSED 2  /* ... or a new connection it refused */

/* Counts one decision of the rule in ztseg_rule_hits slot `counter` (0: not
 * counted). Bytes 0 is a socket-level decision (connect/sendmsg): no packet. */
static __always_inline void ztseg_rule_hit(__u32 counter, __u32 bytes, __u32 what) {
    struct ztseg_rule_hits* h;

    if (!counter)
        return;
    h = bpf_map_lookup_elem(&ztseg_rule_hits, &counter);
    if (!h)
        return;
    if (bytes) {
        h->packets++; /* per-CPU slot: no atomics needed */
        h->bytes += bytes;
    }
    if (what == ZTSEG_RH_ADMITTED)
        h->admitted++;
    else if (what == ZTSEG_RH_REFUSED)
        h->refused++;
    h->last_ns = bpf_ktime_get_coarse_ns();
}

static __always_inline void ztseg_evstat_add(__u32 which, __u64 n) {
    __u64* c = bpf_map_lookup_elem(&ztseg_evstats, &which);
    if (c)
        *c += n;
}

#endif /* ZTSEG_COUNTERS_H */
