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

static __always_inline void ztseg_evstat_add(__u32 which, __u64 n) {
    __u64* c = bpf_map_lookup_elem(&ztseg_evstats, &which);
    if (c)
        *c += n;
}

#endif /* ZTSEG_COUNTERS_H */
