// What this host enforces, and the only owner of the datapath in ztsegd: the
// policy in force, the local workload cgroups, XDP on the interfaces, and
// the one lock that serializes every change to them (applies, rollbacks,
// cgroups and interfaces coming and going, pending cgroups settling). After
// every change it publishes an immutable EnforcedState; readers (status,
// metrics, the flow enricher) never take the lock.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/cgroup_watcher.hpp"
#include "agent/config.hpp"
#include "agent/xdp_interfaces.hpp"
#include "datapath/datapath.hpp"
#include "policy/compiler.hpp"
#include "shared/generation_store.hpp"

namespace ztseg::agent {

// Published after every change; never modified once published.
struct EnforcedState {
    std::shared_ptr<const policy::CompiledPolicy> policy;  // null before the first apply
    std::map<uint64_t, CgroupMatch> endpoints;             // local workload cgroups by id
    std::vector<double> apply_seconds;                     // one per successful apply
    uint64_t apply_failures = 0;                           // refused or failed applies
    uint64_t generation() const { return policy ? policy->generation : 0; }
};

// Everything status and metrics report about enforcement, read at one moment.
struct EnforcementSnapshot {
    std::shared_ptr<const EnforcedState> state;
    uint64_t active_generation = 0;    // what the kernel enforces
    uint64_t previous_generation = 0;  // what `rollback` returns to (0: nothing this run can)
    Counters counters;
    ConntrackUsage conntrack;
    size_t pending_cgroups = 0;
    std::map<std::string, std::string> interfaces;  // ifname -> XDP mode
    bool raw_socket_guard = false;
    std::string raw_sockets;             // "confined (...)" or "NOT confined: why"
    std::vector<FailsafeRule> failsafe;  // in force (empty: failsafe.enabled false)
};

// Per-rule hit counts of the policy in force, read at one moment.
struct RuleHitsSnapshot {
    std::shared_ptr<const policy::CompiledPolicy> policy;  // null: no policy
    std::vector<RuleHitCount> hits;                        // by rule id, counted rules only
    size_t uncounted = 0;
};

class Enforcement {
  public:
    // Called with the lock held whenever the policy in force or the set of
    // local workload cgroups changed (the flow enricher follows it).
    using Listener = std::function<void(const EnforcedState&)>;
    // Produces the policy to apply and the bytes to keep in the state dir as
    // the current bundle, or throws Error to refuse it (admission).
    struct Admitted {
        std::shared_ptr<const policy::CompiledPolicy> policy;
        std::string bytes;
    };
    using Admit = std::function<Admitted()>;
    // What a switch of the policy in force tells the confirm window
    // (confirm_window.hpp); both run with the lock held.
    struct SwitchHooks {
        // Once the target is known, before the datapath changes: `from` is in
        // force, `to` comes. May throw Error to refuse the switch.
        std::function<void(uint64_t from, uint64_t to)> before;
        // The switch failed after `before` ran: undo what it recorded.
        std::function<void()> failed;
    };

    Enforcement(const AgentConfig& cfg, GenerationStore& store, Listener listener);
    ~Enforcement();
    Enforcement(const Enforcement&) = delete;
    Enforcement& operator=(const Enforcement&) = delete;

    // Adopts the pinned datapath (enforcement never paused) or loads one.
    // Returns true if it loaded one (nothing was pinned before).
    bool open();
    // Cgroup hooks on the workload hierarchy, XDP on matching interfaces.
    void attach();

    // Admits and applies a policy, serialized with every other change (so
    // rollback protection sees applies in order, and a delta meets the
    // bundle in force). `record`: remember the admitted bytes in the state
    // dir as the current bundle. Throws Error, changing nothing.
    uint64_t apply(const Admit& admit, bool record, const SwitchHooks& hooks = {});
    // Back to the previous generation, if this process applied it.
    uint64_t rollback(const SwitchHooks& hooks = {});
    // Switches to a bundle this host recorded itself (the return point of
    // an unconfirmed change): parsed, not admitted again, applied in full,
    // the highest applied generation left alone. `pick` runs first, under
    // the lock, and gives the bytes (nullopt: nothing to do, returns 0);
    // `done(from, to)` runs under the lock once the datapath switched.
    uint64_t restore(const std::function<std::optional<std::string>()>& pick,
                     const std::function<void(uint64_t from, uint64_t to)>& done);
    // Runs fn ordered with every change (a confirmation against applies).
    void serialized(const std::function<void()>& fn);
    // Pairwise wire-proof keys (Datapath::setWireProof), ordered with every change.
    void setWireProof(const WireProofConfig& config);
    // Workload cgroups that appeared or left (the cgroup watcher's events).
    void syncCgroups();
    // Interfaces that appeared, left or changed (the link watcher's events).
    void syncInterfaces();
    // Pending cgroups whose events were missed (called when idle).
    void settleIdle();

    std::shared_ptr<const EnforcedState> state() const { return state_.load(); }
    // The bundle in force, as admitted (envelope included); "" before the
    // first apply. Waits for a running apply or rollback to finish.
    std::string currentBundle() const;
    EnforcementSnapshot snapshot() const;
    // The policy in force and what the kernel counted for each of its rules.
    RuleHitsSnapshot ruleHits() const;

    int eventsFd() const { return dp_->eventsFd(); }
    int cgroupsFd() const { return cgroups_->fd(); }
    int linksFd() const { return xdp_->fd(); }

    // `ztsegd --uninstall`.
    static void uninstall(const AgentConfig& cfg);

  private:
    uint64_t applyLocked(const Admit& admit, bool record, const SwitchHooks& hooks);
    std::map<uint64_t, CgroupMatch> scanEndpoints(const policy::CompiledPolicy& cp);
    // `cp` and `endpoints` are in force: publish them, pre-classify new cgroups.
    void use(std::shared_ptr<const policy::CompiledPolicy> cp,
             std::map<uint64_t, CgroupMatch> endpoints);
    void settle();
    void publish(EnforcedState next);
    void countFailure();
    void installFailsafe();  // the config's failsafe rules into the datapath (open())

    const AgentConfig& cfg_;
    GenerationStore& store_;
    Listener listener_;
    std::string cgroup_root_;

    mutable std::mutex mu_;  // every change below, and the datapath's writes
    std::optional<Datapath> dp_;
    std::unique_ptr<CgroupWatcher> cgroups_;
    std::unique_ptr<XdpInterfaces> xdp_;
    std::vector<FailsafeRule> failsafe_;  // set once by open()
    // For rollback: the datapath's previous generation, if this process
    // applied it (0: none); its bundle is the store's previousBundle().
    std::atomic<uint64_t> previous_generation_{0};
    void releaseFreedMemory();

    std::atomic<std::shared_ptr<const EnforcedState>> state_;
};

}  // namespace ztseg::agent
