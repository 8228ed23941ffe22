// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup_skb ingress/egress on workload cgroups: the exact per-workload
 * verdict. The socket's cgroup names the local workload; the peer address
 * names the peer. Admitted new flows are tracked so their replies pass.
 */
#include "verdict.h"

static __always_inline int ztseg_cgroup_skb(struct __sk_buff* skb, __u8 hook, __u8 dir) {
    struct ztseg_judgement j = {};
    struct ztseg_identity_info* ep;
    int rc;

    j.hook = hook;
    j.direction = dir;
    j.ifindex = skb->ifindex;
    j.len = skb->len;

    rc = ztseg_parse_skb(skb, &j.pkt);
    if (rc == ZTSEG_PARSE_NOT_SUBJECT || (rc == ZTSEG_PARSE_OK && ztseg_is_loopback(&j.pkt.t))) {
        ztseg_count(hook, ZTSEG_REASON_PASS_NOT_SUBJECT, j.len);
        return ZTSEG_PASS;
    }
    j.cgroup_id = bpf_skb_cgroup_id(skb);
    if (rc != ZTSEG_PARSE_OK || j.pkt.frag == ZTSEG_FRAG_LATER) {
        /* the stack reassembles before these hooks: a fragment here is bogus */
        __u8 reason =
            rc != ZTSEG_PARSE_OK ? ZTSEG_REASON_DROP_MALFORMED : ZTSEG_REASON_DROP_FRAGMENT;
        ztseg_count(hook, reason, j.len);
        ztseg_emit(&j, ZTSEG_VERDICT_DROPPED, reason);
        return ZTSEG_DROP;
    }

    ztseg_load_active(&j.active);
    ep = ztseg_endpoint_of(&j.active, j.cgroup_id);
    if (!ep) {
        ztseg_count(hook, ZTSEG_REASON_PASS_NO_ENDPOINT, j.len);
        return ZTSEG_PASS;
    }
    j.local_id = ep->identity;
    j.local_flags = ep->flags;
    return ztseg_judge(&j, ZTSEG_J_CONNTRACK | ZTSEG_J_TRACK);
}

SEC("cgroup_skb/ingress")
int ztseg_cg_ingress(struct __sk_buff* skb) {
    return ztseg_cgroup_skb(skb, ZTSEG_HOOK_CGROUP_INGRESS, ZTSEG_DIR_INGRESS);
}

SEC("cgroup_skb/egress")
int ztseg_cg_egress(struct __sk_buff* skb) {
    return ztseg_cgroup_skb(skb, ZTSEG_HOOK_CGROUP_EGRESS, ZTSEG_DIR_EGRESS);
}
