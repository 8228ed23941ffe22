// What ztsegd reports about itself: Status, Policy and Rules (the API),
// /metrics and /healthz. Each reads one Enforcement snapshot.
#include <map>
#include <string>

#include "agent/daemon.hpp"
#include "agent/daemon_state.hpp"
#include "agent/rule_report.hpp"
#include "common/version.hpp"
#include "model/names.hpp"
#include "policy/bundle.hpp"

namespace ztseg::agent {
namespace {

// Flow events lost, by the stage that lost them (status and metrics alike).
std::map<std::string, uint64_t> lostByStage(const Counters& c, const flows::JsonlSink& sink,
                                            const FlowHub& hub) {
    return {{"ringbuf", c.events[ZTSEG_EVSTAT_LOST_RINGBUF]},
            {"rate_limited", c.events[ZTSEG_EVSTAT_RATE_LIMITED]},
            {"source_limited", c.events[ZTSEG_EVSTAT_SOURCE_LIMITED]},
            {"sink_file", sink.lost()},
            {"rotated_undelivered", sink.rotatedUndelivered()},
            {"grpc_stream", hub.lost()}};
}

}  // namespace

v1::PolicyReply Daemon::policy() {
    awaitReady();
    v1::PolicyReply r;
    std::string bytes = s_->enforcement->currentBundle();
    if (bytes.empty()) {
        return r;
    }
    // Who vouches for it under today's trusted keys (they may have rotated).
    if (const auto& keys = *s_->trusted.load(); !keys.empty()) {
        try {
            r.set_signer(policy::verifyBundle(bytes, keys).key_id);
        } catch (const Error& e) {
            r.set_signer("none of the trusted keys (" + std::string(e.what()) + ")");
        }
    }
    r.set_generation(policy::claimedGeneration(bytes));
    r.set_in_force_since_unix_ms(s_->store.currentSinceUnixMs());
    r.set_bundle(std::move(bytes));
    return r;
}

v1::RulesReply Daemon::rules() {
    awaitReady();
    return rulesReply(s_->enforcement->ruleHits(), cfg_.host_name);
}

v1::StatusReply Daemon::status() {
    awaitReady();
    const EnforcementSnapshot snap = s_->enforcement->snapshot();
    v1::StatusReply r;
    r.set_host(cfg_.host_name);
    r.set_generation(snap.active_generation);
    r.set_previous_generation(snap.previous_generation);
    r.set_highest_generation(s_->store.highest());
    r.set_raw_sockets(snap.raw_sockets);
    {
        std::lock_guard lock(s_->wire_proof_mu);
        if (s_->wire_proof.updated_unix_ms() != 0) {
            *r.mutable_wire_proof() = s_->wire_proof;
        }
    }
    for (const FailsafeRule& f : snap.failsafe) {
        v1::FailsafeRule* out = r.add_failsafe();
        out->set_name(f.name);
        out->set_origin(f.origin);
        out->set_direction(f.direction == Direction::Ingress ? "ingress" : "egress");
        out->set_protocol(protocolName(f.protocol));
        out->set_port(f.port);
        out->set_peer(f.peer.str());
    }
    r.set_failsafe_disabled(!cfg_.failsafe.enabled);
    r.set_version(buildVersion());
    r.set_commit(buildCommit());
    if (auto p = s_->confirm->pending()) {
        v1::PendingConfirmation* out = r.mutable_confirm_pending();
        out->set_generation(p->generation);
        out->set_return_to(p->return_to);
        out->set_deadline_unix_ms(p->deadline_unix_ms);
        out->set_window_ms(p->window_ms);
    }
    if (auto last = s_->confirm->lastRollback()) {
        v1::AutoRollback* out = r.mutable_last_auto_rollback();
        out->set_from_generation(last->from);
        out->set_to_generation(last->to);
        out->set_window_ms(last->window_ms);
        out->set_at_unix_ms(last->at_unix_ms);
        out->set_reason(last->reason);
    }
    r.set_auto_rollbacks(s_->confirm->rollbacks());
    const Counters& c = snap.counters;
    for (uint32_t h = 0; h < ZTSEG_HOOK_MAX; ++h) {
        for (uint32_t why = 0; why < ZTSEG_REASON_MAX; ++why) {
            const CounterValue& v = c.at(h, why);
            if (v.packets != 0 || v.bytes != 0) {
                v1::Counter* out = r.add_counters();
                out->set_hook(std::string(hookName(h)));
                out->set_reason(std::string(reasonName(why)));
                out->set_packets(v.packets);
                out->set_bytes(v.bytes);
            }
        }
    }
    r.set_events_emitted(c.events[ZTSEG_EVSTAT_EMITTED]);
    for (const auto& [stage, n] : lostByStage(c, *s_->sink, s_->hub)) {
        (*r.mutable_events_lost())[stage] = n;
    }
    for (const auto& [name, mode] : snap.interfaces) {
        v1::Interface* i = r.add_interfaces();
        i->set_name(name);
        i->set_mode(mode);
    }
    for (const auto& [id, m] : snap.state->endpoints) {
        v1::WorkloadEndpoint* e = r.add_endpoints();
        e->set_name(m.workload);
        e->set_cgroup_path(m.path);
        e->set_cgroup_id(id);
        if (const policy::CompiledWorkload* w = snap.state->policy->workload(m.workload)) {
            e->set_identity(w->identity);
            e->set_mode(std::string(modeName(w->mode)));
        }
    }
    return r;
}

MetricsSnapshot Daemon::metrics() {
    if (!ready_) {
        throw MetricsServer::NotReady("ztsegd is starting: no metrics yet");
    }
    const EnforcementSnapshot snap = s_->enforcement->snapshot();
    MetricsSnapshot m;
    m.datapath = snap.counters;
    m.policy_generation = snap.state->generation();
    m.apply_durations_seconds = snap.state->apply_seconds;
    m.apply_failures = snap.state->apply_failures;
    m.attached_interfaces = snap.interfaces;
    m.workloads = snap.state->endpoints.size();
    m.raw_socket_guard = snap.raw_socket_guard;
    m.flow_events_by_sink["file"] = s_->sink->written();
    m.flow_events_lost_by_stage = lostByStage(snap.counters, *s_->sink, s_->hub);
    m.conntrack = snap.conntrack;
    m.map_entries["ztseg_ct"] = m.conntrack.assured;
    m.map_entries["ztseg_ct_new"] = m.conntrack.fresh;
    m.map_capacity["ztseg_ct"] = cfg_.datapath.conntrack_capacity;
    m.map_capacity["ztseg_ct_new"] = cfg_.datapath.conntrack_new_capacity;
    m.pending_cgroups = snap.pending_cgroups;
    if (auto p = s_->confirm->pending()) {
        m.confirm_pending = true;
        m.confirm_deadline_unix_ms = p->deadline_unix_ms;
    }
    m.confirm_rollbacks = s_->confirm->rollbacks();
    m.map_capacity["ztseg_policy"] = cfg_.datapath.policy_capacity;
    m.map_capacity["ztseg_endpoints"] = cfg_.datapath.endpoint_capacity;
    if (snap.state->policy) {
        m.map_entries["ztseg_endpoints"] = snap.state->endpoints.size();
    }
    addRuleHits(rules(), cfg_.metrics_per_rule, m);
    return m;
}

Health Daemon::health() {
    Health h;
    if (!ready_) {
        return h;  // Starting
    }
    const EnforcementSnapshot snap = s_->enforcement->snapshot();
    h.generation = snap.active_generation;
    if (snap.active_generation == 0) {
        h.reasons.push_back("no policy applied: only sources without an identity are dropped");
    }
    if (!snap.raw_socket_guard) {
        h.reasons.push_back("raw sockets of enforced workloads: " + snap.raw_sockets);
    }
    if (!cfg_.cgroup_only && snap.interfaces.empty()) {
        h.reasons.push_back(
            "XDP is attached to no interface (none matches the interfaces "
            "patterns): what the kernel answers itself is not judged");
    }
    if (s_->controller && !s_->controller->connected()) {
        h.reasons.push_back("controller " + cfg_.controller.address + " not connected");
    }
    if (uint64_t lost = s_->sink->lost(); lost != 0) {
        h.reasons.push_back("flow log: " + std::to_string(lost) + " events could not be written");
    }
    h.state = h.reasons.empty() ? Health::State::Ready : Health::State::Degraded;
    return h;
}

}  // namespace ztseg::agent
