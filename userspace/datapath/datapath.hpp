// Datapath: the single owner of ztseg's BPF programs, maps and links, and the
// only code that writes the maps. Callers speak identities, workloads and
// rules; Datapath turns them into map entries. All state is pinned under one
// bpffs directory, so enforcement outlives the process and a restarted daemon
// adopts it (Datapath::adopt) without a gap.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "abi.h"
#include "common/unique_fd.hpp"
#include "datapath/bpf_map.hpp"
#include "datapath/cgroup_hooks.hpp"
#include "datapath/link_type.hpp"
#include "datapath/options.hpp"
#include "datapath/policy_entries.hpp"
#include "datapath/raw_socket_guard.hpp"
#include "datapath/rule_counters.hpp"
#include "datapath/slot_maps.hpp"
#include "datapath/wire_proof.hpp"
#include "model/failsafe.hpp"
#include "model/types.hpp"

namespace ztseg {

// How an interface's ingress stage is attached: XDP (native or generic), or
// tc at tcx ingress (virtual devices). "xdp" in the names below means "the
// interface ingress stage" for historical reasons: both run the same logic.
enum class XdpMode { Native, Generic, Tcx };
// Auto: tcx on virtual devices (generic XDP if tcx cannot attach), native
// XDP (else generic) on physical NICs. The others force one mode everywhere.
enum class XdpRequest { Auto, Native, Generic, Tcx };
std::string_view xdpModeName(XdpMode m);

struct XdpAttachment {
    std::string ifname;
    int ifindex = 0;
    XdpMode mode = XdpMode::Native;
    // kXdpEthernetProg, kXdpL3Prog, kTcxEthernetProg or kTcxL3Prog; "" if not
    // one of this datapath's
    std::string program;
};

// The program ids of a datapath's ingress programs (0: not loaded/unknown).
struct IngressProgIds {
    uint32_t xdp = 0, xdp_l3 = 0, tcx = 0, tcx_l3 = 0;
};

// The ingress links (XDP or tcx) pinned under pin_dir (links/xdp-<ifname>)
// and each device's attach mode; the program ids tell which program a link
// runs. Only reads (Datapath::xdpAttachments, inspectPinned).
std::vector<XdpAttachment> pinnedXdpAttachments(const std::string& pin_dir,
                                                const IngressProgIds& ids);

struct CounterValue {
    uint64_t packets = 0;
    uint64_t bytes = 0;
};

// How the last apply() was carried out (for logs, metrics and tests).
struct ApplyStats {
    bool incremental = false;  // only changed entries were written
    size_t map_writes = 0;     // entries written or deleted
    size_t policy_entries = 0;
    double build_ms = 0;  // computing entries and the diff
    double write_ms = 0;  // map writes until the new generation was live
};

// A cgroup created since ztsegd last looked: the cgroup_mkdir tracepoint
// entered it at mkdir(2), before any process could join it.
struct PendingCgroup {
    uint64_t cgroup_id = 0;
    IdentityId identity = kUnlabeled;  // the workload its name says; kUnlabeled: quarantined
    uint64_t created_ns = 0;           // CLOCK_MONOTONIC
};

// The workload a new cgroup will be, as far as its name or parent tells.
struct WorkloadClass {
    IdentityId identity = kUnlabeled;  // kUnlabeled: several workloads fit, quarantine
    WorkloadMode mode = WorkloadMode::Unmanaged;
    bool operator==(const WorkloadClass&) const = default;
};
// How the kernel classifies new cgroups at mkdir, until ztsegd has looked.
struct CgroupPreclassifier {
    std::map<std::string, WorkloadClass> names;  // a leaf name patterns give literally
    // A parent whose new children a glob matches: only names starting with
    // prefix (the glob's literal start) are pre-classified.
    struct Guard {
        WorkloadClass workload;
        std::string prefix;
    };
    std::map<uint64_t, Guard> guards;  // by parent cgroup id
};

// Connection tracking occupancy and pressure (map entries, counters since load).
struct ConntrackUsage {
    uint32_t assured = 0;  // entries in ztseg_ct
    uint32_t fresh = 0;    // entries in ztseg_ct_new (not yet assured)
    uint64_t created = 0;  // flows entered into ztseg_ct_new
    uint64_t assured_total = 0;
    uint64_t untracked = 0;  // audit would-drops of unlabeled peers, never tracked
};

struct SlotContent;
class GracePeriod;

struct Counters {
    std::array<std::array<CounterValue, ZTSEG_REASON_MAX>, ZTSEG_HOOK_MAX> by_hook{};
    std::array<uint64_t, ZTSEG_EVSTAT_MAX> events{};  // indexed by enum ztseg_event_stat
    const CounterValue& at(uint32_t hook, uint32_t reason) const { return by_hook[hook][reason]; }
};

class Datapath {
  public:
    // Load programs and maps and pin them under opts.pin_dir (which must not
    // hold ztseg state yet), and attach the raw-socket guard (BPF LSM) once for
    // the host. Verifier output is part of the error on failure. A kernel
    // without BPF LSM is not an error: see rawSocketGuard().
    static Datapath create(const DatapathOptions& opts);
    // Re-open pinned state left by an earlier process (the guard's link too).
    static Datapath adopt(const DatapathOptions& opts);
    static bool isPinned(const std::string& pin_dir);
    // Maps of `object_maps` (names of a BPF object's maps) that the pin table
    // lacks; libbpf's internal maps (names with a '.') are not counted.
    // create() refuses an object for which this is not empty.
    static std::vector<std::string> mapsMissingFromPinTable(
        const std::vector<std::string>& object_maps);
    // Detach every link pinned under pin_dir and remove every pin: no trace left.
    static void uninstall(const std::string& pin_dir);

    Datapath(Datapath&&) noexcept;
    Datapath& operator=(Datapath&&) noexcept;
    ~Datapath();

    // The ingress stage on a host interface. Auto: tc at tcx ingress on
    // virtual devices (isVirtualDevice), native XDP on physical NICs; each
    // falls back to generic XDP and says so (log, and fallback_reason).
    // The program follows the link type (ztseg_xdp / ztseg_tcx for Ethernet
    // devices, ztseg_xdp_l3 / ztseg_tcx_l3 for devices whose frames start at
    // the IP header); other link types and loopback are refused with an
    // Error naming both. The link is pinned at links/xdp-<ifname>; a link
    // already pinned there is replaced (a tcx link is made before the old
    // link is removed, so enforcement never pauses).
    XdpMode attachXdp(const std::string& ifname, XdpRequest req = XdpRequest::Auto,
                      std::string* fallback_reason = nullptr);
    // The program the ingress stage of this interface runs under `req` when
    // nothing fails ("ztseg_tcx", "ztseg_xdp", ...). Throws Error for a
    // refused link type.
    std::string ingressProgramFor(const std::string& ifname, XdpRequest req) const;
    void detachXdp(const std::string& ifname);
    std::vector<XdpAttachment> xdpAttachments() const;

    // cgroup_skb ingress/egress and connect/sendmsg hooks on a cgroup v2 subtree.
    void attachCgroup(const std::string& cgroup_path);
    void detachCgroup(const std::string& cgroup_path);
    std::vector<uint64_t> attachedCgroups() const;

    // Make a whole generation visible in one atomic step; the previous one is
    // kept for rollback(). Throws CapacityError (nothing written) if it does not fit.
    // The new generation is written into the inactive slot: when this process
    // wrote that slot before, only entries that differ are written
    // (incremental); otherwise (first applies, after adopt, large changes)
    // fresh maps are built and swapped in.
    void apply(const Generation& gen);
    const ApplyStats& lastApply() const { return last_apply_; }
    // Switch back to the generation before the active one.
    void rollback();
    uint64_t activeGeneration() const;  // 0 = no policy loaded
    // What rollback() returns to; 0 if none or that slot is incomplete
    // (a writer died while building it).
    uint64_t previousGeneration() const;

    // Local workloads appearing/disappearing between applies (active generation).
    // raw_sockets: a policy lets the workload open raw/packet sockets.
    void upsertEndpoint(const Endpoint& ep, WorkloadMode mode, bool raw_sockets = false);
    void removeEndpoint(uint64_t cgroup_id);

    // New cgroups: what the kernel pre-classifies (replaces the previous set),
    // what it has entered since, and forgetting an entry once classified.
    void setCgroupPreclassifier(const CgroupPreclassifier& pre);
    std::vector<PendingCgroup> pendingCgroups() const;
    void clearPending(uint64_t cgroup_id);

    // The host's failsafe rules (model/failsafe.hpp), replacing the ones in
    // force: rules are added before stale ones are removed, so a flow both
    // lists admit never sees a gap. The first of two rules with the same key
    // holds it (as matchFailsafe). Throws Error if more than the map holds.
    void setFailsafe(const std::vector<FailsafeRule>& rules);

    // Proven identity on the wire (datapath/wire_proof.hpp): the fleet peers,
    // their addresses and keys, replacing the ones in force (new entries are
    // written before stale ones are removed). Throws Error on a bad config
    // (more keys than ZTSEG_PROOF_KEYS, a duplicate key id, peer id 0, more
    // than the maps hold). An empty config turns proofs off.
    void setWireProof(const WireProofConfig& config);

    Counters counters() const;
    // What each rule of the active generation counted (datapath/rule_counters.hpp),
    // by rule id; empty when no policy is loaded or counting is off.
    std::vector<RuleHitCount> ruleHits() const;
    // Rules of the last apply that are enforced but not counted (counters full).
    size_t uncountedRules() const;
    uint32_t conntrackEntries() const;  // assured + new
    ConntrackUsage conntrackUsage() const;
    // Forget every tracked connection (and XDP's cache of established flows).
    void flushConntrack();
    void setDropEventInterval(uint64_t ns);
    void setDropEventSourceBudget(uint32_t events);  // 0: no per-source budget

    // Whether raw IP, AF_PACKET and AF_XDP sockets of enforced workloads are
    // confined: by the BPF LSM program, or without BPF LSM by the fallback
    // (rawSocketGuardMode() says which). False when the guard is turned off;
    // the warning logged then is rawSocketGuardProblem().
    bool rawSocketGuard() const { return raw_guard_problem_.empty(); }
    const std::string& rawSocketGuardProblem() const { return raw_guard_problem_; }
    RawGuardKind rawSocketGuardKind() const { return raw_guard_kind_; }
    RawKillHook rawSocketKillHook() const { return raw_kill_hook_; }
    std::string rawSocketGuardMode() const {
        return rawGuardModeText(raw_guard_kind_, raw_kill_hook_);
    }

    int eventsFd() const { return events_.fd(); }
    // A loaded program by name ("ztseg_xdp", "ztseg_xdp_l3", "ztseg_cg_ingress", ...): for
    // BPF_PROG_TEST_RUN and benchmarks. -1 if there is no such program.
    int programFd(std::string_view name) const;
    const std::string& pinDir() const { return opts_.pin_dir; }

  private:
    friend struct DatapathMaps;
    Datapath();
    void openPinned();
    const UniqueFd& xdpProgram(XdpProgram p) const;
    const UniqueFd& tcxProgram(XdpProgram p) const;
    void adoptRawSocketGuard();  // raw_socket_guard.cpp
    uint32_t activeSlotRaw() const;
    void writeConfig(uint32_t index, uint64_t value) const;
    // Which network namespace is the host's (DatapathOptions::host_netns_cookie).
    void writeHostNetns() const;
    void flipTo(uint32_t slot);
    void writeSlotMeta(uint32_t slot, uint64_t generation, const ProbeMasks& probes,
                       uint32_t flags) const;
    SlotMapIds slotMapIds(uint32_t slot) const;
    void checkCapacity(const SlotContent& c) const;
    void buildSlot(uint32_t slot, const SlotContent& content);
    // Lets the hooks find these endpoints' descendants (ZTSEG_CFG_WORKLOAD_LEVELS).
    void raiseWorkloadLevels(const std::vector<Endpoint>& eps);
    size_t patchSlot(uint32_t slot, const SlotContent& from, const SlotContent& to);
    // apply()'s second half: writes `next` into the inactive `slot` (which
    // held `target`, nullptr if unknown) and flips to it.
    void installGeneration(const Generation& gen, uint32_t slot, const SlotContent* target,
                           std::shared_ptr<const SlotContent> next,
                           std::chrono::steady_clock::time_point t0);
    // ztseg_rules entries of `gen` (datapath_rules.cpp) for the slot that held
    // `replaced`, while `active` is live (nullptr: unknown).
    std::vector<RuleRefEntry> assignRuleCounters(const Generation& gen, const SlotContent* replaced,
                                                 const SlotContent* active);
    void forgetRuleCounterAssignment();  // an apply failed after assigning
    std::optional<std::vector<RuleRefEntry>> activeRuleRefs() const;  // nullopt: unknown
    RuleCounterTable& ruleTable() const;

    DatapathOptions opts_;
    BpfMap config_, slots_;
    std::array<BpfMap, kSlotMapCount> slot_maps_;  // the outer maps, by ztseg_slot_map
    BpfMap ct_, frags_, flowcache_, counters_, evstats_, ratelimit_, srclimit_, events_;
    BpfMap ct_new_, ctstats_, cg_pending_, cg_names_, cg_guards_;
    BpfMap rule_hits_, rule_slots_, failsafe_;
    BpfMap wire_addrs_, wire_peers_, wire_idents_, sk_proofs_;
    mutable std::unique_ptr<RuleCounterTable> rule_table_;  // loaded at first use
    std::map<uint64_t, int> endpoint_levels_;               // cgroup id -> level, as found
    UniqueFd xdp_prog_, xdp_l3_prog_;                       // Ethernet first, IP first
    UniqueFd tcx_prog_, tcx_l3_prog_;  // the same for tcx; invalid if adopted from an older pin
    std::array<UniqueFd, kCgroupHookCount> cgroup_progs_;  // order: kCgroupHooks
    UniqueFd lsm_prog_;                                    // invalid when the kernel lacks BPF LSM
    UniqueFd raw_inet_prog_, raw_kill_prog_;               // the fallback without BPF LSM
    RawGuardKind raw_guard_kind_ = RawGuardKind::None;
    RawKillHook raw_kill_hook_ = RawKillHook::Auto;  // Fallback: the hook of raw_kill_prog_
    std::string raw_guard_problem_;                  // "" = raw sockets are confined

    // What this process last wrote into each slot, and the inner maps it was
    // written to (a slot rewritten by anyone else no longer matches).
    struct SlotMirror {
        std::shared_ptr<const SlotContent> content;
        SlotMapIds map_ids{};
    };
    std::array<SlotMirror, ZTSEG_SLOTS> mirror_;
    std::unique_ptr<GracePeriod> grace_;
    ApplyStats last_apply_;
};

}  // namespace ztseg
