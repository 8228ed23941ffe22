/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Failsafe rules (abi.h, docs/ztsegd.md#failsafe-rules): the host's flows that
 * no host policy and no unlabeled-source check may refuse. */
#ifndef ZTSEG_FAILSAFE_H
#define ZTSEG_FAILSAFE_H

#include "identity.h"

/* The failsafe rule (1-based, ZTSEG_FSF_* in the high 32 bits) admitting a flow of the host whose
 * first packet goes in `dir` with `proto` to service `port` (host order), with the peer at `peer`;
 * 0 if none. `dir` and `proto` ride in one argument (global functions take at most five): (dir <<
 * 8) | proto. */
ZTSEG_LOOKUP __u64 ztseg_failsafe_find(__u32 dir_proto, __u16 port, __u8 family,
                                       const struct ztseg_addr* peer);
#ifdef ZTSEG_DEFINE_LOOKUPS
ZTSEG_LOOKUP __u64 ztseg_failsafe_find(__u32 dir_proto, __u16 port, __u8 family,
                                       const struct ztseg_addr* peer) {
    struct ztseg_failsafe_key k = {};
    struct ztseg_failsafe_value* v;
    __u8 proto = dir_proto & 0xff;

    if (!peer || (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
        return 0;
    k.prefixlen = 32 + 128;
    k.direction = (dir_proto >> 8) & 0xff;
    k.proto = proto;
    k.port = bpf_htons(port);
    if (family == 4) {
        k.addr[2] = bpf_htonl(0xffff);
        k.addr[3] = peer->w[0];
    } else {
        __builtin_memcpy(k.addr, peer->w, 16);
    }
    v = bpf_map_lookup_elem(&ztseg_failsafe, &k);
    return v ? ((__u64)v->flags << 32) | v->rule : 0;
}
#endif

static __always_inline __u32 ztseg_failsafe_query(__u8 dir, __u8 proto) {
    return ((__u32)dir << 8) | proto;
}

#endif /* ZTSEG_FAILSAFE_H */
