// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * BPF LSM socket_create: raw and packet sockets of enforced workloads.
 *
 * A raw IP socket, an AF_PACKET socket or an AF_XDP socket writes whole
 * packets itself: connect()/sendmsg() hooks never judge what it sends, and an
 * AF_PACKET frame leaves below the cgroup egress hook altogether. CAP_NET_RAW
 * (in Docker's default capability set) is all it takes, so a workload in
 * enforce mode gets none unless a policy selecting it says
 * `raw_sockets: allow` (ZTSEG_IDF_RAW_SOCKETS). ICMP "ping" sockets
 * (SOCK_DGRAM + IPPROTO_ICMP/ICMPV6) are datagram sockets whose packets the
 * cgroup hooks judge like any other: they are not raw and stay allowed.
 *
 * Attached once, globally (not per cgroup): the task's cgroup names the
 * workload. Ordinary sockets return at the first test, uncounted. Kernels
 * without BPF LSM get the fallback at the end of this file.
 *
 * Flow event of a refused (or, in audit mode, would-be refused) socket:
 * direction egress, local identity as source, peer 0, cgroup id of the task,
 * pkt_len 0. Raw IP sockets: family 4/6, proto = the IP protocol asked for,
 * ports 0. Sockets without an IP family: family 0, proto 0 (an ethertype
 * does not fit the 8-bit field), sport = the address family (17 AF_PACKET,
 * 44 AF_XDP), dport = socket()'s protocol argument in host order (AF_PACKET:
 * the ethertype, 3 = ETH_P_ALL).
 */
#include "events.h"

#include <asm/ptrace.h>      /* struct pt_regs, for the fallback's kprobe */
#include <bpf/bpf_tracing.h> /* after events.h: it needs the kernel types */

/* <sys/socket.h> is not usable from BPF C: the few values needed here. */
#define ZTSEG_AF_INET 2
#define ZTSEG_AF_INET6 10
#define ZTSEG_AF_PACKET 17
#define ZTSEG_AF_XDP 44
#define ZTSEG_SOCK_RAW 3
#define ZTSEG_SOCK_TYPE_MASK 0xf /* SOCK_NONBLOCK / SOCK_CLOEXEC live above it */

#define ZTSEG_EPERM 1

/* Does socket(family, type, protocol) send packets no other hook judges? */
static __always_inline int ztseg_is_raw(int family, int type) {
    if (family == ZTSEG_AF_PACKET || family == ZTSEG_AF_XDP)
        return 1;
    return (family == ZTSEG_AF_INET || family == ZTSEG_AF_INET6) &&
           (type & ZTSEG_SOCK_TYPE_MASK) == ZTSEG_SOCK_RAW;
}

/* A refused socket, as events.h's ztseg_emit would report it. ztseg_emit
 * itself cannot be called from here: its drop-event rate limiter reads
 * bpf_ktime_get_coarse_ns, which tracing and LSM programs may not use. Same
 * event, same rate limiting (one drop event per "flow" and interval, in
 * ztseg_ratelimit under this hook), on bpf_ktime_get_ns: a workload retrying
 * socket() in a loop cannot flood the ring buffer. No per-source budget: the
 * workload is its own peer. A slot taken over folds what it suppressed into
 * its source summary (srclimit.h). */
struct ztseg_sock_verdict {
    struct ztseg_tuple t; /* family/proto/ports as in the header comment, no addresses */
    __u64 cgroup_id;
    __u64 generation;
    __u32 local_id;
};

static __always_inline int ztseg_sock_event_allowed(const struct ztseg_sock_verdict* v, __u8 reason,
                                                    __u64 now, __u32* suppressed) {
    __u32 cfg = ZTSEG_CFG_DROP_EVENT_INTERVAL_NS;
    __u64* interval = bpf_map_lookup_elem(&ztseg_config, &cfg);
    struct ztseg_ratelimit_entry* e;
    __u32 slot, salt;

    if (!interval || *interval == 0)
        return 1;
    salt = v->local_id ^ ((__u32)ZTSEG_HOOK_SOCK_CREATE << 24) ^ ((__u32)reason << 16);
    slot = ztseg_tuple_slot(&v->t, salt, ZTSEG_RATELIMIT_BITS);
    e = bpf_map_lookup_elem(&ztseg_ratelimit, &slot);
    if (!e)
        return 1;
    if (ztseg_tuple_equal(e, &v->t) && e->hook == ZTSEG_HOOK_SOCK_CREATE && e->reason == reason &&
        e->local_id == v->local_id) {
        if (now - e->last_emit_ns < *interval) {
            __sync_fetch_and_add(&e->suppressed, 1);
            ztseg_evstat(ZTSEG_EVSTAT_RATE_LIMITED);
            return 0;
        }
        *suppressed = e->suppressed;
    } else {
        struct ztseg_src_key k = {};

        ztseg_flow_evict(e, now, &k); /* what the slot's flow suppressed: into its summary */
        __builtin_memcpy(e, &v->t, sizeof(v->t));
        e->hook = ZTSEG_HOOK_SOCK_CREATE;
        e->reason = reason;
        e->local_id = v->local_id;
        e->peer_id = 0;
        e->verdict = ZTSEG_VERDICT_DROPPED;
        e->direction = ZTSEG_DIR_EGRESS;
        e->event_hook = ZTSEG_HOOK_SOCK_CREATE;
    }
    e->suppressed = 0;
    e->last_emit_ns = now;
    return 1;
}

static __always_inline void ztseg_sock_emit(const struct ztseg_sock_verdict* v, __u8 verdict,
                                            __u8 reason) {
    struct ztseg_flow_event* e;
    __u64 now = bpf_ktime_get_ns();
    __u32 suppressed = 0;

    if (verdict == ZTSEG_VERDICT_DROPPED && !ztseg_sock_event_allowed(v, reason, now, &suppressed))
        return;
    e = bpf_ringbuf_reserve(&ztseg_events, sizeof(*e), 0);
    if (!e) {
        ztseg_evstat(ZTSEG_EVSTAT_LOST_RINGBUF);
        if (verdict == ZTSEG_VERDICT_DROPPED)
            ztseg_evstat_add(ZTSEG_EVSTAT_LOST_DROPS, 1 + (__u64)suppressed);
        return;
    }
    __builtin_memset(e, 0, sizeof(*e));
    e->ts_ns = now;
    e->cgroup_id = v->cgroup_id;
    e->generation = v->generation;
    e->src_identity = v->local_id; /* egress: the workload is the source */
    e->suppressed = suppressed;
    e->sport = v->t.sport;
    e->dport = v->t.dport;
    e->family = v->t.family;
    e->proto = v->t.proto;
    e->hook = ZTSEG_HOOK_SOCK_CREATE;
    e->verdict = verdict;
    e->reason = reason;
    e->direction = ZTSEG_DIR_EGRESS;
    bpf_ringbuf_submit(e, 0);
    ztseg_evstat(ZTSEG_EVSTAT_EMITTED);
}

/* The verdict of every variant below: 1 to refuse socket(family, type,
 * protocol) to the current task, 0 to let it through (counted, and in audit
 * mode reported as a would-drop). */
static __always_inline int ztseg_sock_refused(int family, int type, int protocol) {
    struct ztseg_sock_verdict v = {};
    struct ztseg_active active;
    __u32 flags;
    __u64 wl;

    ztseg_load_active(&active);
    wl = ztseg_workload_of_current(&active);
    if (!wl) {
        ztseg_count(ZTSEG_HOOK_SOCK_CREATE, ZTSEG_REASON_PASS_NO_ENDPOINT, 0);
        return 0;
    }
    /* a quarantined (pending, unknown) cgroup is refused like an enforced one */
    flags = wl == ZTSEG_WL_QUARANTINE ? ZTSEG_IDF_ENFORCE : (__u32)(wl >> 32);
    if (flags & ZTSEG_IDF_RAW_SOCKETS) {
        ztseg_count(ZTSEG_HOOK_SOCK_CREATE, ZTSEG_REASON_ALLOW_POLICY, 0);
        return 0;
    }

    v.cgroup_id = bpf_get_current_cgroup_id();
    v.generation = active.generation;
    v.local_id = wl == ZTSEG_WL_QUARANTINE ? 0 : (__u32)wl;
    if (family == ZTSEG_AF_INET || family == ZTSEG_AF_INET6) {
        v.t.family = family == ZTSEG_AF_INET ? 4 : 6;
        v.t.proto = (__u8)protocol;
    } else {
        v.t.sport = (__u16)family;
        v.t.dport = bpf_ntohs((__u16)protocol);
    }

    if (flags & ZTSEG_IDF_AUDIT) {
        ztseg_count(ZTSEG_HOOK_SOCK_CREATE, ZTSEG_REASON_AUDIT, 0);
        ztseg_sock_emit(&v, ZTSEG_VERDICT_WOULD_DROP, ZTSEG_REASON_DROP_RAW_SOCKET);
        return 0;
    }
    ztseg_count(ZTSEG_HOOK_SOCK_CREATE, ZTSEG_REASON_DROP_RAW_SOCKET, 0);
    ztseg_sock_emit(&v, ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_RAW_SOCKET);
    return 1;
}

/* Tests build this file a second time with ZTSEG_SOCK_CREATE_TWIN: the same
 * verdict as a raw tracepoint program, which BPF_PROG_TEST_RUN can run with
 * the hook's arguments (LSM programs cannot be test-run, and some kernels
 * refuse to load them at all). Never part of the datapath object. */
#ifdef ZTSEG_SOCK_CREATE_TWIN
#define ZTSEG_SOCK_CREATE_SEC "raw_tp"
#else
#define ZTSEG_SOCK_CREATE_SEC "lsm/socket_create"
#endif

SEC(ZTSEG_SOCK_CREATE_SEC)
int BPF_PROG(ztseg_sock_create, int family, int type, int protocol, int kern, int ret) {
    if (ret != 0)
        return ret; /* an earlier LSM program refused it already */
    if (kern || !ztseg_is_raw(family, type))
        return 0;
    return ztseg_sock_refused(family, type, protocol) ? -ZTSEG_EPERM : 0;
}

#ifndef ZTSEG_SOCK_CREATE_TWIN
/*
 * The guard on kernels that do not run BPF LSM programs (no "bpf" in the
 * active LSMs, or no BPF trampolines). Loaded and attached only there: with
 * BPF LSM, ztseg_sock_create above refuses everything with EPERM.
 *
 * Raw IP sockets: cgroup/sock_create (BPF_CGROUP_INET_SOCK_CREATE, attached at
 * the cgroup2 root) runs in inet_create/inet6_create for every user socket;
 * returning 0 makes socket() fail with EPERM, exactly like the LSM program.
 */
SEC("cgroup/sock_create")
int ztseg_sock_create_inet(struct bpf_sock* sk) {
    int family = sk->family, type = sk->type, protocol = sk->protocol;

    if (!ztseg_is_raw(family, type))
        return 1;
    return ztseg_sock_refused(family, type, protocol) ? 0 : 1;
}

/*
 * AF_PACKET and AF_XDP sockets are created by their own families, which no
 * cgroup hook sees, and a kprobe cannot change a return value (no
 * CONFIG_BPF_KPROBE_OVERRIDE on such kernels either). So the task that asks
 * for one is killed: SIGKILL from security_socket_create's entry, before the
 * socket exists. The signal is taken on the way back to user space, so the
 * caller never returns from socket() and never holds the fd; the rest of its
 * thread group is killed with it. Tetragon's enforcement takes the same
 * route where it cannot override. Harsh on purpose: an enforced workload that
 * needs packet sockets says so in policy (`raw_sockets: allow`), and audit mode
 * shows who would be hit before enforcing.
 */
#define ZTSEG_SIGKILL 9

SEC("kprobe/security_socket_create")
int BPF_KPROBE(ztseg_sock_create_kill, int family, int type, int protocol, int kern) {
    if (kern || (family != ZTSEG_AF_PACKET && family != ZTSEG_AF_XDP))
        return 0; /* raw IP sockets: ztseg_sock_create_inet refuses them with EPERM */
    if (ztseg_sock_refused(family, type, protocol))
        bpf_send_signal(ZTSEG_SIGKILL);
    return 0;
}

/*
 * The same kill from the socket(2) syscall's entry tracepoint, for kernels
 * built without kprobes (no CONFIG_KPROBES; seen on this project's CI VM).
 * Only one of the two is loaded (the kprobe where the kernel has one). This
 * one sees socket(2) only, not sockets io_uring creates (IORING_OP_SOCKET):
 * docs/datapath.md lists that residual. Layout: the tracepoint's format file,
 * events/syscalls/sys_enter_socket/format (arguments as 8-byte slots).
 */
struct ztseg_sys_enter_socket {
    __u64 common;     /* common_type, flags, preempt_count, pid */
    __s64 syscall_nr; /* int, padded to 8 */
    __u64 family;
    __u64 type;
    __u64 protocol;
};

SEC("tracepoint/syscalls/sys_enter_socket")
int ztseg_sock_create_kill_tp(struct ztseg_sys_enter_socket* ctx) {
    int family = (int)ctx->family;

    if (family != ZTSEG_AF_PACKET && family != ZTSEG_AF_XDP)
        return 0;
    if (ztseg_sock_refused(family, (int)ctx->type, (int)ctx->protocol))
        bpf_send_signal(ZTSEG_SIGKILL);
    return 0;
}
#endif
