/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ABI between the BPF datapath and userspace: every map key/value, every
 * constant both sides must agree on. Included by BPF C and by C++ alike, so it
 * uses only <linux/types.h> types and no BPF-only constructs.
 */
#ifndef ZTSEG_ABI_H
#define ZTSEG_ABI_H

#include <linux/types.h>

/* Bumped on any incompatible change to this file; an adopting daemon refuses
 * pinned state whose ABI differs. */
#define ZTSEG_ABI_VERSION 8

/* ---- identities (docs/design.md#identities) ---- */
#define ZTSEG_ID_UNLABELED 0u
#define ZTSEG_ID_HOST 1u
#define ZTSEG_ID_WORLD 2u
#define ZTSEG_ID_CONTROLLER 3u
#define ZTSEG_ID_USER_MIN 256u
/* Wildcard peer in policy keys: any identity except unlabeled. */
#define ZTSEG_ID_ANY 0xffffffffu

/* Identity flags: how the datapath treats a workload identity as a local side. */
#define ZTSEG_IDF_ENFORCE 0x1u /* selected by policy: default deny applies */
#define ZTSEG_IDF_AUDIT 0x2u   /* selected, audit mode: would-drop instead of drop */
#define ZTSEG_IDF_MANAGED (ZTSEG_IDF_ENFORCE | ZTSEG_IDF_AUDIT)
#define ZTSEG_IDF_RAW_SOCKETS 0x4u /* policy lets it create AF_PACKET / raw IP sockets */

/* ---- directions, as OCSF direction_id ---- */
#define ZTSEG_DIR_INGRESS 1
#define ZTSEG_DIR_EGRESS 2

/* ---- protocols (IANA numbers; 0 = any in policy keys) ---- */
#define ZTSEG_PROTO_ANY 0
#define ZTSEG_PROTO_ICMP 1
#define ZTSEG_PROTO_TCP 6
#define ZTSEG_PROTO_UDP 17
#define ZTSEG_PROTO_DCCP 33
#define ZTSEG_PROTO_ICMPV6 58
#define ZTSEG_PROTO_SCTP 132
#define ZTSEG_PROTO_UDPLITE 136

/* ---- policy actions ---- */
#define ZTSEG_ACTION_ALLOW 1
#define ZTSEG_ACTION_DENY 2

/* ---- where a verdict was taken ---- */
enum ztseg_hook {
    ZTSEG_HOOK_XDP = 0,
    ZTSEG_HOOK_CGROUP_INGRESS = 1,
    ZTSEG_HOOK_CGROUP_EGRESS = 2,
    ZTSEG_HOOK_SOCK_CONNECT = 3,
    ZTSEG_HOOK_SOCK_SENDMSG = 4,
    ZTSEG_HOOK_SOCK_CREATE = 5, /* BPF LSM socket_create: raw and packet sockets */
    ZTSEG_HOOK_MAX = 6,
};

/* ---- why: every pass and drop is counted under exactly one reason ---- */
enum ztseg_reason {
    /* passes */
    ZTSEG_REASON_ALLOW_POLICY = 0, /* new flow admitted by an allow rule */
    ZTSEG_REASON_ALLOW_CONNTRACK,  /* packet of a tracked, allowed connection */
    ZTSEG_REASON_ALLOW_RELATED,    /* ICMP error about a tracked connection */
    ZTSEG_REASON_PASS_TO_STACK,    /* deferred to a later hook: XDP -> cgroup; a datagram
                                    * connect() or wildcard sendmsg -> cgroup egress */
    ZTSEG_REASON_PASS_NOT_SUBJECT, /* ARP, IPv6 ND/MLD, non-IP, loopback */
    ZTSEG_REASON_PASS_NO_ENDPOINT, /* cgroup hooks: socket not in a managed workload */
    ZTSEG_REASON_AUDIT,            /* audit mode: would have been dropped */
    ZTSEG_REASON_ALLOW_FAILSAFE,   /* the host's flow admitted by a failsafe rule (ztsegd.yaml) */
    /* drops */
    ZTSEG_REASON_DROP_UNLABELED,    /* peer has no identity */
    ZTSEG_REASON_DROP_POLICY_DENY,  /* a deny rule matched */
    ZTSEG_REASON_DROP_DEFAULT_DENY, /* no allow rule matched */
    ZTSEG_REASON_DROP_MALFORMED,    /* truncated or invalid headers */
    ZTSEG_REASON_DROP_FRAGMENT,     /* non-first fragment whose first was not admitted */
    ZTSEG_REASON_DROP_RAW_SOCKET,   /* raw/packet socket refused to an enforced workload */
    ZTSEG_REASON_DROP_UNCLASSIFIED, /* cgroup not classified yet (new, or made while ztsegd was
                                       down) */
    ZTSEG_REASON_DROP_MARTIAN,      /* loopback address on a non-loopback device */
    ZTSEG_REASON_DROP_UNPROVEN,     /* TCP SYN from a fleet peer's address without a valid proof */
    ZTSEG_REASON_MAX,
};
#define ZTSEG_REASON_FIRST_DROP ZTSEG_REASON_DROP_UNLABELED

/* Per-CPU counter, indexed by hook * ZTSEG_REASON_MAX + reason. */
struct ztseg_counter {
    __u64 packets;
    __u64 bytes;
};
#define ZTSEG_COUNTER_SLOTS (ZTSEG_HOOK_MAX * ZTSEG_REASON_MAX)

/* Per-CPU event accounting: nothing is lost silently. */
enum ztseg_event_stat {
    ZTSEG_EVSTAT_EMITTED = 0,        /* written to the ring buffer */
    ZTSEG_EVSTAT_LOST_RINGBUF = 1,   /* ring buffer full: event dropped */
    ZTSEG_EVSTAT_RATE_LIMITED = 2,   /* repeated drop of the same flow suppressed */
    ZTSEG_EVSTAT_SOURCE_LIMITED = 3, /* drop beyond its source's budget: in a summary */
    ZTSEG_EVSTAT_SUMMARIES = 4,      /* summary events written to the ring buffer */
    ZTSEG_EVSTAT_LOST_DROPS = 5,     /* drops a lost event carried (itself + suppressed) */
    ZTSEG_EVSTAT_MAX = 6,
};

/* ---- config: an array of u64, one knob per index so each update is atomic ---- */
enum ztseg_config_index {
    ZTSEG_CFG_ACTIVE_SLOT = 0,            /* 0 = no policy loaded, else slot + 1 */
    ZTSEG_CFG_DROP_EVENT_INTERVAL_NS = 1, /* min gap between drop events of one flow */
    ZTSEG_CFG_ABI_VERSION = 2,            /* ZTSEG_ABI_VERSION of the loaded programs */
    ZTSEG_CFG_WORKLOAD_LEVELS = 3,        /* bit L: some workload cgroup sits at cgroup level L */
    ZTSEG_CFG_PENDING_LEVELS = 4, /* bit L: a pending (unclassified) cgroup sits at level L */
    ZTSEG_CFG_DROP_EVENT_SOURCE_BUDGET = 5, /* drop events per source key and interval; 0: off */
    ZTSEG_CFG_HOST_NETNS_COOKIE = 6,        /* netns cookie of the host's own network namespace */
    ZTSEG_CFG_PROOF_WINDOW_S = 7,           /* wire proofs: accepted clock skew + delay, seconds */
    ZTSEG_CFG_MAX = 8,
};

/* Bundle-derived maps exist twice (slot 0 and 1) as inner maps of
 * array-of-maps; a new generation is built in the inactive slot and made live
 * by one write of ZTSEG_CFG_ACTIVE_SLOT. */
#define ZTSEG_SLOTS 2

/* Policy probes: which (peer, protocol, port prefix length) keys a lookup
 * tries. combo bit 1: peer is ZTSEG_ID_ANY; bit 0: protocol is
 * ZTSEG_PROTO_ANY. probe_masks[combo] bit p: some key of the generation has
 * that combination and port prefix length p; only those are probed, so a
 * lookup costs as many probes as the policy has shapes. */
#define ZTSEG_PROBE_COMBOS 4

/* Per-slot metadata, written before the slot becomes active. */
struct ztseg_slot_meta {
    __u64 generation;
    __u32 flags; /* ZTSEG_SLOTF_* */
    __u32 probe_masks[ZTSEG_PROBE_COMBOS];
    __u32 pad;
};
/* Set while userspace rewrites an inactive slot: if the writer dies half-way,
 * the slot is known to be incomplete and is never rolled back to. */
#define ZTSEG_SLOTF_BUILDING 0x1u
/* The slot's LPM tries hold prefixes shorter than a host address; without
 * them an exact-match miss is final and the trie walk is skipped. */
#define ZTSEG_SLOTF_LPM4 0x2u
#define ZTSEG_SLOTF_LPM6 0x4u
/* A policy selects the host itself (`entity: host`): a socket of the host's
 * network namespace outside every workload cgroup, whose local address no
 * managed identity owns, is judged as ZTSEG_ID_HOST in this mode. */
#define ZTSEG_SLOTF_HOST_ENFORCE 0x8u
#define ZTSEG_SLOTF_HOST_AUDIT 0x10u

/* ---- identity ----
 * Host addresses (/32, /128) live in exact-match hashes, looked up first: a
 * host prefix is the longest possible match, and a hash probe costs a
 * fraction of a trie walk. Shorter prefixes live in LPM tries (address bytes
 * in network order), consulted only when the exact lookup misses. */
struct ztseg_host4_key {
    __u8 addr[4];
};
struct ztseg_host6_key {
    __u8 addr[16];
};
struct ztseg_ident4_key {
    __u32 prefixlen;
    __u8 addr[4];
};
struct ztseg_ident6_key {
    __u32 prefixlen;
    __u8 addr[16];
};
struct ztseg_identity_info {
    __u32 identity;
    __u32 flags; /* ZTSEG_IDF_* */
};

/* ---- endpoint: local workload cgroup -> identity ---- */
struct ztseg_endpoint_key {
    __u64 cgroup_id;
};
/* value: struct ztseg_identity_info */

/* ---- workload cgroups: a workload is its cgroup and every descendant ----
 * The hooks look up the socket's (or task's) cgroup ancestors at the levels
 * named by ZTSEG_CFG_WORKLOAD_LEVELS | ZTSEG_CFG_PENDING_LEVELS, deepest first;
 * the nearest classified or pending cgroup decides. Levels count from the
 * cgroup2 root (level 0). */
#define ZTSEG_CG_MAX_LEVEL 32

/* A cgroup created since ztsegd last looked (written by the cgroup_mkdir
 * tracepoint program, deleted by ztsegd once it has classified the cgroup).
 * info.identity is the workload its name says it will be (ZTSEG_ID_UNLABELED:
 * not known, the cgroup is quarantined: everything it sends or receives is
 * dropped as `unclassified`). */
struct ztseg_pending_cgroup {
    struct ztseg_identity_info info;
    __u64 created_ns;
};
/* Leaf names that workload patterns give literally ("db", "web.service"):
 * a new cgroup with that name is pending as that workload (identity 0 when two
 * workloads share the name). */
#define ZTSEG_CG_NAME_LEN 64
struct ztseg_cg_name_key {
    char name[ZTSEG_CG_NAME_LEN];
};
/* Guards: directories whose new children are pending because a pattern's
 * last component is a glob ("ztlab/web-*" guards ztlab). Key: cgroup id;
 * value: the workload a new child becomes (0: several or unknown). */
#define ZTSEG_CG_PREFIX_LEN 32
struct ztseg_cg_guard {
    struct ztseg_identity_info info;
    char prefix[ZTSEG_CG_PREFIX_LEN]; /* the glob's literal start: only such names match */
};
#define ZTSEG_DEFAULT_PENDING_CAPACITY 16384
#define ZTSEG_DEFAULT_CG_NAMES_CAPACITY 4096

/* ---- policy ----
 * Lookup order (first hit decides): peer exact then ZTSEG_ID_ANY; protocol
 * exact then ANY; port prefix longest first. Userspace guarantees deny
 * closure: wherever an allow and a deny key overlap, a deny key exists at their
 * intersection, so the first hit is a deny whenever any matching rule denies. */
struct ztseg_policy_key {
    __u32 local_id;
    __u32 peer_id;
    __u16 port;     /* host order, low (16 - port_plen) bits zero */
    __u8 port_plen; /* 0..16 */
    __u8 proto;     /* IANA number or ZTSEG_PROTO_ANY */
    __u8 direction; /* ZTSEG_DIR_* */
    __u8 pad[3];
};
struct ztseg_policy_value {
    __u32 rule_id;
    __u8 action; /* ZTSEG_ACTION_* */
    __u8 pad[3];
};

/* ---- connection tracking ----
 * One entry per (connection, local identity): canonical tuple (lower
 * address/port endpoint first) so both directions find the same entry, and the
 * local identity so one workload's entry never admits traffic into another. */
struct ztseg_ct_key {
    __u32 addr_a[4];
    __u32 addr_b[4];
    __u16 port_a;
    __u16 port_b;
    __u8 proto;
    __u8 family; /* 4 or 6 */
    __u8 pad[2];
    __u32 local_id;
};
#define ZTSEG_CTF_AUDIT 0x1u      /* admitted only because the workload was in audit mode */
#define ZTSEG_CTF_SEEN_REPLY 0x2u /* a packet in the reply direction was seen */
#define ZTSEG_CTF_FAILSAFE 0x4u   /* admitted by a failsafe rule, not by policy */
struct ztseg_ct_value {
    __u64 created_ns;
    __u64 last_seen_ns;
    __u64 generation; /* generation that admitted it; re-judged after a change */
    __u32 peer_id;
    __u32 rule_id;
    __u16 service_port; /* destination port of the original direction */
    __u8 proto;
    __u8 direction; /* original direction relative to the local workload */
    __u8 flags;     /* ZTSEG_CTF_* */
    __u8 pad[3];
    __u32 reply_isn; /* TCP: sequence number of the reply's SYN-ACK */
    __u32 counter;   /* ztseg_rule_hits index of the rule that decided it (0: none) */
};
/* New flows live in a table of their own (ztseg_ct_new) until they are
 * assured: a reply was seen and then another packet of the original
 * direction (for TCP: the handshake's ACK acknowledging the reply's ISN, which
 * a blind spoofer cannot produce). Only then does a flow move to ztseg_ct. So
 * a flood of new, unanswered flows evicts only other new flows (netfilter's
 * early drop of unassured entries), never an established connection. */
enum ztseg_ct_stat {
    ZTSEG_CTSTAT_CREATED = 0,   /* new flows entered into ztseg_ct_new */
    ZTSEG_CTSTAT_ASSURED = 1,   /* flows moved to ztseg_ct */
    ZTSEG_CTSTAT_UNTRACKED = 2, /* audit would-drops of unlabeled peers: never tracked */
    ZTSEG_CTSTAT_MAX = 3,
};

/* Idle lifetimes after which a tracked connection is judged anew. */
#define ZTSEG_CT_TCP_LIFETIME_NS (6ull * 3600 * 1000000000ull)
#define ZTSEG_CT_OTHER_LIFETIME_NS (120ull * 1000000000ull)

/* ---- XDP flow cache ----
 * Per-CPU, direct-mapped by a hash of the 5-tuple: flows XDP found
 * established under the active generation pass with one array access and a
 * compare, no identity or conntrack lookup. Safe because XDP only pre-filters:
 * cgroup_skb ingress still judges (and refreshes conntrack for) every packet
 * that reaches a workload, and an entry only counts under the generation it
 * was made in. */
#define ZTSEG_FLOWCACHE_BITS 12 /* the slot is the top bits of the tuple hash */
#define ZTSEG_FLOWCACHE_SLOTS (1u << ZTSEG_FLOWCACHE_BITS) /* per CPU */
struct ztseg_flowcache_entry {
    __u32 saddr[4]; /* the tuple exactly as parsed (struct ztseg_tuple) */
    __u32 daddr[4];
    __u16 sport;
    __u16 dport;
    __u8 proto;
    __u8 family;
    __u8 pad[2];
    __u64 generation; /* 0 = empty */
};

/* ---- IP fragments (XDP only): first fragment's verdict for the rest ---- */
struct ztseg_frag_key {
    __u32 saddr[4];
    __u32 daddr[4];
    __u32 id;
    __u8 proto;
    __u8 family;
    __u8 pad[2];
};
struct ztseg_frag_value {
    __u64 seen_ns;
    __u16 sport;
    __u16 dport;
    __u32 admitted;
};

/* ---- drop-event rate limiting, per flow and hook ----
 * A direct-mapped array indexed by a hash of (flow, local identity, hook,
 * reason): one inlined array access instead of a hash-map probe on every
 * dropped packet. Two flows that share a slot evict each other; the evicted
 * flow's next drop is reported again (more events, never fewer), and what it
 * had suppressed is folded into its source's summary (below). peer_id,
 * verdict, direction and event_hook say which source that is and how. */
#define ZTSEG_RATELIMIT_BITS 14
#define ZTSEG_RATELIMIT_SLOTS (1u << ZTSEG_RATELIMIT_BITS)
struct ztseg_ratelimit_entry {
    __u32 saddr[4]; /* the tuple exactly as parsed (struct ztseg_tuple) */
    __u32 daddr[4];
    __u16 sport;
    __u16 dport;
    __u8 proto;
    __u8 family;
    __u8 hook;
    __u8 reason;
    __u32 local_id;
    __u32 suppressed; /* drops not reported since last_emit_ns */
    __u64 last_emit_ns;
    __u32 peer_id;
    __u8 verdict;    /* ZTSEG_VERDICT_* */
    __u8 direction;  /* ZTSEG_DIR_* of the drop */
    __u8 event_hook; /* the drop's hook (hook above is 0xff for either-way keys) */
    __u8 pad;
};

/* ---- drop-event budget per source ----
 * Key: (peer address, local identity, verdict), where the peer is the source
 * of ingress and the destination of egress traffic. Each key may emit
 * ZTSEG_CFG_DROP_EVENT_SOURCE_BUDGET drop events per window of
 * ZTSEG_CFG_DROP_EVENT_INTERVAL_NS; the window starts with an emitted event.
 * Drops beyond it are summarized: one summary event (kind
 * ZTSEG_EVENT_SUMMARY) when the window has ended and the key drops again, or
 * when another key takes over the slot. Direct-mapped like the flow limiter. */
#define ZTSEG_SRCLIMIT_BITS 12
#define ZTSEG_SRCLIMIT_SLOTS (1u << ZTSEG_SRCLIMIT_BITS)
/* Destination ports of summarized drops: a bitmap of this many bits indexed
 * by a hash of the port; userspace estimates distinct ports by linear
 * counting from the number of bits set. */
#define ZTSEG_SRCLIMIT_PORT_BITS 256
struct ztseg_srclimit_entry {
    __u32 peer[4]; /* network order; IPv4 in [0] */
    __u32 local_id;
    __u32 peer_id;
    __u8 family;
    __u8 verdict;
    __u8 hook; /* of the latest summarized drop, as are reason, direction, proto */
    __u8 reason;
    __u8 direction;
    __u8 proto;
    __u16 port_bits;  /* bits set in ports */
    __u32 tokens;     /* events left in this window */
    __u32 summarized; /* drops summarized in this window */
    __u64 window_start_ns;
    __u64 last_ns; /* latest summarized drop */
    __u64 ports[ZTSEG_SRCLIMIT_PORT_BITS / 64];
};

/* ---- per-rule hit counters ----
 * Every rule of a generation is counted in one slot of ztseg_rule_hits (a
 * per-CPU array): packets and bytes it decided, new connections it admitted
 * or refused, and the last hit. The slot follows the rule's fingerprint (its
 * policy and content, not its file position or rule id), so counters survive
 * policy updates that leave the rule as it was, and ztsegd restarts (the
 * array is pinned). The per-generation map ztseg_rules gives a rule id's
 * slot; ztseg_rule_slots (userspace only) records which fingerprint holds
 * which slot since when. Slot 0 is "not counted". */
#define ZTSEG_DEFAULT_RULE_CAPACITY 65536
struct ztseg_rule_key {
    __u32 rule_id;
};
struct ztseg_rule_ref {
    __u32 counter; /* index into ztseg_rule_hits; 0 = not counted */
};
struct ztseg_rule_hits {
    __u64 packets;
    __u64 bytes;
    __u32 admitted; /* new connections the rule let in (tracked) */
    __u32 refused;  /* packets of new connections it refused (or would, in audit) */
    __u64 last_ns;  /* CLOCK_MONOTONIC (coarse) of the last hit; 0 = never */
};
struct ztseg_rule_slot {
    __u32 counter;
    __u32 pad;
    __u64 since_unix_ns; /* when this fingerprint got the slot: counted from then */
};

/* ---- flow event, the ring buffer record ---- */
#define ZTSEG_VERDICT_ALLOWED 1
#define ZTSEG_VERDICT_DROPPED 2
#define ZTSEG_VERDICT_WOULD_DROP 3

struct ztseg_flow_event {
    __u64 ts_ns;      /* CLOCK_MONOTONIC */
    __u64 cgroup_id;  /* local workload's cgroup, 0 at XDP */
    __u64 generation; /* policy generation that judged it */
    __u32 saddr[4];   /* network order; IPv4 in [0] */
    __u32 daddr[4];
    __u32 src_identity;
    __u32 dst_identity;
    __u32 rule_id; /* 0 when no rule decided */
    __u32 pkt_len;
    __u32 suppressed; /* drop events of this flow suppressed since the last one */
    __u32 ifindex;
    __u16 sport; /* host order; ICMP echo id for echo */
    __u16 dport;
    __u8 family;
    __u8 proto;
    __u8 hook;      /* enum ztseg_hook */
    __u8 verdict;   /* ZTSEG_VERDICT_* */
    __u8 reason;    /* enum ztseg_reason */
    __u8 direction; /* ZTSEG_DIR_* relative to the local workload */
    __u8 icmp_type;
    __u8 icmp_code;
    __u8 kind;  /* ZTSEG_EVENT_* */
    __u8 flags; /* ZTSEG_EVF_* */
    /* summaries: suppressed is the number of drops summarized, ts_ns the
     * latest of them, window_start_ns the first; port_bits the bits set in the
     * destination-port bitmap (ZTSEG_SRCLIMIT_PORT_BITS); no local address or
     * ports; the peer address, identities, hook, reason as for its key */
    __u16 port_bits;
    __u64 window_start_ns;
};
#define ZTSEG_EVENT_FLOW 0
#define ZTSEG_EVENT_SUMMARY 1
/* The peer's identity was proven on the wire (a valid proof on the SYN), not
 * derived from its address. */
#define ZTSEG_EVF_PROVEN 0x1u

/* ---- proven identity on the wire (docs/datapath.md#proven-identity) ----
 * A TCP SYN between ztseg hosts carries the sender's workload identity and a
 * SipHash-2-4 MAC under the key the two hosts share, in one TCP option
 * (RFC 6994 experimental option, 20 bytes, fits next to MSS, SACK, timestamps
 * and window scaling):
 *   kind 253, length 20, ExID 0x5a54 ("ZT"), key id (1 byte),
 *   timestamp (3 bytes: CLOCK_TAI seconds mod 2^24, network order),
 *   identity (4 bytes, network order), MAC (8 bytes, SipHash output as bytes).
 * The MAC covers struct ztseg_proof_msg: the tuple as the client sends it,
 * the initial sequence number, the identity, the timestamp and the key id.
 * Addresses whose packets must carry a proof (a fleet peer's workloads and
 * host addresses) are in ztseg_wire_addrs; each names its peer host, whose
 * keys (current and previous, for rotation) are in ztseg_wire_peers, and the
 * workload identities it may prove (those it hosts) in ztseg_wire_idents: a
 * peer's proof naming any other identity is refused, so a compromised host
 * speaks only as its own workloads. */
#define ZTSEG_PROOF_KIND 253
#define ZTSEG_PROOF_LEN 20
#define ZTSEG_PROOF_EXID 0x5a54
#define ZTSEG_PROOF_KEYS 2
#define ZTSEG_PROOF_DEFAULT_WINDOW_S 30
#define ZTSEG_WIRE_PEER_CAPACITY 4096
#define ZTSEG_WIRE_ADDR_CAPACITY 65536
#define ZTSEG_WIRE_IDENT_CAPACITY 65536
struct ztseg_proof_msg {
    __u32 saddr[4]; /* network order; IPv4 in [0], the rest 0 */
    __u32 daddr[4];
    __be16 sport;
    __be16 dport;
    __be32 isn;
    __be32 identity;
    __be32 ts_key; /* (timestamp << 8) | key id, network order */
};
struct ztseg_wire_addr_key {
    __u32 prefixlen; /* 96 + length for IPv4 (IPv4-mapped), length for IPv6 */
    __u32 addr[4];   /* network order, IPv4 as ::ffff:a.b.c.d */
};
struct ztseg_wire_addr_value {
    __u32 peer; /* ztseg_wire_peers key */
    __u32 pad;
};
#define ZTSEG_WKF_SEND 0x1u   /* new connections to the peer are proven under this key */
#define ZTSEG_WKF_ACCEPT 0x2u /* proofs under this key are accepted from the peer */
struct ztseg_wire_key {
    __u64 k0; /* SipHash key, bytes 0..7 as a little-endian number */
    __u64 k1; /* bytes 8..15 */
    __u8 id;
    __u8 flags; /* ZTSEG_WKF_*; 0: an empty slot */
    __u8 pad[6];
};
struct ztseg_wire_peer {
    struct ztseg_wire_key keys[ZTSEG_PROOF_KEYS];
};
struct ztseg_wire_ident_key {
    __u32 peer; /* ztseg_wire_peers key */
    __u32 identity;
};
/* Per socket, from connect to the SYN's proof (sk_storage). */
struct ztseg_sk_proof {
    __u32 peer;
    __u32 identity;
};

/* ---- failsafe rules (docs/ztsegd.md#failsafe-rules) ----
 * Flows of the host that no host policy can refuse: SSH from the management
 * ranges, the controller and etcd links, DNS, NTP, DHCP. Not per generation:
 * they come from ztsegd.yaml and are written at every start. One LPM trie:
 * (direction, protocol, service port) are the first 32 bits of every prefix,
 * then the peer's address, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), so
 * prefixlen = 32 + 128 (IPv6) or 32 + 96 + length (IPv4). The service port is
 * the destination port of the flow's first packet: the host's own port for
 * ingress (22), the server's for egress (53). */
struct ztseg_failsafe_key {
    __u32 prefixlen;
    __u8 direction; /* ZTSEG_DIR_* of the flow's first packet, seen from the host */
    __u8 proto;     /* ZTSEG_PROTO_TCP or ZTSEG_PROTO_UDP */
    __be16 port;    /* service port, network order */
    __u32 addr[4];  /* the peer, network order */
};
#define ZTSEG_FSF_STATELESS                                        \
    0x1u /* peer is any address: never tracked (replies have their \
          * own rule), so a flood cannot fill the conntrack table */
struct ztseg_failsafe_value {
    __u32 rule;  /* 1-based index into ztsegd's failsafe list, for events and explain */
    __u32 flags; /* ZTSEG_FSF_* */
};
#define ZTSEG_FAILSAFE_CAPACITY 4096

/* Default sizes; userspace may override max_entries before load. */
#define ZTSEG_DEFAULT_IDENT_CAPACITY 1048576
#define ZTSEG_DEFAULT_POLICY_CAPACITY 1048576
#define ZTSEG_DEFAULT_ENDPOINT_CAPACITY 65536
#define ZTSEG_DEFAULT_CT_CAPACITY 262144
#define ZTSEG_DEFAULT_CT_NEW_CAPACITY 65536
#define ZTSEG_DEFAULT_FRAG_CAPACITY 8192
#define ZTSEG_DEFAULT_RINGBUF_BYTES (8u << 20)

/* ---- per-generation (slotted) maps ----
 * The one list of them. maps.h defines every row's inner-map template and
 * ARRAY_OF_MAPS from it; userspace (datapath/slot_maps.hpp) derives the pin
 * table, the slot bookkeeping, map creation, filling, patching and the
 * capacity check from it. A new per-generation map is a row here, its
 * entries in datapath/slot_content.cpp, and the BPF code that reads it.
 * Columns: enum suffix, map name, BPF_MAP_TYPE_ suffix, key, value, name of
 * the per-generation inner maps, capacity (ZTSEG_DEFAULT_ suffix; the
 * lower-case ztsegd.yaml option / DatapathOptions field), and what the
 * capacity bounds (rows naming the same thing share the capacity). */
#define ZTSEG_SLOT_MAPS(X)                                                                        \
    X(POLICY, ztseg_policy, HASH, struct ztseg_policy_key, struct ztseg_policy_value,             \
      ztseg_pol_gen, POLICY_CAPACITY, policy_capacity, "policy map")                              \
    X(IDENT4, ztseg_ident4, LPM_TRIE, struct ztseg_ident4_key, struct ztseg_identity_info,        \
      ztseg_id4_gen, IDENT_CAPACITY, identity_capacity, "IPv4 identity map")                      \
    X(IDENT6, ztseg_ident6, LPM_TRIE, struct ztseg_ident6_key, struct ztseg_identity_info,        \
      ztseg_id6_gen, IDENT_CAPACITY, identity_capacity, "IPv6 identity map")                      \
    X(HOST4, ztseg_host4, HASH, struct ztseg_host4_key, struct ztseg_identity_info, ztseg_h4_gen, \
      IDENT_CAPACITY, identity_capacity, "IPv4 identity map")                                     \
    X(HOST6, ztseg_host6, HASH, struct ztseg_host6_key, struct ztseg_identity_info, ztseg_h6_gen, \
      IDENT_CAPACITY, identity_capacity, "IPv6 identity map")                                     \
    X(ENDPOINTS, ztseg_endpoints, HASH, struct ztseg_endpoint_key, struct ztseg_identity_info,    \
      ztseg_ep_gen, ENDPOINT_CAPACITY, endpoint_capacity, "endpoint map")                         \
    X(RULES, ztseg_rules, HASH, struct ztseg_rule_key, struct ztseg_rule_ref, ztseg_ru_gen,       \
      RULE_CAPACITY, rule_capacity, "rule counter map")

#define ZTSEG_SLOT_MAP_ENUM_(id, ...) ZTSEG_SLOT_##id,
enum ztseg_slot_map { ZTSEG_SLOT_MAPS(ZTSEG_SLOT_MAP_ENUM_) ZTSEG_SLOT_MAP_MAX };
#undef ZTSEG_SLOT_MAP_ENUM_

/* Layout asserts for every struct above, on both sides of the ABI. */
#include "abi_layout.h"

#endif /* ZTSEG_ABI_H */
