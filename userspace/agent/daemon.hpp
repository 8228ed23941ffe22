// ztsegd's core: owns the datapath (created or adopted from bpffs), applies
// admitted bundles, keeps XDP on matching interfaces and endpoints in sync
// with workload cgroups, streams flow events to the JSON-lines sink, and
// serves metrics. One thread runs the event loop; signals arrive through a
// signalfd: SIGTERM/SIGINT stop (enforcement stays), SIGHUP reloads.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "agent/config.hpp"
#include "agent/generation_store.hpp"
#include "policy/compiler.hpp"

namespace ztseg::agent {

class Daemon {
  public:
    explicit Daemon(AgentConfig cfg, std::string config_path = "");
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Loads or adopts the datapath and re-establishes enforcement; returns
    // once everything is attached. Throws Error with the reason on failure.
    void start();
    // Runs until SIGTERM/SIGINT (or stop()). Enforcement stays in place.
    void run();
    void stop() { stop_ = true; }

    // Validates and applies a bundle atomically; throws Error (and changes
    // nothing) if it is refused. Returns the applied generation.
    uint64_t applyBundle(const std::string& bytes);
    uint64_t generation() const;
    uint16_t metricsPort() const;

    // `ztsegd --uninstall`: detach everything and remove every pin.
    static void uninstall(const AgentConfig& cfg);

  private:
    struct State;
    void applyCompiled(std::shared_ptr<const policy::CompiledPolicy> cp, const std::string& bytes,
                       bool record);
    void reload();
    void syncEndpoints();
    void attachInterfaces();

    AgentConfig cfg_;
    std::string config_path_;
    std::atomic<bool> stop_{false};
    std::unique_ptr<State> s_;
};

}  // namespace ztseg::agent
