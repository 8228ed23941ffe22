#include "agent/daemon.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "agent/bundle_gate.hpp"
#include "agent/confirm_window.hpp"
#include "agent/controller_link.hpp"
#include "agent/enforcement.hpp"
#include "agent/etcd_link.hpp"
#include "agent/flow_pipeline.hpp"
#include "agent/metrics.hpp"
#include "agent/preflight.hpp"
#include "agent/rule_report.hpp"
#include "agent/systemd_notify.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/revocation.hpp"
#include "common/signals.hpp"
#include "common/unique_fd.hpp"
#include "common/version.hpp"
#include "datapath/event_reader.hpp"
#include "flows/enrich.hpp"
#include "flows/jsonl_sink.hpp"
#include "model/names.hpp"
#include "policy/bundle.hpp"
#include "policy/signing.hpp"

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

    std::unique_ptr<ApiServer> api;              // late: stopped before everything it calls
    std::unique_ptr<ControllerLink> controller;  // fleet management (either one)
    std::unique_ptr<EtcdLink> etcd;
};

Daemon::Daemon(AgentConfig cfg, std::string config_path)
    : cfg_(std::move(cfg)), config_path_(std::move(config_path)) {}

Daemon::~Daemon() = default;

uint64_t Daemon::generation() const {
    return s_->enforcement->state()->generation();
}

uint16_t Daemon::metricsPort() const {
    return s_->metrics ? s_->metrics->port() : 0;
}

void Daemon::uninstall(const AgentConfig& cfg) {
    Enforcement::uninstall(cfg);
    spdlog::info("ztseg removed: every program detached, every pin under {} deleted",
                 cfg.datapath.pin_dir);
}

void Daemon::start(bool serve_api) {
    // Everything that can be checked without the kernel is checked first: a
    // start refused here leaves the host exactly as it was.
    Preflight checked = preflight(cfg_);
    // Signals are read from a signalfd by the loop; block them before any
    // thread starts so no thread takes them the default way.
    UniqueFd signals = daemonSignals();
    s_ = std::make_unique<State>(cfg_.state_dir);
    s_->trusted.store(
        std::make_shared<const std::vector<policy::Ed25519Key>>(std::move(checked.trusted_keys)));
    s_->signals = std::move(signals);
    s_->revocation = std::move(checked.revocation);
    // Bound before the kernel is touched: a taken port is a start refused with
    // nothing changed. /metrics answers 503 and /healthz "starting" until ready.
    if (!cfg_.metrics_listen.empty()) {
        auto [host, port] = parseListenAddress("metrics.listen", cfg_.metrics_listen);
        s_->metrics = std::make_unique<MetricsServer>(
            host, port, [this] { return metrics(); }, [this] { return health(); });
    }

    s_->enricher = std::make_unique<flows::Enricher>(
        std::make_shared<const policy::CompiledPolicy>(), cfg_.host_name);
    // Flow records name what is enforced: follow every change.
    s_->enforcement =
        std::make_unique<Enforcement>(cfg_, s_->store, [this](const EnforcedState& st) {
            if (st.policy) {
                s_->enricher->setPolicy(st.policy);
            }
            flows::Enricher::WorkloadNames names;
            for (const auto& [id, m] : st.endpoints) {
                names[id] = m.workload;
            }
            s_->enricher->setWorkloadNames(std::move(names));
        });
    // Datapath: adopt what a previous run left (enforcement never paused), else load.
    const bool loaded = s_->enforcement->open();
    try {
        establish(serve_api);
    } catch (const std::exception& e) {
        // Leave the host as this start found it: what it loaded goes; an
        // adopted datapath was not changed before the steps that can fail.
        teardownForFailedStart();
        if (loaded) {
            Enforcement::uninstall(cfg_);
            spdlog::error("start failed after loading the datapath: removed what it loaded");
        } else {
            spdlog::error("start failed: the adopted datapath keeps enforcing as before");
        }
        throw;
    }
    EnforcementSnapshot now = s_->enforcement->snapshot();
    {
        std::lock_guard lock(ready_mu_);
        ready_ = true;
    }
    ready_cv_.notify_all();
    const std::string line = "generation " + std::to_string(generation()) + ", " +
                             std::to_string(now.state->endpoints.size()) + " workload cgroups, " +
                             std::to_string(now.interfaces.size()) + " interfaces";
    spdlog::info("ztsegd running: {}", line);
    s_->notifier.ready("enforcing " + line);
}

// The steps of start() after the datapath is open, in the order that keeps an
// adopted datapath unchanged until the last step that can fail on its own
// (the sink and the API) has succeeded.
void Daemon::establish(bool serve_api) {
    s_->sink = std::make_unique<flows::JsonlSink>(flows::JsonlSink::Options{
        cfg_.flow_file, cfg_.flow_file_max_bytes, cfg_.flow_file_max_files});
    if (serve_api) {
        // API calls wait for ready_ (awaitReady): a bundle applied through
        // the API cannot race the one recorded in the state dir.
        s_->api = std::make_unique<ApiServer>(
            ApiOptions{cfg_.unix_socket, cfg_.tcp_listen, cfg_.tls.cert, cfg_.tls.key, cfg_.tls.ca,
                       cfg_.fleet, s_->revocation},
            *this, s_->hub);
    }

    // The policy this host last applied, then a newer one from the config.
    if (auto bytes = s_->store.currentBundle()) {
        // Recorded after admission (as received, envelope included); state_dir is root's.
        s_->enforcement->apply(
            [&] {
                return Enforcement::Admitted{
                    std::make_shared<const policy::CompiledPolicy>(
                        policy::parseBundle(policy::openEnvelope(*bytes).bundle)),
                    *bytes};
            },
            /*record=*/false);
    }
    // A window left open by the previous run: its deadline still holds.
    s_->confirm = std::make_unique<ConfirmWindow>(s_->store, *s_->enforcement);
    s_->confirm->resume();
    if (!cfg_.bundle.empty()) {
        try {
            applyAdmitted(readFile(cfg_.bundle), 0);
        } catch (const Error& e) {
            spdlog::warn("bundle {} not applied: {}", cfg_.bundle, e.what());
        }
    }

    // Attach: cgroup hooks on the workload hierarchy, XDP on matching interfaces.
    s_->enforcement->attach();

    s_->flow_pipeline = std::make_unique<FlowPipeline>(*s_->enricher, *s_->sink, s_->hub);
    s_->reader = std::make_unique<EventReader>(
        s_->enforcement->eventsFd(),
        [this](const ztseg_flow_event& e) { s_->flow_pipeline->onEvent(e); },
        [this] { s_->flow_pipeline->onDrained(); });

    if (serve_api) {
        if (!cfg_.controller.address.empty()) {
            s_->controller = std::make_unique<ControllerLink>(cfg_, s_->revocation, *this, s_->hub);
        }
        if (!cfg_.etcd.endpoints.empty()) {
            s_->etcd = std::make_unique<EtcdLink>(cfg_, *this);
        }
    }
}

// Stops what establish() started, last first, before the datapath goes.
void Daemon::teardownForFailedStart() {
    {
        std::lock_guard lock(ready_mu_);
        start_failed_ = true;
    }
    ready_cv_.notify_all();
    s_->confirm.reset();  // its timer must not switch what is being removed
    s_->etcd.reset();
    s_->controller.reset();
    s_->api.reset();
    s_->reader.reset();
    s_->flow_pipeline.reset();
    s_->metrics.reset();
}

uint64_t Daemon::applyBundle(const std::string& bytes, uint32_t confirm_within_ms) {
    awaitReady();
    return applyAdmitted(bytes, confirm_within_ms);
}

uint64_t Daemon::applyAdmitted(const std::string& bytes, uint32_t confirm_within_ms) {
    return s_->enforcement->apply(
        [&] {
            AdmissionPolicy rules{cfg_.fleet, int64_t(std::time(nullptr)), *s_->trusted.load()};
            std::string signer, record;
            try {
                auto cp = std::make_shared<const policy::CompiledPolicy>(
                    admitBundle(bytes, rules, s_->store, &signer, &record));
                if (!signer.empty()) {
                    spdlog::info("{} generation {} signed by {}",
                                 policy::isSignedDelta(bytes) ? "delta to" : "bundle",
                                 cp->generation, signer);
                }
                return Enforcement::Admitted{cp, std::move(record)};
            } catch (const Error& e) {
                spdlog::warn("{} refused, enforcement unchanged: {}",
                             policy::isSignedDelta(bytes) ? "delta" : "bundle", e.what());
                throw;
            }
        },
        /*record=*/true, s_->confirm->hooks(confirm_within_ms));
}

uint64_t Daemon::rollback() {
    awaitReady();
    return s_->enforcement->rollback(s_->confirm->hooks(0));
}

uint64_t Daemon::confirm(uint64_t generation) {
    awaitReady();
    uint64_t g = 0;
    s_->enforcement->serialized([&] { g = s_->confirm->confirm(generation); });
    return g;
}

void Daemon::awaitReady() {
    constexpr auto kStartBudget = std::chrono::seconds(60);
    std::unique_lock lock(ready_mu_);
    if (!ready_cv_.wait_for(lock, kStartBudget, [this] { return ready_ || start_failed_; })) {
        throw Error(
            "ztsegd is still starting (enforcement is being established) after 60 s: "
            "try again");
    }
    if (start_failed_) {
        throw Error("ztsegd failed to start");
    }
}

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

void Daemon::reload() {
    if (config_path_.empty()) {
        return;
    }
    s_->notifier.reloading();
    AgentConfig next;
    try {
        next = loadConfig(config_path_);
    } catch (const Error& e) {
        spdlog::error("reload: {} (nothing changed)", e.what());
        return;
    }
    // Revocation first and on its own: a bad CRL keeps the previous list, and
    // never stops the rest of the reload (nor the other way round).
    try {
        // Verified against the CA the running TLS stack uses.
        auto r = Revocation::load(next.revoked, cfg_.tls.ca);
        s_->revocation = r;
        if (s_->api) {
            s_->api->setRevocation(r);
        }
        if (s_->controller) {
            s_->controller->setRevocation(r);
        }
        spdlog::info("reload: peer certificates refused: {}", r->describe());
    } catch (const Error& e) {
        spdlog::error("reload: {}; keeping the previous revocation ({})", e.what(),
                      s_->revocation->describe());
    }
    try {
        s_->trusted.store(std::make_shared<const std::vector<policy::Ed25519Key>>(
            loadTrustedKeys(next.trusted_keys)));  // key rotation without a restart
        if (!next.bundle.empty()) {
            applyBundle(readFile(next.bundle));
        }
        cfg_.bundle = next.bundle;
        spdlog::info("configuration reloaded from {}", config_path_);
    } catch (const Error& e) {
        spdlog::error("reload: {} (enforcement unchanged)", e.what());
    }
    s_->notifier.ready("enforcing generation " + std::to_string(generation()));
}

void Daemon::run() {
    UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
    if (!ep) {
        throwErrno("epoll_create1", errno);
    }
    auto add = [&](int fd, uint32_t tag) {
        epoll_event e{};
        e.events = EPOLLIN;
        e.data.u32 = tag;
        if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &e) != 0) {
            throwErrno("epoll_ctl", errno);
        }
    };
    enum : uint32_t { kSignal, kEvents, kLinks, kCgroups };
    add(s_->signals.get(), kSignal);
    add(s_->reader->epollFd(), kEvents);
    add(s_->enforcement->linksFd(), kLinks);
    add(s_->enforcement->cgroupsFd(), kCgroups);
    while (!stop_) {
        epoll_event evs[8];
        int n = epoll_wait(ep.get(), evs, 8, 500);
        if (n < 0 && errno != EINTR) {
            throwErrno("epoll_wait", errno);
        }
        for (int i = 0; i < n; ++i) {
            switch (evs[i].data.u32) {
                case kSignal: {
                    signalfd_siginfo si{};
                    while (::read(s_->signals.get(), &si, sizeof(si)) == sizeof(si)) {
                        if (si.ssi_signo == SIGHUP) {
                            reload();
                        } else {
                            spdlog::info("signal {}: stopping, enforcement stays in place",
                                         strsignal(int(si.ssi_signo)));
                            stop_ = true;
                        }
                    }
                    break;
                }
                case kEvents:
                    s_->reader->drain();
                    break;
                case kLinks:
                    s_->enforcement->syncInterfaces();
                    break;
                case kCgroups:
                    s_->enforcement->syncCgroups();
                    break;
            }
        }
        s_->reader->drain();
        s_->notifier.watchdogTick();
        if (n == 0) {  // idle: pending cgroups whose events were missed
            s_->enforcement->settleIdle();
        }
    }
    s_->notifier.stopping();
    s_->sink->flush();
}

}  // namespace ztseg::agent
