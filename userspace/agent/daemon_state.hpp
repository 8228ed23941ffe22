// Daemon's parts (daemon.hpp), shared by daemon.cpp (start, applies, the
// loop) and daemon_reports.cpp (status, policy, rules, metrics, health).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/api_server.hpp"
#include "agent/confirm_window.hpp"
#include "agent/controller_link.hpp"
#include "agent/daemon.hpp"
#include "agent/enforcement.hpp"
#include "agent/etcd_link.hpp"
#include "agent/flow_pipeline.hpp"
#include "agent/metrics.hpp"
#include "agent/systemd_notify.hpp"
#include "common/revocation.hpp"
#include "common/unique_fd.hpp"
#include "datapath/event_reader.hpp"
#include "flows/enrich.hpp"
#include "flows/jsonl_sink.hpp"
#include "policy/signing.hpp"
#include "shared/flow_hub.hpp"
#include "shared/generation_store.hpp"

namespace ztseg::agent {

struct Daemon::State {
    explicit State(const std::string& state_dir) : store(state_dir) {}

    GenerationStore store;
    // Replaced whole on SIGHUP (key rotation without a restart).
    std::atomic<std::shared_ptr<const std::vector<policy::Ed25519Key>>> trusted;
    std::unique_ptr<Enforcement> enforcement;
    std::unique_ptr<ConfirmWindow> confirm;  // apply with a confirm window
    std::unique_ptr<flows::Enricher> enricher;
    std::unique_ptr<flows::JsonlSink> sink;
    FlowHub hub;                                  // enriched flows for the API's Flows streams
    std::unique_ptr<FlowPipeline> flow_pipeline;  // ring buffer -> flow log + hub
    std::unique_ptr<EventReader> reader;
    std::unique_ptr<MetricsServer> metrics;
    UniqueFd signals;
    SystemdNotifier notifier;
    // Revoked peer certificates (API over TCP, controller link); replaced whole on SIGHUP.
    std::shared_ptr<const Revocation> revocation;
    std::mutex wire_proof_mu;
    v1::WireProofStatus wire_proof;  // under wire_proof_mu; unset until the first push

    std::unique_ptr<ApiServer> api;              // late: stopped before everything it calls
    std::unique_ptr<ControllerLink> controller;  // fleet management (either one)
    std::unique_ptr<EtcdLink> etcd;
};

}  // namespace ztseg::agent
