// ztsegd's core: owns the datapath (created or adopted from bpffs), applies
// admitted bundles, keeps XDP on matching interfaces and endpoints in sync
// with workload cgroups, streams flow events to the JSON-lines sink, and
// serves metrics and the gRPC API. One thread runs the event loop; signals
// arrive through a signalfd: SIGTERM/SIGINT stop (enforcement stays), SIGHUP
// reloads. API calls run on gRPC threads. Every datapath change (apply,
// rollback, endpoint and interface updates) goes through Enforcement, which
// serializes them; status and metrics read its published snapshot.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "agent/api_server.hpp"
#include "agent/config.hpp"
#include "agent/metrics.hpp"
#include "shared/generation_store.hpp"

namespace ztseg::agent {

class Daemon : public AgentOps {
  public:
    explicit Daemon(AgentConfig cfg, std::string config_path = "");
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Loads or adopts the datapath and re-establishes enforcement; returns
    // once everything is attached, then serves the API (unless !serve_api).
    // Throws Error with the reason on failure.
    void start(bool serve_api = true);
    // Runs until SIGTERM/SIGINT (or stop()). Enforcement stays in place.
    void run();
    void stop() { stop_ = true; }

    // Validates and applies a bundle atomically; throws Error (and changes
    // nothing) if it is refused or start() has not finished. Returns the
    // applied generation.
    // confirm_within_ms > 0: with a confirm window (confirm_window.hpp).
    uint64_t applyBundle(const std::string& bytes, uint32_t confirm_within_ms = 0);
    uint64_t generation() const;

    // The API (AgentOps). apply: applyBundle. rollback: back to the previous
    // generation; the highest applied generation stays (rollback protection
    // is for bundles, a local rollback is explicit), the current bundle
    // recorded in state_dir becomes the rolled-back one.
    uint64_t apply(const std::string& bundle, uint32_t confirm_within_ms) override {
        return applyBundle(bundle, confirm_within_ms);
    }
    uint64_t rollback() override;
    uint64_t confirm(uint64_t generation) override;
    v1::StatusReply status() override;
    v1::PolicyReply policy() override;
    v1::RulesReply rules() override;
    void setWireProof(const WireProofConfig& config, uint64_t epoch) override;
    uint16_t metricsPort() const;

    // `ztsegd --uninstall`: detach everything and remove every pin.
    static void uninstall(const AgentConfig& cfg);

  private:
    struct State;
    void establish(bool serve_api);
    void teardownForFailedStart();
    uint64_t applyAdmitted(const std::string& bytes, uint32_t confirm_within_ms);
    Health health();
    void reload();
    // API calls made while start() is still establishing enforcement wait for
    // it (bounded), so `ztsegd & ztsegctl apply` works and status is never half.
    void awaitReady();
    // Status and metrics come from one Enforcement snapshot each.
    MetricsSnapshot metrics();

    AgentConfig cfg_;
    std::string config_path_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> ready_{false};  // start() finished: enforcement established
    std::mutex ready_mu_;
    std::condition_variable ready_cv_;
    bool start_failed_ = false;  // under ready_mu_: wakes awaitReady() for good
    std::unique_ptr<State> s_;
};

}  // namespace ztseg::agent
