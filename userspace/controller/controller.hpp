// ztseg-controller's core. Holds the policy source (a directory, checked
// every watch_interval and on Reload/SIGHUP), compiles it with the same
// compiler as ztsegctl, signs every bundle, and rolls each new generation out
// in waves: canaries first, every wave waits for all its acks and a soak with
// a health check (default-deny drop growth under a threshold). A failed wave
// halts the rollout and rolls back by issuing a NEW generation that carries
// the previous stable policy (agents refuse anything not newer, by design).
// Hosts that (re)connect are brought to the generation meant for them.
// Every step is written to the rollout log (JSON lines) as a timeline.
#pragma once

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "common/unique_fd.hpp"
#include "controller.pb.h"
#include "controller/agent_sessions.hpp"
#include "controller/auto_confirm.hpp"
#include "controller/controller_config.hpp"
#include "controller/delta_cache.hpp"
#include "controller/fleet.hpp"
#include "controller/wire_key_pusher.hpp"
#include "flows/jsonl_sink.hpp"
#include "policy/compiler.hpp"
#include "policy/signing.hpp"
#include "shared/flow_hub.hpp"
#include "shared/generation_store.hpp"

namespace ztseg::controller {

// One signed generation of fleet policy.
struct Release {
    uint64_t generation = 0;
    std::string signed_bundle;
    std::string digest;  // the policy source's SHA-256
    std::shared_ptr<const policy::CompiledPolicy> policy;
    int64_t stable_since_unix_ms = 0;  // when it became the stable release
};

class Controller {
  public:
    explicit Controller(ControllerConfig cfg);
    ~Controller();
    Controller(const Controller&) = delete;
    Controller& operator=(const Controller&) = delete;

    // Loads keys and state, connects to etcd (etcd mode), starts the engine.
    // The agents' and operators' API is ControllerServer (controller_service.hpp).
    // Throws Error with the reason.
    void start();
    // Until SIGTERM/SIGINT (or stop()); SIGHUP asks for a reload.
    void run();
    void stop();

    // Re-reads the policy source now and, if it changed, rolls it out;
    // returns when that is over (blocking).
    // force: roll out even what the rollout guard refuses.
    v1::ReloadReply reload(bool force = false);
    v1::PolicyReply policy();  // the stable release
    // Per-rule hit counts of every connected host, summed (fleet_rules.hpp);
    // hosts that do not answer within `wait` are named in unanswered.
    v1::RulesReply rules(std::chrono::milliseconds wait = std::chrono::seconds(5));
    v1::FleetStatusReply status();

    // For the agent connections.
    const ControllerConfig& config() const { return cfg_; }
    Fleet& fleet() { return fleet_; }
    AgentSessions* sessions() { return sessions_.get(); }
    AutoConfirm* autoConfirm() { return auto_confirm_.get(); }  // null: no confirm windows
    WireKeyPusher* wireKeys() { return wire_keys_.get(); }      // null: etcd mode
    bool collectsFlows() const { return flow_sink_ != nullptr; }
    void onFlow(const v1::FlowEvent& e);
    FlowHub& flowHub() { return flow_hub_; }
    void wake();

  private:
    friend class Rollout;  // rollout.cpp: one release's waves, halt and rollback
    void engine();
    bool stopping() const;
    void checkSource(bool forced, bool override_guard);
    std::optional<Release> compileSource(uint64_t generation);
    Release reissue(const Release& content, uint64_t generation);
    Release sign(policy::CompiledPolicy cp);
    uint64_t nextGeneration();
    void rollout(Release next);
    void reconcile();
    const Release* desiredFor(const std::string& host) const;
    // Workload name -> identity in the stable and the rolling release (under mu_).
    std::map<std::string, uint32_t> workloadIdentities() const;
    // The releases changed: hosts' wire-proof identities may have (not under mu_).
    void releasesChanged();
    // Waits for pred over the fleet, pushing lagging hosts meanwhile.
    bool waitHosts(const std::function<bool(const Fleet::Hosts&)>& pred,
                   std::chrono::milliseconds timeout);
    void setRollout(const v1::RolloutStatus& st);
    void event(const std::string& what, uint64_t generation, nlohmann::json detail = {});

    ControllerConfig cfg_;
    std::vector<policy::Ed25519Key> keys_;
    std::optional<GenerationStore> store_;
    std::unique_ptr<DeltaCache> deltas_;  // hosts one release behind get a delta
    Fleet fleet_;
    std::unique_ptr<AgentSessions> sessions_;    // direct mode
    std::unique_ptr<AutoConfirm> auto_confirm_;  // direct mode with rollout.confirm_within_ms
    std::unique_ptr<WireKeyPusher> wire_keys_;   // direct mode
    std::unique_ptr<Distributor> etcd_;          // etcd mode
    Distributor* dist_ = nullptr;
    std::unique_ptr<flows::JsonlSink> flow_sink_;
    FlowHub flow_hub_;
    std::ofstream rollout_log_;
    std::mutex log_mu_;

    // Engine state (engine thread; status() reads under mu_).
    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    bool reload_requested_ = false;
    bool guard_override_requested_ = false;  // a reload with force
    uint64_t cycles_ = 0;                    // completed source checks
    bool checking_ = false;
    v1::ReloadReply last_reload_;
    std::optional<Release> stable_;
    std::optional<Release> rolling_;
    std::set<std::string> included_;  // hosts the rolling release is meant for
    v1::RolloutStatus rollout_status_;
    std::string failed_digest_;  // a halted source is not retried until it changes
    std::string source_fingerprint_;
    uint64_t report_seq_ = 0;

    UniqueFd signals_;
    std::thread engine_;
};

}  // namespace ztseg::controller
