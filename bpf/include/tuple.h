/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A flow's 5-tuple as the parser fills it: hashing it into direct-mapped
 * per-flow arrays, comparing it with their tuple-shaped entries, and what its
 * addresses and protocol say (loopback, ports). */
#ifndef ZTSEG_TUPLE_H
#define ZTSEG_TUPLE_H

#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"

struct ztseg_tuple {
    __u32 saddr[4]; /* network order; IPv4 in [0] */
    __u32 daddr[4];
    __u16 sport; /* host order */
    __u16 dport;
    __u8 proto;
    __u8 family; /* 4 or 6 */
    __u8 pad[2];
};

_Static_assert(sizeof(struct ztseg_tuple) == 40, "tuple layout is shared with map entries");
_Static_assert(__builtin_offsetof(struct ztseg_ratelimit_entry, hook) == 38 &&
                   __builtin_offsetof(struct ztseg_flowcache_entry, generation) == 40,
               "map entries start with a struct ztseg_tuple");

/* A cheap hash of a tuple for direct-mapped per-flow arrays (the flow cache,
 * drop-event rate limiting): Fibonacci hashing of the folded words, top bits. */
static __always_inline __u32 ztseg_tuple_hash(const struct ztseg_tuple* t, __u32 salt) {
    __u32 h = t->saddr[0] ^ t->saddr[1] ^ t->saddr[2] ^ t->saddr[3] ^ t->daddr[0] ^ t->daddr[1] ^
              t->daddr[2] ^ t->daddr[3] ^ (((__u32)t->sport << 16) | t->dport) ^ t->proto ^ salt;
    return h * 0x9e3779b1u;
}

/* The slot of a tuple in a direct-mapped array of 2^bits entries: the top
 * bits of the hash (the well-mixed ones). */
#define ztseg_tuple_slot(t, salt, bits) (ztseg_tuple_hash((t), (salt)) >> (32 - (bits)))

/* Word-wise equality of the tuple with the tuple-shaped head of an array
 * entry (stack accesses must be aligned; cheaper than a loop). */
static __always_inline int ztseg_tuple_equal(const void* entry, const struct ztseg_tuple* t) {
    const __u32* a = (const __u32*)entry;
    const __u32* b = (const __u32*)t;
    return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] &&
           a[5] == b[5] && a[6] == b[6] && a[7] == b[7] && a[8] == b[8] &&
           (a[9] & 0xffff) == (b[9] & 0xffff); /* proto, family; not what follows */
}

/* Protocols whose first four L4 bytes are source and destination port. Every
 * other protocol has no ports: a port-restricted rule never matches it. */
static __always_inline int ztseg_has_ports(__u8 proto) {
    return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == ZTSEG_PROTO_UDPLITE ||
           proto == IPPROTO_SCTP || proto == ZTSEG_PROTO_DCCP;
}

/* The port policy is written against: the destination port; none for ICMP,
 * whose echo identifier only keeps flows apart in conntrack. */
static __always_inline __u16 ztseg_service_port(const struct ztseg_tuple* t) {
    return ztseg_has_ports(t->proto) ? t->dport : 0;
}

/* 127.0.0.0/8 or ::1 (also as IPv4-mapped ::ffff:127.x): an address that
 * only the loopback device may carry. */
static __always_inline int ztseg_is_loopback_addr(__u8 family, const __u32* a) {
    if (family == 4)
        return (bpf_ntohl(a[0]) >> 24) == 127;
    if (a[0] != 0 || a[1] != 0)
        return 0;
    return (a[2] == 0 && a[3] == bpf_htonl(1)) ||
           (a[2] == bpf_htonl(0xffff) && (bpf_ntohl(a[3]) >> 24) == 127);
}

static __always_inline int ztseg_is_loopback(const struct ztseg_tuple* t) {
    return ztseg_is_loopback_addr(t->family, t->saddr) ||
           ztseg_is_loopback_addr(t->family, t->daddr);
}

/* Every network namespace's loopback device has this ifindex. */
#define ZTSEG_LOOPBACK_IFINDEX 1

/* At XDP (never attached to lo) a loopback address, as source or destination,
 * can only come from an attacker counting on route_localnet. */
static __always_inline int ztseg_is_martian(const struct ztseg_tuple* t) {
    return ztseg_is_loopback(t);
}

#endif /* ZTSEG_TUPLE_H */
