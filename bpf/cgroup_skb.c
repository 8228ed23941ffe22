// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup_skb ingress/egress, attached at the cgroup2 root: the exact
 * per-workload verdict. The local workload is the nearest workload enclosing
 * the socket's cgroup; when that is none, the workload owning the packet's
 * local address (a socket made elsewhere: socket activation, a passed fd, the
 * kernel's own reply sockets). The peer address names the peer. Admitted new
 * flows are tracked so their replies pass.
 */
#include "verdict.h"

/* Answers the kernel sends by itself (TCP RST, ICMP echo reply, ICMP errors)
 * are judged as the flow they answer: the peer's packet to this workload. So
 * a peer that may not reach a port learns nothing from it, not even whether
 * it is open. Never tracked. */
static __always_inline int ztseg_is_answer(const struct ztseg_pkt* p) {
    if (p->t.proto == IPPROTO_TCP)
        return (p->tcp_flags & ZTSEG_TCP_RST) != 0;
    if (p->t.proto == IPPROTO_ICMP)
        return p->icmp_type == ICMP_ECHOREPLY || p->icmp_error;
    if (p->t.proto == IPPROTO_ICMPV6)
        return p->icmp_type == ICMPV6_ECHO_REPLY || p->icmp_error;
    return 0;
}

static __always_inline int ztseg_judge_answer(struct ztseg_judgement* j) {
    struct ztseg_tuple* t = &j->pkt.t;

    if (j->pkt.icmp_error) {
        *t = j->pkt.inner; /* the peer's packet that the error is about */
    } else {
        __u16 port = t->sport;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            __u32 w = t->saddr[i];
            t->saddr[i] = t->daddr[i];
            t->daddr[i] = w;
        }
        t->sport = t->dport;
        t->dport = port;
    }
    j->pkt.icmp_error = 0;
    j->direction = ZTSEG_DIR_INGRESS;
    return ztseg_judge(j, ZTSEG_J_CONNTRACK | ZTSEG_J_COUNT);
}

/* Global: its header scratch buffers stay off the stack that the conntrack
 * and policy lookups build on (the verifier allows 512 bytes for a chain). */
__attribute__((noinline)) int ztseg_parse_skb_global(struct __sk_buff* skb, struct ztseg_pkt* pkt) {
    if (!skb || !pkt)
        return ZTSEG_PARSE_MALFORMED;
    return ztseg_parse_skb(skb, pkt);
}

/* The socket's workload (see ztseg_workload_walk); global: verified once. */
__attribute__((noinline)) __u64 ztseg_workload_of_skb(struct __sk_buff* skb,
                                                      const struct ztseg_active* a) {
    if (!skb)
        return 0;
    return ztseg_workload_walk(a, skb, ZTSEG_WL_UNMANAGED);
}

static __always_inline int ztseg_cgroup_skb(struct __sk_buff* skb, __u8 hook, __u8 dir) {
    struct ztseg_judgement j = {};
    __u64 wl;
    int rc;

    j.hook = hook;
    j.direction = dir;
    j.ifindex = skb->ifindex;
    j.len = skb->len;

    rc = ztseg_parse_skb_global(skb, &j.pkt);
    if (rc == ZTSEG_PARSE_NOT_SUBJECT) {
        ztseg_count(hook, ZTSEG_REASON_PASS_NOT_SUBJECT, j.len);
        return ZTSEG_PASS;
    }
    j.cgroup_id = bpf_skb_cgroup_id(skb);
    if (rc == ZTSEG_PARSE_OK && ztseg_is_loopback(&j.pkt.t)) {
        /* exempt only on the loopback device itself: with route_localnet a
         * loopback address can arrive from, or leave through, a real device */
        if (skb->ifindex == ZTSEG_LOOPBACK_IFINDEX) {
            ztseg_count(hook, ZTSEG_REASON_PASS_NOT_SUBJECT, j.len);
            return ZTSEG_PASS;
        }
        ztseg_count(hook, ZTSEG_REASON_DROP_MARTIAN, j.len);
        ztseg_emit(&j, ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_MARTIAN);
        return ZTSEG_DROP;
    }
    if (rc != ZTSEG_PARSE_OK || j.pkt.frag == ZTSEG_FRAG_LATER) {
        /* the stack reassembles before these hooks: a fragment here is bogus */
        __u8 reason =
            rc != ZTSEG_PARSE_OK ? ZTSEG_REASON_DROP_MALFORMED : ZTSEG_REASON_DROP_FRAGMENT;
        ztseg_count(hook, reason, j.len);
        ztseg_emit(&j, ZTSEG_VERDICT_DROPPED, reason);
        return ZTSEG_DROP;
    }

    ztseg_load_active(&j.active);
    wl = ztseg_workload_of_skb(skb, &j.active);
    if (wl == ZTSEG_WL_QUARANTINE)
        return ztseg_quarantine(&j);
    if (wl && wl != ZTSEG_WL_UNMANAGED) {
        j.local_id = (__u32)wl;
        j.local_flags = wl >> 32;
    } else {
        __u64 own = ztseg_identity_find(
            &j.active, j.pkt.t.family,
            (const struct ztseg_addr*)(dir == ZTSEG_DIR_INGRESS ? j.pkt.t.daddr : j.pkt.t.saddr));
        if ((own >> 32) & ZTSEG_IDF_MANAGED) {
            j.local_id = (__u32)own;
            j.local_flags = own >> 32;
        } else if (wl != ZTSEG_WL_UNMANAGED && ztseg_host_flags(&j.active) &&
                   bpf_get_netns_cookie(skb) == ztseg_config_get(ZTSEG_CFG_HOST_NETNS_COOKIE)) {
            /* the host itself: every process of its network namespace outside
             * a workload cgroup, whichever address it uses */
            j.local_id = ZTSEG_ID_HOST;
            j.local_flags = ztseg_host_flags(&j.active);
        } else {
            ztseg_count(hook, ZTSEG_REASON_PASS_NO_ENDPOINT, j.len);
            return ZTSEG_PASS;
        }
    }
    if (dir == ZTSEG_DIR_EGRESS && ztseg_is_answer(&j.pkt))
        return ztseg_judge_answer(&j);
    return ztseg_judge(&j, ZTSEG_J_CONNTRACK | ZTSEG_J_TRACK | ZTSEG_J_COUNT);
}

SEC("cgroup_skb/ingress")
int ztseg_cg_ingress(struct __sk_buff* skb) {
    return ztseg_cgroup_skb(skb, ZTSEG_HOOK_CGROUP_INGRESS, ZTSEG_DIR_INGRESS);
}

SEC("cgroup_skb/egress")
int ztseg_cg_egress(struct __sk_buff* skb) {
    return ztseg_cgroup_skb(skb, ZTSEG_HOOK_CGROUP_EGRESS, ZTSEG_DIR_EGRESS);
}
