// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sock_ops at the cgroup2 root: the sending side of proven identity
 * (abi.h, include/proof.h). When a socket connects to a fleet peer's address,
 * it remembers the peer and the identity of the connecting task's workload
 * (0 for the host and unmanaged workloads: the address's identity stands),
 * and asks the kernel to call back while it writes the SYN. Each SYN
 * (retransmissions included, with a fresh timestamp) then carries the proof
 * option, computed over the header the kernel has just written.
 */
#include "proof.h"

/* One field of the context, read by its own load at its own offset: the
 * verifier refuses a context pointer the compiler has moved (clang likes to
 * compute &skops->field once and share it between loads). */
static __always_inline __u32 ztseg_ctx_u32(const void* ctx, const int off) {
    __u32 v;

    asm volatile("%0 = *(u32 *)(%1 + %2)" : "=r"(v) : "r"(ctx), "i"(off));
    return v;
}
#define ZTSEG_SKOPS(field) ztseg_ctx_u32(skops, __builtin_offsetof(struct bpf_sock_ops, field))

static __always_inline int ztseg_skops_syn(const struct bpf_sock_ops* skops) {
    return (skops->skb_tcp_flags & (ZTSEG_TCP_SYN | ZTSEG_TCP_ACK)) == ZTSEG_TCP_SYN;
}

/* The socket's addresses as the receiver's parser sees them: IPv4 (also an
 * IPv6 socket's IPv4-mapped peer) in w[0], the rest 0. */
static __always_inline __u8 ztseg_skops_addrs(const struct bpf_sock_ops* skops, __u32* local,
                                              __u32* remote) {
    if (ZTSEG_SKOPS(family) == 2 /* AF_INET */) {
        local[0] = ZTSEG_SKOPS(local_ip4);
        remote[0] = ZTSEG_SKOPS(remote_ip4);
        return 4;
    }
    if (ZTSEG_SKOPS(remote_ip6[0]) == 0 && ZTSEG_SKOPS(remote_ip6[1]) == 0 &&
        ZTSEG_SKOPS(remote_ip6[2]) == bpf_htonl(0xffff)) {
        local[0] = ZTSEG_SKOPS(local_ip6[3]);
        remote[0] = ZTSEG_SKOPS(remote_ip6[3]);
        return 4;
    }
    local[0] = ZTSEG_SKOPS(local_ip6[0]);
    local[1] = ZTSEG_SKOPS(local_ip6[1]);
    local[2] = ZTSEG_SKOPS(local_ip6[2]);
    local[3] = ZTSEG_SKOPS(local_ip6[3]);
    remote[0] = ZTSEG_SKOPS(remote_ip6[0]);
    remote[1] = ZTSEG_SKOPS(remote_ip6[1]);
    remote[2] = ZTSEG_SKOPS(remote_ip6[2]);
    remote[3] = ZTSEG_SKOPS(remote_ip6[3]);
    return 6;
}

static __always_inline void ztseg_skops_connect(struct bpf_sock_ops* skops) {
    struct ztseg_wire_addr_value* a;
    struct ztseg_sk_proof* st;
    struct ztseg_active active;
    __u32 local[4] = {}, remote[4] = {};
    __u8 family;
    __u64 wl;

    if (skops->family != 2 && skops->family != 10 /* AF_INET, AF_INET6 */)
        return;
    family = ztseg_skops_addrs(skops, local, remote);
    a = ztseg_wire_peer_of(family, remote);
    if (!a || !skops->sk)
        return;
    st = bpf_sk_storage_get(&ztseg_sk_proofs, skops->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
    if (!st)
        return; /* no proof: the peer refuses the connection (fail closed) */
    ztseg_load_active(&active);
    wl = ztseg_workload_of_current(&active);
    st->peer = a->peer;
    st->identity = (wl && wl != ZTSEG_WL_QUARANTINE && !(wl & ZTSEG_WL_UNMANAGED)) ? (__u32)wl : 0;
    bpf_sock_ops_cb_flags_set(skops,
                              skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
}

static __always_inline void ztseg_skops_write(struct bpf_sock_ops* skops) {
    __u32 saddr[4] = {}, daddr[4] = {};
    struct ztseg_sk_proof* st;
    struct ztseg_wire_peer* peer;
    const struct ztseg_wire_key* key = 0;
    __u8 opt[ZTSEG_PROOF_LEN];
    __u32 ts, isn;
    __u64 mac;
    void* th = (void*)(long)skops->skb_data;

    if (!skops->sk || (void*)((__u8*)th + 8) > (void*)(long)skops->skb_data_end)
        return;
    isn = *(__u32*)((__u8*)th + 4); /* the header's sequence number, network order */
    st = bpf_sk_storage_get(&ztseg_sk_proofs, skops->sk, 0, 0);
    if (!st)
        return;
    peer = bpf_map_lookup_elem(&ztseg_wire_peers, &st->peer);
    if (!peer)
        return;
#pragma unroll
    for (int i = 0; i < ZTSEG_PROOF_KEYS; i++) {
        if (!key && (peer->keys[i].flags & ZTSEG_WKF_SEND))
            key = &peer->keys[i];
    }
    if (!key)
        return;
    ztseg_skops_addrs(skops, saddr, daddr);
    ts = ztseg_proof_now();
    mac = ztseg_proof_mac(
        key, saddr, daddr,
        ztseg_proof_ports((__u16)skops->local_port, (__u16)bpf_ntohl(skops->remote_port)), isn,
        bpf_htonl(st->identity), bpf_htonl((ts << 8) | key->id));

    opt[0] = ZTSEG_PROOF_KIND;
    opt[1] = ZTSEG_PROOF_LEN;
    opt[2] = ZTSEG_PROOF_EXID >> 8;
    opt[3] = ZTSEG_PROOF_EXID & 0xff;
    opt[4] = key->id;
    opt[5] = ts >> 16;
    opt[6] = ts >> 8;
    opt[7] = ts;
    opt[8] = st->identity >> 24;
    opt[9] = st->identity >> 16;
    opt[10] = st->identity >> 8;
    opt[11] = st->identity;
    __builtin_memcpy(opt + 12, &mac, 8);
    bpf_store_hdr_opt(skops, opt, sizeof(opt), 0);
}

SEC("sockops")
int ztseg_sock_ops(struct bpf_sock_ops* skops) {
    switch (skops->op) {
        case BPF_SOCK_OPS_TCP_CONNECT_CB:
            ztseg_skops_connect(skops);
            break;
        case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
            if (ztseg_skops_syn(skops))
                bpf_reserve_hdr_opt(skops, ZTSEG_PROOF_LEN, 0);
            break;
        case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
            if (ztseg_skops_syn(skops))
                ztseg_skops_write(skops);
            break;
    }
    return 1;
}
