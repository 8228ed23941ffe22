/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Policy lookup: a bounded number of hash lookups, independent of rule count. */
#ifndef ZTSEG_POLICY_H
#define ZTSEG_POLICY_H

#include "identity.h"

/* The first policy entry that matches, in the order documented in maps.h
 * (peer exact→any, protocol exact→any, longest port prefix first), or NULL.
 * Only prefix lengths present in the generation (port_plen_mask) are probed. */
static __always_inline struct ztseg_policy_value* ztseg_policy_lookup(const struct ztseg_active* a,
                                                                      __u32 local_id, __u32 peer_id,
                                                                      __u8 dir, __u8 proto,
                                                                      __u16 port) {
    struct ztseg_policy_key k = {.local_id = local_id, .direction = dir};
    __u32 slot = a->slot;
    __u32 mask = a->port_plen_mask;
    void* policy;

    if (a->slot < 0)
        return 0;
    policy = bpf_map_lookup_elem(&ztseg_policy, &slot);
    if (!policy)
        return 0;

    for (int i = 0; i < 4; i++) {
        k.peer_id = (i & 2) ? ZTSEG_ID_ANY : peer_id;
        k.proto = (i & 1) ? ZTSEG_PROTO_ANY : proto;
        if ((i & 1) && proto == ZTSEG_PROTO_ANY)
            continue; /* already probed as "exact" */
        for (int plen = 16; plen >= 0; plen--) {
            struct ztseg_policy_value* v;
            if (!(mask & (1u << plen)))
                continue;
            k.port_plen = plen;
            k.port = plen ? (port & (__u16)(0xffff0000u >> plen)) : 0;
            v = bpf_map_lookup_elem(policy, &k);
            if (v)
                return v;
        }
    }
    return 0;
}

#endif /* ZTSEG_POLICY_H */
