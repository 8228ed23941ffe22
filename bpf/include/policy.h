/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Policy lookup: a bounded number of hash lookups, independent of rule count. */
#ifndef ZTSEG_POLICY_H
#define ZTSEG_POLICY_H

#include "identity.h"
#include "parse.h"

/* What a policy lookup is about, packed into one argument. */
#define ZTSEG_Q_PORTS (1u << 30) /* the protocol has ports: port rules may match */
static __always_inline __u32 ztseg_policy_query(__u8 dir, __u8 proto, __u16 port) {
    return (ztseg_has_ports(proto) ? ZTSEG_Q_PORTS : 0) | ((__u32)(dir & 0x3) << 24) |
           ((__u32)proto << 16) | port;
}

/* The first policy entry that matches, in the order documented in abi.h
 * (peer exact→any, protocol exact→any, longest port prefix first): its
 * action in the high 32 bits, rule id in the low; 0 if none. Only the
 * (peer, protocol, prefix length) shapes present in the generation are probed
 * (the slot's probe masks). query: ztseg_policy_query(). */
ZTSEG_LOOKUP __u64 ztseg_policy_find(const struct ztseg_active* a, __u32 local_id, __u32 peer_id,
                                     __u32 query);
#ifdef ZTSEG_DEFINE_LOOKUPS
ZTSEG_LOOKUP __u64 ztseg_policy_find(const struct ztseg_active* a, __u32 local_id, __u32 peer_id,
                                     __u32 query) {
    struct ztseg_policy_key k = {.local_id = local_id, .direction = (query >> 24) & 0x3};
    __u8 proto = (query >> 16) & 0xff;
    __u16 port = query & 0xffff;
    __u32 slot;
    void* policy;

    if (!a || a->slot < 0)
        return 0;
    slot = a->slot;
    policy = bpf_map_lookup_elem(&ztseg_policy, &slot);
    if (!policy)
        return 0;

    for (int i = 0; i < ZTSEG_PROBE_COMBOS; i++) {
        __u32 mask = a->probe_masks[i];
        if (!mask)
            continue;
        if ((i & 1) && proto == ZTSEG_PROTO_ANY)
            continue; /* already probed as "exact" */
        k.peer_id = (i & 2) ? ZTSEG_ID_ANY : peer_id;
        k.proto = (i & 1) ? ZTSEG_PROTO_ANY : proto;
        for (int plen = 16; plen >= 0; plen--) {
            struct ztseg_policy_value* v;
            if (!(mask & (1u << plen)) || (plen && !(query & ZTSEG_Q_PORTS)))
                continue; /* a protocol without ports never matches a port rule */
            k.port_plen = plen;
            k.port = plen ? (port & (__u16)(0xffff0000u >> plen)) : 0;
            v = bpf_map_lookup_elem(policy, &k);
            if (v)
                return ((__u64)v->action << 32) | v->rule_id;
        }
    }
    return 0;
}
#endif

/* The ztseg_rule_hits slot of a rule of the active generation; 0 when the
 * rule is not counted (no rule, counters off, or none left). */
ZTSEG_LOOKUP __u32 ztseg_rule_counter(const struct ztseg_active* a, __u32 rule_id);
#ifdef ZTSEG_DEFINE_LOOKUPS
ZTSEG_LOOKUP __u32 ztseg_rule_counter(const struct ztseg_active* a, __u32 rule_id) {
    struct ztseg_rule_key k = {.rule_id = rule_id};
    struct ztseg_rule_ref* r;
    __u32 slot;
    void* rules;

    if (!a || a->slot < 0 || rule_id == 0)
        return 0;
    slot = a->slot;
    rules = bpf_map_lookup_elem(&ztseg_rules, &slot);
    if (!rules)
        return 0;
    r = bpf_map_lookup_elem(rules, &k);
    return r ? r->counter : 0;
}
#endif

#endif /* ZTSEG_POLICY_H */
