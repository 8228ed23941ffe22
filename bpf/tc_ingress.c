// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc at tcx ingress on virtual interfaces (veth, tun, tunnels, bridges...):
 * the interface ingress stage (include/ingress.h), the same decisions,
 * counters and flow events as XDP, on the kernel's own skb. Generic XDP on
 * such a device works on a private linear copy of every cloned or non-linear
 * skb; tc reads the headers where they are (bpf_skb_load_bytes) and copies
 * nothing. At tc ingress the skb's data starts where XDP's frame starts: at
 * the Ethernet header, or at the IP header on devices without a link-layer
 * header. Userspace attaches these with a tcx link (BPF_TCX_INGRESS).
 *
 * SEC("tc") rather than "tcx/ingress": Debian 12's libbpf 1.1 does not know
 * the tcx section names; the program type (SCHED_CLS) is the same and the
 * kernel takes it on a tcx link.
 *
 * Verdicts: a drop is TCX_DROP; a pass is TCX_NEXT, so programs attached
 * after ztseg (another tool's tcx program) still run: ztseg only ever removes
 * packets, it never short-cuts someone else's decision.
 */
#include <linux/pkt_cls.h>

#include "ingress.h"

#define ZTSEG_TCX_NEXT TC_ACT_UNSPEC /* TCX_NEXT: -1 */
#define ZTSEG_TCX_DROP TC_ACT_SHOT   /* TCX_DROP: 2 */

__attribute__((noinline)) int ztseg_parse_tc_frame(struct __sk_buff* skb, struct ztseg_pkt* pkt,
                                                   int l3) {
    if (!skb || !pkt)
        return ZTSEG_PARSE_MALFORMED;
    if (l3)
        return ztseg_parse_frame(skb, 0, 0, 0, 1, skb->len, pkt);
    return ztseg_parse_frame(skb, 0, 0, 0, 0, skb->len, pkt);
}

static __always_inline int ztseg_tcx_run(struct __sk_buff* skb, const int l3) {
    struct ztseg_ingress_ctx ic = {
        .ctx = skb,
        .ifindex = skb->ingress_ifindex,
        .len = skb->len,
    };

    return ztseg_ingress_run(&ic, 0, l3) == ZTSEG_PASS ? ZTSEG_TCX_NEXT : ZTSEG_TCX_DROP;
}

/* Ethernet devices (ARPHRD_ETHER: veth, bridge, vxlan, macvlan, ...). */
SEC("tc")
int ztseg_tcx(struct __sk_buff* skb) {
    return ztseg_tcx_run(skb, 0);
}

/* Devices without a link-layer header (tun, ipip, sit, ip6tnl, gre, raw IP). */
SEC("tc")
int ztseg_tcx_l3(struct __sk_buff* skb) {
    return ztseg_tcx_run(skb, 1);
}
