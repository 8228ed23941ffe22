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
#include "agent/controller_link.hpp"
#include "agent/enforcement.hpp"
#include "agent/etcd_link.hpp"
#include "agent/flow_pipeline.hpp"
#include "agent/metrics.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/revocation.hpp"
#include "common/signals.hpp"
#include "common/unique_fd.hpp"
#include "datapath/event_reader.hpp"
#include "flows/enrich.hpp"
#include "flows/jsonl_sink.hpp"
#include "model/names.hpp"
#include "policy/bundle.hpp"
#include "policy/signing.hpp"

namespace ztseg::agent {
namespace {

std::vector<policy::Ed25519Key> loadTrustedKeys(const std::vector<std::string>& paths) {
    std::vector<policy::Ed25519Key> keys;
    std::string ids;
    for (const auto& p : paths) {
        try {
            keys.push_back(policy::Ed25519Key::loadTrusted(p));
        } catch (const Error& e) {
            throw Error(std::string("trusted_keys: ") + e.what());
        }
        ids += (ids.empty() ? "" : ", ") + keys.back().keyId();
    }
    if (keys.empty()) {
        spdlog::warn(
            "no trusted_keys: standalone mode, bundles are applied WITHOUT signature "
            "checks (only the generation, fleet and expiry are checked)");
    } else {
        spdlog::info("only bundles signed by {} are applied", ids);
    }
    return keys;
}

std::shared_ptr<const Revocation> loadRevocation(const AgentConfig& cfg) {
    auto r = Revocation::load(cfg.revoked, cfg.tls.ca);
    spdlog::info("peer certificates refused: {}", r->describe());
    return r;
}

std::pair<std::string, uint16_t> splitHostPort(const std::string& s) {
    auto colon = s.rfind(':');
    if (colon == std::string::npos) {
        throw Error("listen address '" + s + "': expected host:port");
    }
    int port = std::atoi(s.c_str() + colon + 1);
    if (port < 0 || port > 65535) {
        throw Error("listen address '" + s + "': port out of range");
    }
    return {s.substr(0, colon), uint16_t(port)};
}

// Flow events lost, by the stage that lost them (status and metrics alike).
std::map<std::string, uint64_t> lostByStage(const Counters& c, const flows::JsonlSink& sink,
                                            const FlowHub& hub) {
    return {{"ringbuf", c.events[ZTSEG_EVSTAT_LOST_RINGBUF]},
            {"rate_limited", c.events[ZTSEG_EVSTAT_RATE_LIMITED]},
            {"sink_file", sink.lost()},
            {"grpc_stream", hub.lost()}};
}

std::string_view modeName(WorkloadMode m) {
    return m == WorkloadMode::Enforce ? "enforce"
           : m == WorkloadMode::Audit ? "audit"
                                      : "unmanaged";
}

}  // namespace

struct Daemon::State {
    explicit State(const std::string& state_dir) : store(state_dir) {}

    GenerationStore store;
    // Replaced whole on SIGHUP (key rotation without a restart).
    std::atomic<std::shared_ptr<const std::vector<policy::Ed25519Key>>> trusted;
    std::unique_ptr<Enforcement> enforcement;
    std::unique_ptr<flows::Enricher> enricher;
    std::unique_ptr<flows::JsonlSink> sink;
    FlowHub hub;                                  // enriched flows for the API's Flows streams
    std::unique_ptr<FlowPipeline> flow_pipeline;  // ring buffer -> flow log + hub
    std::unique_ptr<EventReader> reader;
    std::unique_ptr<MetricsServer> metrics;
    UniqueFd signals;
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
    // Signals are read from a signalfd by the loop; block them before any
    // thread starts so no thread takes them the default way.
    UniqueFd signals = daemonSignals();
    s_ = std::make_unique<State>(cfg_.state_dir);
    s_->trusted.store(std::make_shared<const std::vector<policy::Ed25519Key>>(
        loadTrustedKeys(cfg_.trusted_keys)));
    s_->signals = std::move(signals);
    s_->revocation = loadRevocation(cfg_);  // fail closed: a bad CRL stops the start

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
    s_->enforcement->open();
    s_->sink = std::make_unique<flows::JsonlSink>(flows::JsonlSink::Options{
        cfg_.flow_file, cfg_.flow_file_max_bytes, cfg_.flow_file_max_files});

    // The policy this host last applied, then a newer one from the config.
    if (auto bytes = s_->store.currentBundle()) {
        // Recorded after admission (as received, envelope included); state_dir is root's.
        s_->enforcement->apply(
            [&] {
                return std::make_shared<const policy::CompiledPolicy>(
                    policy::parseBundle(policy::openEnvelope(*bytes).bundle));
            },
            *bytes, /*record=*/false);
    }
    if (!cfg_.bundle.empty()) {
        try {
            applyBundle(readFile(cfg_.bundle));
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

    if (!cfg_.metrics_listen.empty()) {
        auto [host, port] = splitHostPort(cfg_.metrics_listen);
        s_->metrics = std::make_unique<MetricsServer>(host, port, [this] { return metrics(); });
    }
    if (serve_api) {
        s_->api = std::make_unique<ApiServer>(
            ApiOptions{cfg_.unix_socket, cfg_.tcp_listen, cfg_.tls.cert, cfg_.tls.key, cfg_.tls.ca,
                       cfg_.fleet, s_->revocation},
            *this, s_->hub);
        if (!cfg_.controller.address.empty()) {
            s_->controller = std::make_unique<ControllerLink>(cfg_, s_->revocation, *this, s_->hub);
        }
        if (!cfg_.etcd.endpoints.empty()) {
            s_->etcd = std::make_unique<EtcdLink>(cfg_, *this);
        }
    }
    EnforcementSnapshot now = s_->enforcement->snapshot();
    spdlog::info("ztsegd running: generation {}, {} workload cgroups, {} interfaces", generation(),
                 now.state->endpoints.size(), now.interfaces.size());
}

uint64_t Daemon::applyBundle(const std::string& bytes) {
    return s_->enforcement->apply(
        [&] {
            AdmissionPolicy rules{cfg_.fleet, int64_t(std::time(nullptr)), *s_->trusted.load()};
            std::string signer;
            try {
                auto cp = std::make_shared<const policy::CompiledPolicy>(
                    admitBundle(bytes, rules, s_->store, &signer));
                if (!signer.empty()) {
                    spdlog::info("bundle generation {} signed by {}", cp->generation, signer);
                }
                return cp;
            } catch (const Error& e) {
                spdlog::warn("bundle refused, enforcement unchanged: {}", e.what());
                throw;
            }
        },
        bytes, /*record=*/true);
}

uint64_t Daemon::rollback() {
    return s_->enforcement->rollback();
}

v1::StatusReply Daemon::status() {
    const EnforcementSnapshot snap = s_->enforcement->snapshot();
    v1::StatusReply r;
    r.set_host(cfg_.host_name);
    r.set_generation(snap.active_generation);
    r.set_previous_generation(snap.previous_generation);
    r.set_highest_generation(s_->store.highest());
    r.set_raw_sockets(snap.raw_sockets);
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
    m.map_capacity["ztseg_policy"] = cfg_.datapath.policy_capacity;
    m.map_capacity["ztseg_endpoints"] = cfg_.datapath.endpoint_capacity;
    if (snap.state->policy) {
        m.map_entries["ztseg_endpoints"] = snap.state->endpoints.size();
    }
    return m;
}

void Daemon::reload() {
    if (config_path_.empty()) {
        return;
    }
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
        if (n == 0) {  // idle: pending cgroups whose events were missed
            s_->enforcement->settleIdle();
        }
    }
    s_->sink->flush();
}

}  // namespace ztseg::agent
