// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * XDP on host interfaces (physical NICs; virtual devices get tc at tcx
 * ingress, bpf/tc_ingress.c, unless configured otherwise): the interface
 * ingress stage (include/ingress.h) with direct packet access. Two entry
 * points: one for Ethernet devices, one for devices whose frames start at the
 * IP header.
 */
#include "ingress.h"

static __always_inline int ztseg_xdp_run(struct xdp_md* ctx, const int l3) {
    struct ztseg_ingress_ctx ic = {
        .ctx = ctx,
        .data = (void*)(long)ctx->data,
        .data_end = (void*)(long)ctx->data_end,
        .ifindex = ctx->ingress_ifindex,
        .len = bpf_xdp_get_buff_len(ctx),
    };

    return ztseg_ingress_run(&ic, 1, l3) == ZTSEG_PASS ? XDP_PASS : XDP_DROP;
}

/* Multi-buffer aware ("xdp.frags"): jumbo frames and GSO packets that a NIC
 * (or a veth) delivers in fragments are judged by their headers, which are in
 * the first buffer, with their whole length. */

/* Ethernet devices (ARPHRD_ETHER): Ethernet, up to two VLAN tags, then IP. */
SEC("xdp.frags")
int ztseg_xdp(struct xdp_md* ctx) {
    return ztseg_xdp_run(ctx, 0);
}

/* Devices without a link-layer header (tun, ipip, sit, ip6tnl, gre, raw IP):
 * the frame starts at the IP header. Userspace picks the program by link type. */
SEC("xdp.frags")
int ztseg_xdp_l3(struct xdp_md* ctx) {
    return ztseg_xdp_run(ctx, 1);
}
