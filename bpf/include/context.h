/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What a hook knows while it judges one packet (or syscall): the generation it
 * runs under, read once per packet, and the judgement it builds. */
#ifndef ZTSEG_CONTEXT_H
#define ZTSEG_CONTEXT_H

#include "maps.h"
#include "parse.h"

/* The generation currently enforced. slot < 0: no policy loaded yet. */
struct ztseg_active {
    int slot;
    __u32 flags; /* ZTSEG_SLOTF_LPM4/6: the tries hold something */
    __u64 generation;
    __u32 probe_masks[ZTSEG_PROBE_COMBOS];
};

static __always_inline void ztseg_load_active(struct ztseg_active* a) {
    __u32 k = ZTSEG_CFG_ACTIVE_SLOT;
    __u64* v = bpf_map_lookup_elem(&ztseg_config, &k);
    struct ztseg_slot_meta* m;
    __u32 slot;

    a->slot = -1;
    if (!v || *v == 0 || *v > ZTSEG_SLOTS)
        return;
    slot = (__u32)*v - 1;
    m = bpf_map_lookup_elem(&ztseg_slots, &slot);
    if (!m)
        return;
    a->slot = slot;
    a->flags = m->flags;
    __builtin_memcpy(a->probe_masks, m->probe_masks, sizeof(a->probe_masks));
    a->generation = m->generation;
}

/* ZTSEG_IDF_* of the host itself under the active generation; 0: unmanaged. */
static __always_inline __u32 ztseg_host_flags(const struct ztseg_active* a) {
    return ((a->flags & ZTSEG_SLOTF_HOST_ENFORCE) ? ZTSEG_IDF_ENFORCE : 0) |
           ((a->flags & ZTSEG_SLOTF_HOST_AUDIT) ? ZTSEG_IDF_AUDIT : 0);
}

static __always_inline __u64 ztseg_config_get(__u32 index) {
    __u64* v = bpf_map_lookup_elem(&ztseg_config, &index);
    return v ? *v : 0;
}

/* What a SYN's wire proof said (struct ztseg_pkt.proof, proof.h). */
#define ZTSEG_PROOF_UNCHECKED 0
#define ZTSEG_PROOF_NOT_NEEDED 1 /* the source is no fleet peer's address */
#define ZTSEG_PROOF_VALID 2      /* a fleet peer's SYN, proven */
#define ZTSEG_PROOF_INVALID 3    /* a fleet peer's address without a valid proof */

/* Everything known about a packet when its verdict is taken. */
struct ztseg_judgement {
    struct ztseg_pkt pkt;
    struct ztseg_active active;
    __u64 cgroup_id;
    __u32 local_id;
    __u32 local_flags;
    __u32 peer_id;
    __u32 rule_id;
    __u32 counter; /* ztseg_rule_hits slot of rule_id (see ztseg_rule_counter) */
    __u32 ifindex;
    __u32 len;
    __u8 hook;
    __u8 direction;
    __u8 peer_known; /* peer_id resolved (identity lookups are done lazily) */
    __u8 ct_hit;     /* admitted as a tracked connection of the active generation */
};

#endif /* ZTSEG_CONTEXT_H */
