/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Proven identity on the wire (abi.h, docs/datapath.md#proven-identity): the
 * MAC both ends compute, the freshness window, and the check of a SYN from a
 * fleet peer's address. The sending side is bpf/sock_ops.c. */
#ifndef ZTSEG_PROOF_H
#define ZTSEG_PROOF_H

#include "identity.h"
#include "siphash.h"

/* The fleet peer an address belongs to, or NULL. */
static __always_inline struct ztseg_wire_addr_value* ztseg_wire_peer_of(__u8 family,
                                                                        const __u32* addr) {
    struct ztseg_wire_addr_key k;

    /* not an initializer: clang would keep its image in .rodata, a map of its own */
    __builtin_memset(&k, 0, sizeof(k));
    k.prefixlen = 128;
    if (family == 4) {
        k.addr[2] = bpf_htonl(0xffff);
        k.addr[3] = addr[0];
    } else {
        __builtin_memcpy(k.addr, addr, 16);
    }
    return bpf_map_lookup_elem(&ztseg_wire_addrs, &k);
}

/* The MAC of struct ztseg_proof_msg {saddr, daddr, sport, dport, isn,
 * identity, ts_key} (every field in network order), read as SipHash's six
 * little-endian words, built from the fields in registers. */
static __always_inline __u64 ztseg_proof_mac(const struct ztseg_wire_key* key, const __u32* saddr,
                                             const __u32* daddr, __u32 ports_be, __u32 isn_be,
                                             __u32 identity_be, __u32 ts_key_be) {
    return ztseg_siphash6(key->k0, key->k1, ((__u64)saddr[1] << 32) | saddr[0],
                          ((__u64)saddr[3] << 32) | saddr[2], ((__u64)daddr[1] << 32) | daddr[0],
                          ((__u64)daddr[3] << 32) | daddr[2], ((__u64)isn_be << 32) | ports_be,
                          ((__u64)ts_key_be << 32) | identity_be);
}

/* sport and dport (host order) as the message's two network-order __be16
 * fields read together as one little-endian __u32. */
static __always_inline __u32 ztseg_proof_ports(__u16 sport, __u16 dport) {
    return ((__u32)bpf_htons(dport) << 16) | bpf_htons(sport);
}

/* CLOCK_TAI seconds mod 2^24 (wraps every 194 days; compared mod 2^24). */
static __always_inline __u32 ztseg_proof_now(void) {
    return (__u32)(bpf_ktime_get_tai_ns() / 1000000000ull) & 0xffffff;
}

/* Is `ts` within `window` seconds of `now`, either side (clock skew)? */
static __always_inline int ztseg_proof_fresh(__u32 ts, __u32 now, __u32 window) {
    return ((now - ts) & 0xffffff) <= window || ((ts - now) & 0xffffff) <= window;
}

/* What a received TCP SYN's proof says (ZTSEG_PROOF_*): NOT_NEEDED when its
 * source is no fleet peer's address; VALID when it carries a fresh proof
 * under a key the peer may use now, naming no identity (0: the address's
 * identity stands) or a workload identity; INVALID otherwise. */
ZTSEG_LOOKUP int ztseg_proof_check(const struct ztseg_pkt* pkt);
#ifdef ZTSEG_DEFINE_LOOKUPS
/* A valid MAC proves who holds the pair's key, not that the identity is
 * theirs to claim: a peer proves only the workloads it hosts (or 0, the
 * address's identity). */
static __always_inline int ztseg_proof_hosted(__u32 peer, __u32 identity) {
    struct ztseg_wire_ident_key k = {.peer = peer, .identity = identity};

    if (identity == ZTSEG_ID_UNLABELED)
        return ZTSEG_PROOF_VALID;
    return bpf_map_lookup_elem(&ztseg_wire_idents, &k) ? ZTSEG_PROOF_VALID : ZTSEG_PROOF_INVALID;
}

ZTSEG_LOOKUP int ztseg_proof_check(const struct ztseg_pkt* pkt) {
    struct ztseg_wire_addr_value* a;
    struct ztseg_wire_peer* peer;
    __u32 key_id, window;
    __u64 w;

    if (!pkt)
        return ZTSEG_PROOF_INVALID;
    a = ztseg_wire_peer_of(pkt->t.family, pkt->t.saddr);
    if (!a)
        return ZTSEG_PROOF_NOT_NEEDED;
    if (!pkt->has_proof)
        return ZTSEG_PROOF_INVALID;
    if (pkt->proof_identity != ZTSEG_ID_UNLABELED && pkt->proof_identity < ZTSEG_ID_USER_MIN)
        return ZTSEG_PROOF_INVALID; /* reserved identities are never a peer's to claim */
    peer = bpf_map_lookup_elem(&ztseg_wire_peers, &a->peer);
    if (!peer)
        return ZTSEG_PROOF_INVALID;
    w = ztseg_config_get(ZTSEG_CFG_PROOF_WINDOW_S);
    window = w ? (__u32)w : ZTSEG_PROOF_DEFAULT_WINDOW_S;
    if (!ztseg_proof_fresh(pkt->proof_ts_key >> 8, ztseg_proof_now(), window))
        return ZTSEG_PROOF_INVALID;

    key_id = pkt->proof_ts_key & 0xff;
#pragma unroll
    for (int i = 0; i < ZTSEG_PROOF_KEYS; i++) {
        const struct ztseg_wire_key* k = &peer->keys[i];
        if ((k->flags & ZTSEG_WKF_ACCEPT) && k->id == key_id)
            return ztseg_proof_mac(k, pkt->t.saddr, pkt->t.daddr,
                                   ztseg_proof_ports(pkt->t.sport, pkt->t.dport),
                                   bpf_htonl(pkt->tcp_seq), bpf_htonl(pkt->proof_identity),
                                   bpf_htonl(pkt->proof_ts_key)) == pkt->proof_mac
                       ? ztseg_proof_hosted(a->peer, pkt->proof_identity)
                       : ZTSEG_PROOF_INVALID;
    }
    return ZTSEG_PROOF_INVALID; /* unknown or retired key id */
}
#endif

/* A TCP SYN arriving from a fleet peer's address must prove who sent it: a
 * valid proof names the peer (identity 0: the address's identity stands);
 * without one the flow is refused as "unproven". Checked once per packet. */
static __always_inline int ztseg_prove_peer(struct ztseg_judgement* j) {
    if (j->pkt.proof == ZTSEG_PROOF_UNCHECKED) {
        ztseg_resolve_peer(j); /* the address's identity: events name it if unproven */
        j->pkt.proof = ztseg_proof_check(&j->pkt);
        if (j->pkt.proof == ZTSEG_PROOF_VALID && j->pkt.proof_identity != ZTSEG_ID_UNLABELED) {
            j->peer_id = j->pkt.proof_identity;
            j->peer_known = 1;
        }
    }
    return j->pkt.proof != ZTSEG_PROOF_INVALID;
}

#endif /* ZTSEG_PROOF_H */
