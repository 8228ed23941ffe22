/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * docs/design.md#policy-model for one packet of a managed local workload. Every program
 * calls this one function so XDP, cgroup_skb and cgroup sock hooks agree:
 *   tracked connection -> pass; unlabeled peer -> drop; deny -> drop;
 *   allow -> pass (+ track); otherwise default deny. Audit mode turns every
 *   drop into a pass with a would-drop event.
 * (Conntrack is consulted first: only allowed or audited flows are ever
 * tracked, and a generation change re-judges the entry, so the order is
 * equivalent to docs/design.md's and keeps established packets on the short path.)
 */
#ifndef ZTSEG_VERDICT_H
#define ZTSEG_VERDICT_H

#include "conntrack.h"
#include "events.h"
#include "proof.h"

#define ZTSEG_DROP 0
#define ZTSEG_PASS 1

/* How much of the pipeline a hook runs. */
#define ZTSEG_J_CONNTRACK 0x1 /* consult conntrack (the full tuple is known) */
#define ZTSEG_J_TRACK 0x2     /* record admitted flows and emit allowed/would-drop events */
#define ZTSEG_J_COUNT 0x4     /* the packet's last judgement: count it for its rule */

/* Rule hits are counted once per packet: where the packet's fate is final.
 * The cgroup_skb hooks see every packet to and from a workload (ZTSEG_J_COUNT);
 * XDP and the socket hooks count only what they drop, since whatever they let
 * through is judged (and counted) again at cgroup_skb. */
static __always_inline void ztseg_count_rule(struct ztseg_judgement* j, __u32 what) {
    if (!j->rule_id)
        return;
    if (!j->counter)
        j->counter = ztseg_rule_counter(&j->active, j->rule_id);
    ztseg_rule_hit(j->counter, j->len, what);
}

static __always_inline int ztseg_refuse(struct ztseg_judgement* j, __u8 reason, __u32 opts) {
    if (j->local_flags & ZTSEG_IDF_AUDIT) {
        ztseg_count(j->hook, ZTSEG_REASON_AUDIT, j->len);
        if (opts & ZTSEG_J_COUNT)
            ztseg_count_rule(j, ZTSEG_RH_REFUSED);
        if (opts & ZTSEG_J_TRACK) {
            /* a peer without identity never gets conntrack state, not even in
             * audit mode: it could otherwise fill the table at will */
            if (reason != ZTSEG_REASON_DROP_UNLABELED)
                ztseg_ct_create(j, j->rule_id, ZTSEG_CTF_AUDIT);
            else
                ztseg_ctstat(ZTSEG_CTSTAT_UNTRACKED);
            ztseg_emit(j, ZTSEG_VERDICT_WOULD_DROP, reason);
        }
        return ZTSEG_PASS;
    }
    ztseg_count(j->hook, reason, j->len);
    ztseg_count_rule(j, ZTSEG_RH_REFUSED);
    ztseg_emit(j, ZTSEG_VERDICT_DROPPED, reason);
    return ZTSEG_DROP;
}

/* ICMP errors that may come from a router without identity: path MTU
 * discovery (and traceroute's time exceeded) must keep working. Every other
 * error about a tracked flow must come from an identified peer: a forged
 * port-unreachable would otherwise tear down a workload's connections. */
static __always_inline int ztseg_icmp_error_from_router(const struct ztseg_pkt* p) {
    if (p->t.family == 4)
        return (p->icmp_type == ICMP_DEST_UNREACH && p->icmp_code == ICMP_FRAG_NEEDED) ||
               p->icmp_type == ICMP_TIME_EXCEEDED;
    return p->icmp_type == ICMPV6_PKT_TOOBIG || p->icmp_type == ICMPV6_TIME_EXCEED;
}

/* A flow of the host admitted by failsafe rule `rule`: tracked (flagged, so
 * a new generation keeps it) and reported with the rule's number. */
static __always_inline int ztseg_admit_failsafe(struct ztseg_judgement* j, __u64 rule, __u32 opts) {
    ztseg_count(j->hook, ZTSEG_REASON_ALLOW_FAILSAFE, j->len);
    if (opts & ZTSEG_J_TRACK) {
        ztseg_resolve_peer(j);
        j->rule_id = 0;
        j->counter = 0;
        if (!((rule >> 32) & ZTSEG_FSF_STATELESS))
            ztseg_ct_create(j, 0, ZTSEG_CTF_FAILSAFE);
        j->rule_id = (__u32)rule; /* in the event: the failsafe rule, not a policy rule */
        ztseg_emit(j, ZTSEG_VERDICT_ALLOWED, ZTSEG_REASON_ALLOW_FAILSAFE);
    }
    return ZTSEG_PASS;
}

static __always_inline int ztseg_judge(struct ztseg_judgement* j, __u32 opts) {
    __u64 p;
    __u32 action;

    if (opts & ZTSEG_J_CONNTRACK) {
        /* most packets belong to tracked connections: no peer lookup for them */
        int ct = ztseg_ct_lookup(j, &j->pkt.t, (opts & ZTSEG_J_TRACK) ? ZTSEG_CTL_TRACK : 0);
        if ((ct & ZTSEG_CT_VERDICT) == ZTSEG_CT_HIT) {
            j->ct_hit = (ct & ZTSEG_CT_ASSURED) != 0;
            ztseg_count(j->hook, ZTSEG_REASON_ALLOW_CONNTRACK, j->len);
            if (opts & ZTSEG_J_COUNT)
                ztseg_rule_hit(j->counter, j->len, ZTSEG_RH_PACKET);
            return ZTSEG_PASS;
        }
        if ((ct & ZTSEG_CT_VERDICT) == ZTSEG_CT_HIT_AUDIT) {
            ztseg_count(j->hook, ZTSEG_REASON_AUDIT, j->len);
            if (opts & ZTSEG_J_COUNT)
                ztseg_rule_hit(j->counter, j->len, ZTSEG_RH_PACKET);
            return ZTSEG_PASS;
        }
        if (j->pkt.icmp_error) {
            ztseg_resolve_peer(j);
            if ((j->peer_id != ZTSEG_ID_UNLABELED || ztseg_icmp_error_from_router(&j->pkt)) &&
                ztseg_ct_lookup(j, &j->pkt.inner, ZTSEG_CTL_RELATED) != ZTSEG_CT_MISS) {
                ztseg_count(j->hook, ZTSEG_REASON_ALLOW_RELATED, j->len);
                return ZTSEG_PASS;
            }
        }
    }
    /* The host's failsafe rules come before everything a policy or the
     * unlabeled check could say: no host policy locks out SSH from the
     * management ranges or the controller link. */
    if (j->local_id == ZTSEG_ID_HOST) {
        __u64 failsafe =
            ztseg_failsafe_find(ztseg_failsafe_query(j->direction, j->pkt.t.proto),
                                ztseg_service_port(&j->pkt.t), j->pkt.t.family, ztseg_peer_addr(j));
        if (failsafe)
            return ztseg_admit_failsafe(j, failsafe, opts);
    }
    /* A connection from a fleet peer's address is judged on the identity its
     * SYN proves, never on the address alone. */
    if (j->direction == ZTSEG_DIR_INGRESS && ztseg_is_tcp_syn(&j->pkt) && !ztseg_prove_peer(j))
        return ztseg_refuse(j, ZTSEG_REASON_DROP_UNPROVEN, opts);
    ztseg_resolve_peer(j);
    if (j->peer_id == ZTSEG_ID_UNLABELED)
        return ztseg_refuse(j, ZTSEG_REASON_DROP_UNLABELED, opts);

    p = ztseg_policy_find(
        &j->active, j->local_id, j->peer_id,
        ztseg_policy_query(j->direction, j->pkt.t.proto, ztseg_service_port(&j->pkt.t)));
    action = p >> 32;
    j->rule_id = (__u32)p;
    j->counter = 0;
    if (action == ZTSEG_ACTION_ALLOW) {
        ztseg_count(j->hook, ZTSEG_REASON_ALLOW_POLICY, j->len);
        if (opts & ZTSEG_J_COUNT)
            ztseg_count_rule(j, (opts & ZTSEG_J_TRACK) ? ZTSEG_RH_ADMITTED : ZTSEG_RH_PACKET);
        if (opts & ZTSEG_J_TRACK) {
            ztseg_ct_create(j, j->rule_id, 0);
            ztseg_emit(j, ZTSEG_VERDICT_ALLOWED, ZTSEG_REASON_ALLOW_POLICY);
        }
        return ZTSEG_PASS;
    }
    return ztseg_refuse(j, action ? ZTSEG_REASON_DROP_POLICY_DENY : ZTSEG_REASON_DROP_DEFAULT_DENY,
                        opts);
}

/* A packet of a cgroup that is pending with no known workload: nothing in or
 * out until ztsegd has classified it (loopback excepted, judged before). */
static __always_inline int ztseg_quarantine(struct ztseg_judgement* j) {
    ztseg_count(j->hook, ZTSEG_REASON_DROP_UNCLASSIFIED, j->len);
    ztseg_emit(j, ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_UNCLASSIFIED);
    return ZTSEG_DROP;
}

#endif /* ZTSEG_VERDICT_H */
