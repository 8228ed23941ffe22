// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * connect4/6 and sendmsg4/6: judge egress at the syscall, so a denied
 * connect() fails at once with EPERM instead of timing out on dropped SYNs.
 * These hooks see no packets, only the destination; the cgroup_skb egress hook
 * still judges (and tracks) every packet afterwards.
 *
 * A stream connect() sends something (the SYN). A datagram connect() (UDP,
 * UDP-Lite, ICMP "ping" sockets) only fixes the peer: iputils ping connects a
 * UDP socket to port 1025 just to learn its source address. Those are judged
 * where datagrams leave: sendmsg with an address here, every datagram at the
 * egress hook, which fails a refused send() with EPERM just the same.
 */
#include "verdict.h"

static __always_inline int ztseg_sock(struct bpf_sock_addr* ctx, __u8 hook, int v6) {
    struct ztseg_judgement j = {};
    struct bpf_sock* sk = ctx->sk;
    __u64 wl;
    __u32 opts = 0;

    j.hook = hook;
    j.direction = ZTSEG_DIR_EGRESS;
    j.pkt.t.proto = ctx->protocol;
    j.pkt.t.dport = bpf_ntohs((__u16)ctx->user_port);
    if (!v6) {
        j.pkt.t.family = 4;
        j.pkt.t.daddr[0] = ctx->user_ip4;
    } else if (ctx->user_ip6[0] == 0 && ctx->user_ip6[1] == 0 &&
               ctx->user_ip6[2] == bpf_htonl(0xffff)) {
        j.pkt.t.family = 4; /* IPv4-mapped: judged as the IPv4 peer it is */
        j.pkt.t.daddr[0] = ctx->user_ip6[3];
    } else {
        j.pkt.t.family = 6;
        j.pkt.t.daddr[0] = ctx->user_ip6[0];
        j.pkt.t.daddr[1] = ctx->user_ip6[1];
        j.pkt.t.daddr[2] = ctx->user_ip6[2];
        j.pkt.t.daddr[3] = ctx->user_ip6[3];
    }
    if (sk) {
        j.pkt.t.sport = sk->src_port;
        if (j.pkt.t.family == 4) {
            j.pkt.t.saddr[0] = sk->src_ip4;
        } else {
            j.pkt.t.saddr[0] = sk->src_ip6[0];
            j.pkt.t.saddr[1] = sk->src_ip6[1];
            j.pkt.t.saddr[2] = sk->src_ip6[2];
            j.pkt.t.saddr[3] = sk->src_ip6[3];
        }
    }
    /* a loopback destination is always delivered over the loopback device;
     * a loopback source towards anything else is judged (and the egress hook
     * drops it as martian if it leaves through a real device) */
    if (ztseg_is_loopback_addr(j.pkt.t.family, j.pkt.t.daddr)) {
        ztseg_count(hook, ZTSEG_REASON_PASS_NOT_SUBJECT, 0);
        return ZTSEG_PASS;
    }

    if (hook == ZTSEG_HOOK_SOCK_CONNECT &&
        (j.pkt.t.proto == IPPROTO_UDP || j.pkt.t.proto == IPPROTO_UDPLITE ||
         j.pkt.t.proto == IPPROTO_ICMP || j.pkt.t.proto == IPPROTO_ICMPV6)) {
        /* datagram sockets only: anything else that connects (TCP, MPTCP,
         * SCTP) is judged here as before */
        ztseg_count(hook, ZTSEG_REASON_PASS_TO_STACK, 0);
        return ZTSEG_PASS;
    }

    j.cgroup_id = bpf_get_current_cgroup_id();
    ztseg_load_active(&j.active);
    wl = ztseg_workload_of_current(&j.active);
    if (!wl) {
        ztseg_count(hook, ZTSEG_REASON_PASS_NO_ENDPOINT, 0);
        return ZTSEG_PASS;
    }
    if (wl == ZTSEG_WL_QUARANTINE)
        return ztseg_quarantine(&j);
    j.local_id = (__u32)wl;
    j.local_flags = wl >> 32;

    if (hook == ZTSEG_HOOK_SOCK_SENDMSG && j.pkt.t.sport) {
        /* A bound socket may be answering a tracked flow (a UDP server's
         * reply). With a wildcard local address the tuple is unknown until
         * routing: leave that send to the egress hook, which fails it with
         * EPERM just the same if it is not admitted. */
        int wildcard =
            j.pkt.t.family == 4
                ? j.pkt.t.saddr[0] == 0
                : (j.pkt.t.saddr[0] | j.pkt.t.saddr[1] | j.pkt.t.saddr[2] | j.pkt.t.saddr[3]) == 0;
        if (wildcard) {
            ztseg_count(hook, ZTSEG_REASON_PASS_TO_STACK, 0);
            return ZTSEG_PASS;
        }
        opts |= ZTSEG_J_CONNTRACK;
    }
    return ztseg_judge(&j, opts);
}

SEC("cgroup/connect4")
int ztseg_connect4(struct bpf_sock_addr* ctx) {
    return ztseg_sock(ctx, ZTSEG_HOOK_SOCK_CONNECT, 0);
}

SEC("cgroup/connect6")
int ztseg_connect6(struct bpf_sock_addr* ctx) {
    return ztseg_sock(ctx, ZTSEG_HOOK_SOCK_CONNECT, 1);
}

SEC("cgroup/sendmsg4")
int ztseg_sendmsg4(struct bpf_sock_addr* ctx) {
    return ztseg_sock(ctx, ZTSEG_HOOK_SOCK_SENDMSG, 0);
}

SEC("cgroup/sendmsg6")
int ztseg_sendmsg6(struct bpf_sock_addr* ctx) {
    return ztseg_sock(ctx, ZTSEG_HOOK_SOCK_SENDMSG, 1);
}
