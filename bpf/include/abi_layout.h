/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The layout of every struct in abi.h, asserted where it is compiled: by
 * clang for the BPF target and by the C++ compiler for userspace. Both sides
 * must agree with these numbers, so they agree with each other. A failing
 * assert means the ABI changed: update the number here AND bump
 * ZTSEG_ABI_VERSION in abi.h (a running datapath of the old layout is then
 * refused on adopt instead of being misread).
 */
#ifndef ZTSEG_ABI_LAYOUT_H
#define ZTSEG_ABI_LAYOUT_H

#ifdef __cplusplus
#define ZTSEG_ABI_ASSERT(cond, what) static_assert(cond, what)
#else
#define ZTSEG_ABI_ASSERT(cond, what) _Static_assert(cond, what)
#endif
#define ZTSEG_ABI_SIZE(s, n) ZTSEG_ABI_ASSERT(sizeof(struct s) == (n), "ABI: sizeof " #s)
#define ZTSEG_ABI_OFFSET(s, f, n) \
    ZTSEG_ABI_ASSERT(__builtin_offsetof(struct s, f) == (n), "ABI: offsetof " #s "." #f)

ZTSEG_ABI_SIZE(ztseg_counter, 16);
ZTSEG_ABI_OFFSET(ztseg_counter, packets, 0);
ZTSEG_ABI_OFFSET(ztseg_counter, bytes, 8);

ZTSEG_ABI_SIZE(ztseg_slot_meta, 32);
ZTSEG_ABI_OFFSET(ztseg_slot_meta, generation, 0);
ZTSEG_ABI_OFFSET(ztseg_slot_meta, flags, 8);
ZTSEG_ABI_OFFSET(ztseg_slot_meta, probe_masks, 12);
ZTSEG_ABI_OFFSET(ztseg_slot_meta, pad, 28);

ZTSEG_ABI_SIZE(ztseg_host4_key, 4);
ZTSEG_ABI_OFFSET(ztseg_host4_key, addr, 0);

ZTSEG_ABI_SIZE(ztseg_host6_key, 16);
ZTSEG_ABI_OFFSET(ztseg_host6_key, addr, 0);

ZTSEG_ABI_SIZE(ztseg_ident4_key, 8);
ZTSEG_ABI_OFFSET(ztseg_ident4_key, prefixlen, 0);
ZTSEG_ABI_OFFSET(ztseg_ident4_key, addr, 4);

ZTSEG_ABI_SIZE(ztseg_ident6_key, 20);
ZTSEG_ABI_OFFSET(ztseg_ident6_key, prefixlen, 0);
ZTSEG_ABI_OFFSET(ztseg_ident6_key, addr, 4);

ZTSEG_ABI_SIZE(ztseg_identity_info, 8);
ZTSEG_ABI_OFFSET(ztseg_identity_info, identity, 0);
ZTSEG_ABI_OFFSET(ztseg_identity_info, flags, 4);

ZTSEG_ABI_SIZE(ztseg_endpoint_key, 8);
ZTSEG_ABI_OFFSET(ztseg_endpoint_key, cgroup_id, 0);

ZTSEG_ABI_SIZE(ztseg_pending_cgroup, 16);
ZTSEG_ABI_OFFSET(ztseg_pending_cgroup, info, 0);
ZTSEG_ABI_OFFSET(ztseg_pending_cgroup, created_ns, 8);

ZTSEG_ABI_SIZE(ztseg_cg_name_key, 64);
ZTSEG_ABI_OFFSET(ztseg_cg_name_key, name, 0);

ZTSEG_ABI_SIZE(ztseg_cg_guard, 40);
ZTSEG_ABI_OFFSET(ztseg_cg_guard, info, 0);
ZTSEG_ABI_OFFSET(ztseg_cg_guard, prefix, 8);

ZTSEG_ABI_SIZE(ztseg_policy_key, 16);
ZTSEG_ABI_OFFSET(ztseg_policy_key, local_id, 0);
ZTSEG_ABI_OFFSET(ztseg_policy_key, peer_id, 4);
ZTSEG_ABI_OFFSET(ztseg_policy_key, port, 8);
ZTSEG_ABI_OFFSET(ztseg_policy_key, port_plen, 10);
ZTSEG_ABI_OFFSET(ztseg_policy_key, proto, 11);
ZTSEG_ABI_OFFSET(ztseg_policy_key, direction, 12);
ZTSEG_ABI_OFFSET(ztseg_policy_key, pad, 13);

ZTSEG_ABI_SIZE(ztseg_policy_value, 8);
ZTSEG_ABI_OFFSET(ztseg_policy_value, rule_id, 0);
ZTSEG_ABI_OFFSET(ztseg_policy_value, action, 4);
ZTSEG_ABI_OFFSET(ztseg_policy_value, pad, 5);

ZTSEG_ABI_SIZE(ztseg_ct_key, 44);
ZTSEG_ABI_OFFSET(ztseg_ct_key, addr_a, 0);
ZTSEG_ABI_OFFSET(ztseg_ct_key, addr_b, 16);
ZTSEG_ABI_OFFSET(ztseg_ct_key, port_a, 32);
ZTSEG_ABI_OFFSET(ztseg_ct_key, port_b, 34);
ZTSEG_ABI_OFFSET(ztseg_ct_key, proto, 36);
ZTSEG_ABI_OFFSET(ztseg_ct_key, family, 37);
ZTSEG_ABI_OFFSET(ztseg_ct_key, pad, 38);
ZTSEG_ABI_OFFSET(ztseg_ct_key, local_id, 40);

ZTSEG_ABI_SIZE(ztseg_ct_value, 48);
ZTSEG_ABI_OFFSET(ztseg_ct_value, created_ns, 0);
ZTSEG_ABI_OFFSET(ztseg_ct_value, last_seen_ns, 8);
ZTSEG_ABI_OFFSET(ztseg_ct_value, generation, 16);
ZTSEG_ABI_OFFSET(ztseg_ct_value, peer_id, 24);
ZTSEG_ABI_OFFSET(ztseg_ct_value, rule_id, 28);
ZTSEG_ABI_OFFSET(ztseg_ct_value, service_port, 32);
ZTSEG_ABI_OFFSET(ztseg_ct_value, proto, 34);
ZTSEG_ABI_OFFSET(ztseg_ct_value, direction, 35);
ZTSEG_ABI_OFFSET(ztseg_ct_value, flags, 36);
ZTSEG_ABI_OFFSET(ztseg_ct_value, pad, 37);
ZTSEG_ABI_OFFSET(ztseg_ct_value, reply_isn, 40);
ZTSEG_ABI_OFFSET(ztseg_ct_value, counter, 44);

ZTSEG_ABI_SIZE(ztseg_failsafe_key, 24);
ZTSEG_ABI_OFFSET(ztseg_failsafe_key, prefixlen, 0);
ZTSEG_ABI_OFFSET(ztseg_failsafe_key, direction, 4);
ZTSEG_ABI_OFFSET(ztseg_failsafe_key, proto, 5);
ZTSEG_ABI_OFFSET(ztseg_failsafe_key, port, 6);
ZTSEG_ABI_OFFSET(ztseg_failsafe_key, addr, 8);
ZTSEG_ABI_SIZE(ztseg_failsafe_value, 8);
ZTSEG_ABI_OFFSET(ztseg_failsafe_value, flags, 4);

ZTSEG_ABI_SIZE(ztseg_proof_msg, 48);
ZTSEG_ABI_OFFSET(ztseg_proof_msg, daddr, 16);
ZTSEG_ABI_OFFSET(ztseg_proof_msg, sport, 32);
ZTSEG_ABI_OFFSET(ztseg_proof_msg, dport, 34);
ZTSEG_ABI_OFFSET(ztseg_proof_msg, isn, 36);
ZTSEG_ABI_OFFSET(ztseg_proof_msg, identity, 40);
ZTSEG_ABI_OFFSET(ztseg_proof_msg, ts_key, 44);
ZTSEG_ABI_SIZE(ztseg_wire_addr_key, 20);
ZTSEG_ABI_SIZE(ztseg_wire_addr_value, 8);
ZTSEG_ABI_SIZE(ztseg_wire_key, 24);
ZTSEG_ABI_OFFSET(ztseg_wire_key, k1, 8);
ZTSEG_ABI_OFFSET(ztseg_wire_key, id, 16);
ZTSEG_ABI_OFFSET(ztseg_wire_key, flags, 17);
ZTSEG_ABI_SIZE(ztseg_wire_peer, 48);
ZTSEG_ABI_SIZE(ztseg_sk_proof, 8);

ZTSEG_ABI_SIZE(ztseg_rule_key, 4);
ZTSEG_ABI_SIZE(ztseg_rule_ref, 4);
ZTSEG_ABI_SIZE(ztseg_rule_hits, 32);
ZTSEG_ABI_OFFSET(ztseg_rule_hits, packets, 0);
ZTSEG_ABI_OFFSET(ztseg_rule_hits, bytes, 8);
ZTSEG_ABI_OFFSET(ztseg_rule_hits, admitted, 16);
ZTSEG_ABI_OFFSET(ztseg_rule_hits, refused, 20);
ZTSEG_ABI_OFFSET(ztseg_rule_hits, last_ns, 24);
ZTSEG_ABI_SIZE(ztseg_rule_slot, 16);
ZTSEG_ABI_OFFSET(ztseg_rule_slot, counter, 0);
ZTSEG_ABI_OFFSET(ztseg_rule_slot, since_unix_ns, 8);

ZTSEG_ABI_SIZE(ztseg_flowcache_entry, 48);
ZTSEG_ABI_OFFSET(ztseg_flowcache_entry, saddr, 0);
ZTSEG_ABI_OFFSET(ztseg_flowcache_entry, daddr, 16);
ZTSEG_ABI_OFFSET(ztseg_flowcache_entry, sport, 32);
ZTSEG_ABI_OFFSET(ztseg_flowcache_entry, dport, 34);
ZTSEG_ABI_OFFSET(ztseg_flowcache_entry, proto, 36);
ZTSEG_ABI_OFFSET(ztseg_flowcache_entry, family, 37);
ZTSEG_ABI_OFFSET(ztseg_flowcache_entry, pad, 38);
ZTSEG_ABI_OFFSET(ztseg_flowcache_entry, generation, 40);

ZTSEG_ABI_SIZE(ztseg_frag_key, 40);
ZTSEG_ABI_OFFSET(ztseg_frag_key, saddr, 0);
ZTSEG_ABI_OFFSET(ztseg_frag_key, daddr, 16);
ZTSEG_ABI_OFFSET(ztseg_frag_key, id, 32);
ZTSEG_ABI_OFFSET(ztseg_frag_key, proto, 36);
ZTSEG_ABI_OFFSET(ztseg_frag_key, family, 37);
ZTSEG_ABI_OFFSET(ztseg_frag_key, pad, 38);

ZTSEG_ABI_SIZE(ztseg_frag_value, 16);
ZTSEG_ABI_OFFSET(ztseg_frag_value, seen_ns, 0);
ZTSEG_ABI_OFFSET(ztseg_frag_value, sport, 8);
ZTSEG_ABI_OFFSET(ztseg_frag_value, dport, 10);
ZTSEG_ABI_OFFSET(ztseg_frag_value, admitted, 12);

ZTSEG_ABI_SIZE(ztseg_ratelimit_entry, 64);
ZTSEG_ABI_OFFSET(ztseg_ratelimit_entry, saddr, 0);
ZTSEG_ABI_OFFSET(ztseg_ratelimit_entry, daddr, 16);
ZTSEG_ABI_OFFSET(ztseg_ratelimit_entry, sport, 32);
ZTSEG_ABI_OFFSET(ztseg_ratelimit_entry, dport, 34);
ZTSEG_ABI_OFFSET(ztseg_ratelimit_entry, proto, 36);
ZTSEG_ABI_OFFSET(ztseg_ratelimit_entry, family, 37);
ZTSEG_ABI_OFFSET(ztseg_ratelimit_entry, hook, 38);
ZTSEG_ABI_OFFSET(ztseg_ratelimit_entry, reason, 39);
ZTSEG_ABI_OFFSET(ztseg_ratelimit_entry, local_id, 40);
ZTSEG_ABI_OFFSET(ztseg_ratelimit_entry, suppressed, 44);
ZTSEG_ABI_OFFSET(ztseg_ratelimit_entry, last_emit_ns, 48);
ZTSEG_ABI_OFFSET(ztseg_ratelimit_entry, peer_id, 56);
ZTSEG_ABI_OFFSET(ztseg_ratelimit_entry, verdict, 60);
ZTSEG_ABI_OFFSET(ztseg_ratelimit_entry, direction, 61);
ZTSEG_ABI_OFFSET(ztseg_ratelimit_entry, event_hook, 62);

ZTSEG_ABI_SIZE(ztseg_srclimit_entry, 88);
ZTSEG_ABI_OFFSET(ztseg_srclimit_entry, peer, 0);
ZTSEG_ABI_OFFSET(ztseg_srclimit_entry, local_id, 16);
ZTSEG_ABI_OFFSET(ztseg_srclimit_entry, peer_id, 20);
ZTSEG_ABI_OFFSET(ztseg_srclimit_entry, family, 24);
ZTSEG_ABI_OFFSET(ztseg_srclimit_entry, verdict, 25);
ZTSEG_ABI_OFFSET(ztseg_srclimit_entry, hook, 26);
ZTSEG_ABI_OFFSET(ztseg_srclimit_entry, reason, 27);
ZTSEG_ABI_OFFSET(ztseg_srclimit_entry, direction, 28);
ZTSEG_ABI_OFFSET(ztseg_srclimit_entry, proto, 29);
ZTSEG_ABI_OFFSET(ztseg_srclimit_entry, port_bits, 30);
ZTSEG_ABI_OFFSET(ztseg_srclimit_entry, tokens, 32);
ZTSEG_ABI_OFFSET(ztseg_srclimit_entry, summarized, 36);
ZTSEG_ABI_OFFSET(ztseg_srclimit_entry, window_start_ns, 40);
ZTSEG_ABI_OFFSET(ztseg_srclimit_entry, last_ns, 48);
ZTSEG_ABI_OFFSET(ztseg_srclimit_entry, ports, 56);

ZTSEG_ABI_SIZE(ztseg_flow_event, 104);
ZTSEG_ABI_OFFSET(ztseg_flow_event, ts_ns, 0);
ZTSEG_ABI_OFFSET(ztseg_flow_event, cgroup_id, 8);
ZTSEG_ABI_OFFSET(ztseg_flow_event, generation, 16);
ZTSEG_ABI_OFFSET(ztseg_flow_event, saddr, 24);
ZTSEG_ABI_OFFSET(ztseg_flow_event, daddr, 40);
ZTSEG_ABI_OFFSET(ztseg_flow_event, src_identity, 56);
ZTSEG_ABI_OFFSET(ztseg_flow_event, dst_identity, 60);
ZTSEG_ABI_OFFSET(ztseg_flow_event, rule_id, 64);
ZTSEG_ABI_OFFSET(ztseg_flow_event, pkt_len, 68);
ZTSEG_ABI_OFFSET(ztseg_flow_event, suppressed, 72);
ZTSEG_ABI_OFFSET(ztseg_flow_event, ifindex, 76);
ZTSEG_ABI_OFFSET(ztseg_flow_event, sport, 80);
ZTSEG_ABI_OFFSET(ztseg_flow_event, dport, 82);
ZTSEG_ABI_OFFSET(ztseg_flow_event, family, 84);
ZTSEG_ABI_OFFSET(ztseg_flow_event, proto, 85);
ZTSEG_ABI_OFFSET(ztseg_flow_event, hook, 86);
ZTSEG_ABI_OFFSET(ztseg_flow_event, verdict, 87);
ZTSEG_ABI_OFFSET(ztseg_flow_event, reason, 88);
ZTSEG_ABI_OFFSET(ztseg_flow_event, direction, 89);
ZTSEG_ABI_OFFSET(ztseg_flow_event, icmp_type, 90);
ZTSEG_ABI_OFFSET(ztseg_flow_event, icmp_code, 91);
ZTSEG_ABI_OFFSET(ztseg_flow_event, kind, 92);
ZTSEG_ABI_OFFSET(ztseg_flow_event, flags, 93);
ZTSEG_ABI_OFFSET(ztseg_flow_event, port_bits, 94);
ZTSEG_ABI_OFFSET(ztseg_flow_event, window_start_ns, 96);

#undef ZTSEG_ABI_SIZE
#undef ZTSEG_ABI_OFFSET
#undef ZTSEG_ABI_ASSERT

#endif /* ZTSEG_ABI_LAYOUT_H */
