/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What a hook knows about one packet (or syscall) while judging it. */
#ifndef ZTSEG_JUDGEMENT_H
#define ZTSEG_JUDGEMENT_H

#include "parse.h"
#include "policy.h"

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
    __u8 peer_known; /* peer_id resolved (identity lookups are done lazily) */
    __u8 ct_hit;     /* admitted as a tracked connection of the active generation */
};

/* The peer's address: the source of what arrives, the destination of what leaves. */
static __always_inline const struct ztseg_addr* ztseg_peer_addr(const struct ztseg_judgement* j) {
    return (const struct ztseg_addr*)(j->direction == ZTSEG_DIR_INGRESS ? j->pkt.t.saddr
                                                                        : j->pkt.t.daddr);
}

static __always_inline void ztseg_resolve_peer(struct ztseg_judgement* j) {
    if (!j->peer_known) {
        j->peer_id = (__u32)ztseg_identity_find(&j->active, j->pkt.t.family, ztseg_peer_addr(j));
        j->peer_known = 1;
    }
}

#endif /* ZTSEG_JUDGEMENT_H */
