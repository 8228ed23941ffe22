/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing shared by XDP (direct packet access, Ethernet first or, on
 * devices without a link-layer header, IP first), tc at tcx ingress
 * (bpf_skb_load_bytes, same framing as XDP) and cgroup_skb
 * (bpf_skb_load_bytes, IP first). One parser, two ways to fetch
 * bytes: ztseg_pull() is inlined with a constant `xdp`, so each program keeps
 * only its own access path. Anything the parser cannot prove well-formed is
 * ZTSEG_PARSE_MALFORMED: the callers drop it (fail closed).
 */
#ifndef ZTSEG_PARSE_H
#define ZTSEG_PARSE_H

#include <linux/bpf.h>
#include <linux/icmpv6.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "tuple.h"

#define ZTSEG_PARSE_OK 0
#define ZTSEG_PARSE_NOT_SUBJECT 1 /* ARP, ND/MLD, non-IP: not subject to policy */
#define ZTSEG_PARSE_MALFORMED 2

/* Headers deeper than this are refused: bounds every offset for the verifier. */
#define ZTSEG_MAX_HDR_OFF 512
#define ZTSEG_MAX_IPV6_EXT 8
#define ZTSEG_MAX_VLAN 2

#define ZTSEG_FRAG_NONE 0
#define ZTSEG_FRAG_FIRST 1
#define ZTSEG_FRAG_LATER 2

/* The kernel's ICMPv4 names, with its values: linux/icmp.h includes libc's
 * sys/socket.h, which the BPF target does not have. */
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMP_FRAG_NEEDED 4 /* code of ICMP_DEST_UNREACH */

/* Neighbour discovery (133 router solicitation .. 137 redirect): the kernel
 * names them in net/ndisc.h, which is not uapi. */
#define ZTSEG_NDISC_REDIRECT 137

/* TCP flag bits of the flags byte (linux/tcp.h names them only as bits of
 * the 32-bit word that holds the data offset). */
#define ZTSEG_TCP_FIN 0x01
#define ZTSEG_TCP_SYN 0x02
#define ZTSEG_TCP_RST 0x04
#define ZTSEG_TCP_ACK 0x10

struct ztseg_pkt {
    struct ztseg_tuple t;
    union {
        struct ztseg_tuple inner; /* ICMP errors: the packet the error is about */
        struct {                  /* a TCP SYN with a wire proof (has_proof, abi.h) */
            __u64 proof_mac;      /* the 8 MAC bytes as SipHash's little-endian number */
            __u32 proof_identity; /* host order */
            __u32 proof_ts_key;   /* (timestamp << 8) | key id, host order */
        };
    };
    __u32 frag_id;
    __u8 frag; /* ZTSEG_FRAG_* */
    __u8 icmp_type;
    __u8 icmp_code;
    __u8 icmp_error; /* inner is valid */
    __u8 tcp_flags;  /* TCP: the flags byte (ZTSEG_TCP_*) */
    __u8 has_proof;  /* a SYN with a wire proof option (abi.h): the proof_* fields */
    __u8 proof;      /* ZTSEG_PROOF_*: what the judge found (proof.h; here: no stack to spare) */
    __u32 tcp_seq;   /* TCP, host order: conntrack assures a flow by the handshake */
    __u32 tcp_ack;
};

/* Minimal header views (the uapi ones carry bitfields we do not need). */
struct ztseg_ip4h {
    __u8 ver_ihl;
    __u8 tos;
    __be16 tot_len;
    __be16 id;
    __be16 frag_off;
    __u8 ttl;
    __u8 protocol;
    __u16 check;
    __u32 saddr;
    __u32 daddr;
};
struct ztseg_ip6h {
    __be32 ver_tc_flow;
    __be16 payload_len;
    __u8 nexthdr;
    __u8 hop_limit;
    __u32 saddr[4];
    __u32 daddr[4];
};
struct ztseg_ext6h {
    __u8 nexthdr;
    __u8 hdrlen;
    __be16 frag_off; /* fragment header only */
    __be32 frag_id;  /* fragment header only */
};
struct ztseg_l4h { /* first 8 bytes of TCP/UDP/SCTP/ICMP */
    __be16 sport;
    __be16 dport;
    __be32 word;
};
struct ztseg_tcp_tail { /* TCP bytes 8..15 */
    __be32 ack;
    __u8 doff_res;
    __u8 flags;
    __be16 window;
};

/* Bytes [off, off+len) of the packet, or NULL if the packet is shorter. */
static __always_inline void* ztseg_pull(void* ctx, void* data, void* data_end, const int xdp,
                                        __u32 off, const __u32 len, void* scratch) {
    if (off > ZTSEG_MAX_HDR_OFF)
        return NULL;
    if (xdp) {
        void* p = data + off;
        if (p + len > data_end)
            return NULL;
        return p;
    }
    if (bpf_skb_load_bytes(ctx, off, scratch, len))
        return NULL;
    return scratch;
}

#define ZTSEG_PULL(off, type, scratch) \
    ((type*)ztseg_pull(ctx, data, data_end, xdp, (off), sizeof(type), (scratch)))

static __always_inline int ztseg_is_ip6_ext(__u8 nh) {
    return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
           nh == IPPROTO_FRAGMENT || nh == IPPROTO_AH;
}

static __always_inline int ztseg_is_icmp4_error(__u8 type) {
    return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETERPROB;
}

static __always_inline int ztseg_is_icmp6_error(__u8 type) {
    return type >= ICMPV6_DEST_UNREACH && type <= ICMPV6_PARAMPROB;
}

/* Neighbour discovery and multicast listener messages must flow for IPv6 to work. */
static __always_inline int ztseg_is_icmp6_not_subject(__u8 type) {
    return (type >= ICMPV6_MGM_QUERY && type <= ZTSEG_NDISC_REDIRECT) || type == ICMPV6_MLD2_REPORT;
}

/* The IP header + first 8 bytes of L4 quoted inside an ICMP error. */
static __always_inline int ztseg_parse_inner(void* ctx, void* data, void* data_end, const int xdp,
                                             __u32 off, int v6, struct ztseg_tuple* in) {
    struct ztseg_l4h l4s;
    struct ztseg_l4h* l4;
    __u8 proto;

    if (!v6) {
        struct ztseg_ip4h ips;
        struct ztseg_ip4h* ip = ZTSEG_PULL(off, struct ztseg_ip4h, &ips);
        if (!ip || (ip->ver_ihl >> 4) != 4 || (ip->ver_ihl & 0xf) < 5)
            return ZTSEG_PARSE_MALFORMED;
        in->family = 4;
        in->saddr[0] = ip->saddr;
        in->daddr[0] = ip->daddr;
        proto = ip->protocol;
        off += (ip->ver_ihl & 0xf) * 4;
    } else {
        struct ztseg_ip6h ips;
        struct ztseg_ip6h* ip = ZTSEG_PULL(off, struct ztseg_ip6h, &ips);
        if (!ip || (bpf_ntohl(ip->ver_tc_flow) >> 28) != 6)
            return ZTSEG_PARSE_MALFORMED;
        in->family = 6;
        __builtin_memcpy(in->saddr, ip->saddr, 16);
        __builtin_memcpy(in->daddr, ip->daddr, 16);
        proto = ip->nexthdr;
        off += sizeof(struct ztseg_ip6h);
    }
    in->proto = proto;
    if (!ztseg_has_ports(proto) && proto != IPPROTO_ICMP && proto != IPPROTO_ICMPV6)
        return ZTSEG_PARSE_OK;
    l4 = ZTSEG_PULL(off, struct ztseg_l4h, &l4s);
    if (!l4)
        return ZTSEG_PARSE_MALFORMED;
    if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
        /* quoted echo: identifier is the "port" on both sides */
        in->sport = in->dport = bpf_ntohs(((__be16*)&l4->word)[0]);
    } else {
        in->sport = bpf_ntohs(l4->sport);
        in->dport = bpf_ntohs(l4->dport);
    }
    return ZTSEG_PARSE_OK;
}

/* The wire proof option (abi.h) of a SYN: the last 20 bytes of its TCP
 * options. The sender's kernel writes BPF header options after its own, into
 * exactly the space reserved for them, so no walk over the options is needed
 * (a walk costs the verifier a path per option layout). Anything else there
 * means "no proof". */
static __always_inline void ztseg_read_proof(const __u8* o, struct ztseg_pkt* pkt) {
    if (o[0] != ZTSEG_PROOF_KIND || o[1] != ZTSEG_PROOF_LEN || o[2] != (ZTSEG_PROOF_EXID >> 8) ||
        o[3] != (ZTSEG_PROOF_EXID & 0xff))
        return;
    pkt->proof_ts_key = ((__u32)o[5] << 24) | ((__u32)o[6] << 16) | ((__u32)o[7] << 8) | o[4];
    pkt->proof_identity = ((__u32)o[8] << 24) | ((__u32)o[9] << 16) | ((__u32)o[10] << 8) | o[11];
    __builtin_memcpy(&pkt->proof_mac, o + 12, 8);
    pkt->has_proof = 1;
}

static __always_inline int ztseg_parse_l4(void* ctx, void* data, void* data_end, const int xdp,
                                          __u32 off, __u32 end, struct ztseg_pkt* pkt) {
    struct ztseg_l4h l4s;
    struct ztseg_l4h* l4;
    __u8 proto = pkt->t.proto;

    if (pkt->frag == ZTSEG_FRAG_LATER)
        return ZTSEG_PARSE_OK; /* no L4 header here; ports come from the first fragment */
    if (!ztseg_has_ports(proto) && proto != IPPROTO_ICMP && proto != IPPROTO_ICMPV6)
        return ZTSEG_PARSE_OK; /* judged by protocol alone, never by a port rule */

    l4 = ZTSEG_PULL(off, struct ztseg_l4h, &l4s);
    if (!l4)
        return ZTSEG_PARSE_MALFORMED;

    if (proto == IPPROTO_TCP) {
        struct ztseg_tcp_tail ts;
        struct ztseg_tcp_tail* t = ZTSEG_PULL(off + 8, struct ztseg_tcp_tail, &ts);
        /* the whole header, options included, must be inside the IP packet */
        if (!t || (t->doff_res >> 4) < 5 || off + (t->doff_res >> 4) * 4 > end)
            return ZTSEG_PARSE_MALFORMED;
        pkt->tcp_flags = t->flags;
        pkt->tcp_seq = bpf_ntohl(l4->word);
        pkt->tcp_ack = bpf_ntohl(t->ack);
        if ((t->flags & (ZTSEG_TCP_SYN | ZTSEG_TCP_ACK)) == ZTSEG_TCP_SYN &&
            (t->doff_res >> 4) >= 5 + ZTSEG_PROOF_LEN / 4) {
            __u8 os[ZTSEG_PROOF_LEN];
            __u8* o =
                ztseg_pull(ctx, data, data_end, xdp, off + (t->doff_res >> 4) * 4 - ZTSEG_PROOF_LEN,
                           ZTSEG_PROOF_LEN, os);
            if (o)
                ztseg_read_proof(o, pkt);
        }
    }
    if (proto == IPPROTO_SCTP || proto == ZTSEG_PROTO_DCCP) {
        struct ztseg_l4h ss;
        if (!ZTSEG_PULL(off + 4, struct ztseg_l4h, &ss)) /* 12-byte common/generic header */
            return ZTSEG_PARSE_MALFORMED;
    }
    if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
        __u8 type = ((__u8*)l4)[0];
        int v6 = proto == IPPROTO_ICMPV6;
        if (v6 != (pkt->t.family == 6))
            return ZTSEG_PARSE_MALFORMED; /* ICMP in IPv6 or ICMPv6 in IPv4 */
        pkt->icmp_type = type;
        pkt->icmp_code = ((__u8*)l4)[1];
        if (v6 && ztseg_is_icmp6_not_subject(type))
            return ZTSEG_PARSE_NOT_SUBJECT;
        if ((!v6 && (type == 8 || type == 0)) || (v6 && (type == 128 || type == 129))) {
            pkt->t.sport = pkt->t.dport = bpf_ntohs(((__be16*)&l4->word)[0]);
            return ZTSEG_PARSE_OK;
        }
        if ((!v6 && ztseg_is_icmp4_error(type)) || (v6 && ztseg_is_icmp6_error(type))) {
            int rc = ztseg_parse_inner(ctx, data, data_end, xdp, off + 8, v6, &pkt->inner);
            if (rc != ZTSEG_PARSE_OK)
                return rc;
            pkt->icmp_error = 1;
        }
        return ZTSEG_PARSE_OK;
    }
    pkt->t.sport = bpf_ntohs(l4->sport);
    pkt->t.dport = bpf_ntohs(l4->dport);
    return ZTSEG_PARSE_OK;
}

static __always_inline int ztseg_parse_ip4(void* ctx, void* data, void* data_end, const int xdp,
                                           __u32 off, __u32 pkt_len, struct ztseg_pkt* pkt) {
    struct ztseg_ip4h ips;
    struct ztseg_ip4h* ip = ZTSEG_PULL(off, struct ztseg_ip4h, &ips);
    __u32 ihl, tot, frag_off;

    if (!ip || (ip->ver_ihl >> 4) != 4)
        return ZTSEG_PARSE_MALFORMED;
    ihl = (ip->ver_ihl & 0xf) * 4;
    tot = bpf_ntohs(ip->tot_len);
    if (ihl < sizeof(struct ztseg_ip4h))
        return ZTSEG_PARSE_MALFORMED;
    /* tot_len 0 is legal for GSO/BIG TCP super-packets seen by cgroup hooks */
    if ((tot || xdp) && (tot < ihl || tot > pkt_len - off))
        return ZTSEG_PARSE_MALFORMED;
    pkt->t.family = 4;
    pkt->t.proto = ip->protocol;
    pkt->t.saddr[0] = ip->saddr;
    pkt->t.daddr[0] = ip->daddr;
    frag_off = bpf_ntohs(ip->frag_off);
    if (frag_off & 0x1fff) {
        pkt->frag = ZTSEG_FRAG_LATER;
        pkt->frag_id = bpf_ntohs(ip->id);
    } else if (frag_off & 0x2000) {
        pkt->frag = ZTSEG_FRAG_FIRST;
        pkt->frag_id = bpf_ntohs(ip->id);
    }
    return ztseg_parse_l4(ctx, data, data_end, xdp, off + ihl, tot ? off + tot : pkt_len, pkt);
}

static __always_inline int ztseg_parse_ip6(void* ctx, void* data, void* data_end, const int xdp,
                                           __u32 off, __u32 pkt_len, struct ztseg_pkt* pkt) {
    struct ztseg_ip6h ips;
    struct ztseg_ip6h* ip = ZTSEG_PULL(off, struct ztseg_ip6h, &ips);
    __u8 nh;
    __u32 plen, end;

    if (!ip || (bpf_ntohl(ip->ver_tc_flow) >> 28) != 6)
        return ZTSEG_PARSE_MALFORMED;
    plen = bpf_ntohs(ip->payload_len);
    if ((plen || xdp) && plen > pkt_len - off - sizeof(struct ztseg_ip6h))
        return ZTSEG_PARSE_MALFORMED;
    pkt->t.family = 6;
    __builtin_memcpy(pkt->t.saddr, ip->saddr, 16);
    __builtin_memcpy(pkt->t.daddr, ip->daddr, 16);
    nh = ip->nexthdr;
    off += sizeof(struct ztseg_ip6h);
    end = plen ? off + plen : pkt_len;

#pragma unroll
    for (int i = 0; i < ZTSEG_MAX_IPV6_EXT; i++) {
        struct ztseg_ext6h es;
        struct ztseg_ext6h* e;
        if (!ztseg_is_ip6_ext(nh))
            break;
        e = ZTSEG_PULL(off, struct ztseg_ext6h, &es);
        if (!e)
            return ZTSEG_PARSE_MALFORMED;
        if (nh == IPPROTO_FRAGMENT) {
            __u16 fo = bpf_ntohs(e->frag_off);
            pkt->frag_id = bpf_ntohl(e->frag_id);
            if (fo & 0xfff8)
                pkt->frag = ZTSEG_FRAG_LATER;
            else if (fo & 1)
                pkt->frag = ZTSEG_FRAG_FIRST;
            off += 8;
        } else if (nh == IPPROTO_AH) {
            off += ((__u32)e->hdrlen + 2) * 4;
        } else {
            off += ((__u32)e->hdrlen + 1) * 8;
        }
        nh = e->nexthdr;
    }
    if (ztseg_is_ip6_ext(nh))
        return ZTSEG_PARSE_MALFORMED; /* more extension headers than we walk: refuse */
    pkt->t.proto = nh;
    return ztseg_parse_l4(ctx, data, data_end, xdp, off, end, pkt);
}

/* cgroup_skb: skb data starts at the IP header. */
static __always_inline int ztseg_parse_skb(struct __sk_buff* skb, struct ztseg_pkt* pkt) {
    void* ctx = skb;
    void *data = 0, *data_end = 0;
    const int xdp = 0;

    if (skb->protocol == bpf_htons(ETH_P_IP))
        return ztseg_parse_ip4(ctx, data, data_end, xdp, 0, skb->len, pkt);
    if (skb->protocol == bpf_htons(ETH_P_IPV6))
        return ztseg_parse_ip6(ctx, data, data_end, xdp, 0, skb->len, pkt);
    return ZTSEG_PARSE_NOT_SUBJECT;
}

/* A frame as the interface ingress stage sees it (XDP, or tc at tcx ingress,
 * where skb data also starts at the link-layer header): Ethernet, up to two
 * VLAN tags, then IP; or, with `l3` (devices without a link-layer header:
 * tun in IFF_TUN mode, ipip, sit, ip6tnl, point-to-point gre, raw IP), the IP
 * header first, whose version nibble names the family. Such a device carries
 * nothing but IP, so anything else is malformed there (fail closed).
 * pkt_len is the whole frame (with fragments of a multi-buffer frame: a GSO
 * packet over veth); with `xdp` the headers must be in the linear part, as
 * every driver puts them; without, they are read with bpf_skb_load_bytes
 * wherever they are (non-linear skbs). */
static __always_inline int ztseg_parse_frame(void* ctx, void* data, void* data_end, const int xdp,
                                             const int l3, __u32 pkt_len, struct ztseg_pkt* pkt) {
    __u32 off = sizeof(struct ethhdr);
    struct ethhdr eths;
    struct ethhdr* eth;
    __u16 proto;

    if (l3) {
        __u8 firsts;
        __u8* first = ZTSEG_PULL(0, __u8, &firsts);
        if (!first)
            return ZTSEG_PARSE_MALFORMED;
        if ((*first >> 4) == 4)
            return ztseg_parse_ip4(ctx, data, data_end, xdp, 0, pkt_len, pkt);
        if ((*first >> 4) == 6)
            return ztseg_parse_ip6(ctx, data, data_end, xdp, 0, pkt_len, pkt);
        return ZTSEG_PARSE_MALFORMED;
    }
    eth = ZTSEG_PULL(0, struct ethhdr, &eths);
    if (!eth)
        return ZTSEG_PARSE_MALFORMED;
    proto = eth->h_proto;
#pragma unroll
    for (int i = 0; i < ZTSEG_MAX_VLAN; i++) {
        __be16 inners;
        __be16* inner;
        if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
            break;
        inner = ZTSEG_PULL(off + 2, __be16, &inners);
        if (!inner)
            return ZTSEG_PARSE_MALFORMED;
        proto = *inner;
        off += 4;
    }
    if (proto == bpf_htons(ETH_P_IP))
        return ztseg_parse_ip4(ctx, data, data_end, xdp, off, pkt_len, pkt);
    if (proto == bpf_htons(ETH_P_IPV6))
        return ztseg_parse_ip6(ctx, data, data_end, xdp, off, pkt_len, pkt);
    if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
        return ZTSEG_PARSE_MALFORMED; /* deeper VLAN stacks than we walk: refuse */
    return ZTSEG_PARSE_NOT_SUBJECT;   /* ARP and other non-IP */
}

/* A connection's first packet: SYN without ACK. */
static __always_inline int ztseg_is_tcp_syn(const struct ztseg_pkt* p) {
    return p->t.proto == IPPROTO_TCP &&
           (p->tcp_flags & (ZTSEG_TCP_SYN | ZTSEG_TCP_ACK)) == ZTSEG_TCP_SYN;
}

#endif /* ZTSEG_PARSE_H */
