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
#include "agent/cgroup_preclassify.hpp"
#include "agent/cgroup_watcher.hpp"
#include "agent/controller_link.hpp"
#include "agent/etcd_link.hpp"
#include "agent/flow_pipeline.hpp"
#include "agent/metrics.hpp"
#include "agent/xdp_interfaces.hpp"
#include "common/cgroup.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/signals.hpp"
#include "common/unique_fd.hpp"
#include "datapath/datapath.hpp"
#include "datapath/event_reader.hpp"
#include "flows/enrich.hpp"
#include "flows/jsonl_sink.hpp"
#include "model/names.hpp"
#include "policy/bundle.hpp"
#include "policy/signing.hpp"

namespace ztseg::agent {
namespace {

std::vector<WorkloadPattern> patternsOf(const policy::CompiledPolicy& cp) {
    std::vector<WorkloadPattern> out;
    for (const auto& w : cp.workloads) {
        if (!w.cgroup.empty() || !w.systemd_unit.empty()) {
            out.push_back({w.name, w.cgroup, w.systemd_unit});
        }
    }
    return out;
}

std::map<std::string, WorkloadClass> classesOf(const policy::CompiledPolicy& cp) {
    std::map<std::string, WorkloadClass> out;
    for (const auto& w : cp.workloads) {
        out[w.name] = WorkloadClass{w.identity, w.mode};
    }
    return out;
}

std::vector<policy::Ed25519Key> loadTrustedKeys(const std::vector<std::string>& paths) {
    std::vector<policy::Ed25519Key> keys;
    std::string ids;
    for (const auto& p : paths) {
        keys.push_back(policy::Ed25519Key::load(p));
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

}  // namespace

struct Daemon::State {
    explicit State(const std::string& state_dir) : store(state_dir) {}

    std::optional<Datapath> dp;
    GenerationStore store;
    std::vector<policy::Ed25519Key> trusted;  // guarded by dp_mu
    std::shared_ptr<const policy::CompiledPolicy> policy;
    std::unique_ptr<XdpInterfaces> xdp;  // XDP on the configured interfaces
    std::unique_ptr<CgroupWatcher> cgroups;
    std::unique_ptr<flows::Enricher> enricher;
    std::unique_ptr<flows::JsonlSink> sink;
    FlowHub hub;                                  // enriched flows for the API's Flows streams
    std::unique_ptr<FlowPipeline> flow_pipeline;  // ring buffer -> flow log + hub
    std::unique_ptr<EventReader> reader;
    std::unique_ptr<MetricsServer> metrics;
    UniqueFd signals;
    std::map<uint64_t, CgroupMatch> endpoints;  // local workload cgroups by id

    // Serializes every datapath change: the event loop and API calls.
    std::mutex dp_mu;
    // For rollback: the datapath's previous generation, if this process applied it.
    std::shared_ptr<const policy::CompiledPolicy> previous;
    std::string current_bytes, previous_bytes;

    std::mutex mu;  // guards what the metrics and API threads read below
    std::vector<double> apply_seconds;
    uint64_t apply_failures = 0;
    uint64_t generation = 0;

    std::unique_ptr<ApiServer> api;              // late: stopped before everything it calls
    std::unique_ptr<ControllerLink> controller;  // fleet management (either one)
    std::unique_ptr<EtcdLink> etcd;
};

Daemon::Daemon(AgentConfig cfg, std::string config_path)
    : cfg_(std::move(cfg)), config_path_(std::move(config_path)) {}

Daemon::~Daemon() = default;

uint64_t Daemon::generation() const {
    std::lock_guard lock(s_->mu);
    return s_->generation;
}

uint16_t Daemon::metricsPort() const {
    return s_->metrics ? s_->metrics->port() : 0;
}

void Daemon::uninstall(const AgentConfig& cfg) {
    Datapath::uninstall(cfg.datapath.pin_dir);
    spdlog::info("ztseg removed: every program detached, every pin under {} deleted",
                 cfg.datapath.pin_dir);
}

void Daemon::start(bool serve_api) {
    // Signals are read from a signalfd by the loop; block them before any
    // thread starts so no thread takes them the default way.
    UniqueFd signals = daemonSignals();
    s_ = std::make_unique<State>(cfg_.state_dir);
    s_->trusted = loadTrustedKeys(cfg_.trusted_keys);
    s_->signals = std::move(signals);

    // Datapath: adopt what a previous run left (enforcement never paused), else load.
    if (Datapath::isPinned(cfg_.datapath.pin_dir)) {
        s_->dp.emplace(Datapath::adopt(cfg_.datapath));
    } else {
        s_->dp.emplace(Datapath::create(cfg_.datapath));
    }
    s_->dp->setDropEventInterval(cfg_.datapath.drop_event_interval_ns);

    std::string cg_root = cfg_.cgroup_root.empty() ? cgroup2MountPoint() : cfg_.cgroup_root;
    s_->cgroups = std::make_unique<CgroupWatcher>(cg_root, std::vector<WorkloadPattern>{});
    s_->enricher = std::make_unique<flows::Enricher>(
        std::make_shared<const policy::CompiledPolicy>(), cfg_.host_name);
    s_->sink = std::make_unique<flows::JsonlSink>(flows::JsonlSink::Options{
        cfg_.flow_file, cfg_.flow_file_max_bytes, cfg_.flow_file_max_files});

    // The policy this host last applied, then a newer one from the config.
    if (auto bytes = s_->store.currentBundle()) {
        // Recorded after admission (as received, envelope included); state_dir is root's.
        auto cp = std::make_shared<const policy::CompiledPolicy>(
            policy::parseBundle(policy::openEnvelope(*bytes).bundle));
        applyCompiled(cp, *bytes, /*record=*/false);
    }
    if (!cfg_.bundle.empty()) {
        try {
            applyBundle(readFile(cfg_.bundle));
        } catch (const Error& e) {
            spdlog::warn("bundle {} not applied: {}", cfg_.bundle, e.what());
        }
    }

    // Attach: cgroup hooks on the workload hierarchy, XDP on matching interfaces.
    uint64_t root_id = cgroupIdOf(cg_root);
    auto attached = s_->dp->attachedCgroups();
    if (std::find(attached.begin(), attached.end(), root_id) == attached.end()) {
        s_->dp->attachCgroup(cg_root);
    }
    if (cfg_.cgroup_only) {
        spdlog::warn(
            "cgroup_only: XDP is not attached; traffic the kernel answers itself on this host's "
            "interfaces (host services, ICMP, anything outside workload cgroups) is not judged");
    }
    s_->xdp = std::make_unique<XdpInterfaces>(*s_->dp, cfg_.interfaces, cfg_.xdp_mode);
    s_->xdp->start();

    s_->flow_pipeline = std::make_unique<FlowPipeline>(*s_->enricher, *s_->sink, s_->hub);
    s_->reader = std::make_unique<EventReader>(
        s_->dp->eventsFd(), [this](const ztseg_flow_event& e) { s_->flow_pipeline->onEvent(e); },
        [this] { s_->flow_pipeline->onDrained(); });

    if (!cfg_.metrics_listen.empty()) {
        auto [host, port] = splitHostPort(cfg_.metrics_listen);
        s_->metrics = std::make_unique<MetricsServer>(host, port, [this] {
            MetricsSnapshot m;
            m.datapath = s_->dp->counters();
            std::lock_guard lock(s_->mu);
            m.policy_generation = s_->generation;
            m.apply_durations_seconds = s_->apply_seconds;
            m.apply_failures = s_->apply_failures;
            m.attached_interfaces = s_->xdp->attached();
            m.workloads = s_->endpoints.size();
            m.raw_socket_guard = s_->dp->rawSocketGuard();
            m.flow_events_by_sink["file"] = s_->sink->written();
            m.flow_events_lost_by_stage["ringbuf"] = m.datapath.events[ZTSEG_EVSTAT_LOST_RINGBUF];
            m.flow_events_lost_by_stage["rate_limited"] =
                m.datapath.events[ZTSEG_EVSTAT_RATE_LIMITED];
            m.flow_events_lost_by_stage["sink_file"] = s_->sink->lost();
            m.flow_events_lost_by_stage["grpc_stream"] = s_->hub.lost();
            m.conntrack = s_->dp->conntrackUsage();
            m.map_entries["ztseg_ct"] = m.conntrack.assured;
            m.map_entries["ztseg_ct_new"] = m.conntrack.fresh;
            m.map_capacity["ztseg_ct"] = cfg_.datapath.conntrack_capacity;
            m.map_capacity["ztseg_ct_new"] = cfg_.datapath.conntrack_new_capacity;
            m.pending_cgroups = s_->dp->pendingCgroups().size();
            m.map_capacity["ztseg_policy"] = cfg_.datapath.policy_capacity;
            m.map_capacity["ztseg_endpoints"] = cfg_.datapath.endpoint_capacity;
            if (s_->policy) {
                m.map_entries["ztseg_endpoints"] = s_->endpoints.size();
            }
            return m;
        });
    }
    if (serve_api) {
        s_->api =
            std::make_unique<ApiServer>(ApiOptions{cfg_.unix_socket, cfg_.tcp_listen, cfg_.tls.cert,
                                                   cfg_.tls.key, cfg_.tls.ca, cfg_.fleet},
                                        *this, s_->hub);
        if (!cfg_.controller.address.empty()) {
            s_->controller = std::make_unique<ControllerLink>(cfg_, *this, s_->hub);
        }
        if (!cfg_.etcd.endpoints.empty()) {
            s_->etcd = std::make_unique<EtcdLink>(cfg_, *this);
        }
    }
    spdlog::info("ztsegd running: generation {}, {} workload cgroups, {} interfaces", generation(),
                 s_->endpoints.size(), s_->xdp->attached().size());
}

uint64_t Daemon::applyBundle(const std::string& bytes) {
    std::lock_guard op(s_->dp_mu);
    AdmissionPolicy rules{cfg_.fleet, int64_t(std::time(nullptr)), s_->trusted};
    std::shared_ptr<const policy::CompiledPolicy> cp;
    std::string signer;
    try {
        cp = std::make_shared<const policy::CompiledPolicy>(
            admitBundle(bytes, rules, s_->store, &signer));
    } catch (const Error& e) {
        spdlog::warn("bundle refused, enforcement unchanged: {}", e.what());
        std::lock_guard lock(s_->mu);
        ++s_->apply_failures;
        throw;
    }
    if (!signer.empty()) {
        spdlog::info("bundle generation {} signed by {}", cp->generation, signer);
    }
    applyCompiled(cp, bytes, /*record=*/true);
    return cp->generation;
}

void Daemon::applyCompiled(std::shared_ptr<const policy::CompiledPolicy> cp,
                           const std::string& bytes, bool record) {
    auto t0 = std::chrono::steady_clock::now();
    std::map<uint64_t, CgroupMatch> endpoints = scanEndpoints(*cp);
    std::map<std::string, IdentityId> ids;
    for (const auto& w : cp->workloads) {
        ids[w.name] = w.identity;
    }
    std::vector<Endpoint> eps;
    for (const auto& [id, m] : endpoints) {
        eps.push_back({id, ids.at(m.workload)});
    }
    try {
        s_->dp->apply(cp->toGeneration(eps));
    } catch (const Error&) {
        std::lock_guard lock(s_->mu);
        ++s_->apply_failures;
        throw;
    }
    if (record) {
        s_->store.recordApplied(cp->generation, bytes);
    }
    {
        std::lock_guard lock(s_->mu);
        s_->previous = s_->policy;
    }
    s_->previous_bytes = std::exchange(s_->current_bytes, bytes);
    usePolicy(cp, std::move(endpoints));
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::lock_guard lock(s_->mu);
    s_->apply_seconds.push_back(secs);
    const ApplyStats& st = s_->dp->lastApply();
    spdlog::info(
        "applied generation {} in {:.1f} ms ({} rules, {} local workload cgroups; {}, {} map "
        "writes)",
        cp->generation, secs * 1000, cp->rules.size(), eps.size(),
        st.incremental ? "incremental" : "full build", st.map_writes);
}

// Which local cgroups are this policy's workloads.
std::map<uint64_t, CgroupMatch> Daemon::scanEndpoints(const policy::CompiledPolicy& cp) {
    s_->cgroups->setPatterns(patternsOf(cp));
    std::map<uint64_t, CgroupMatch> endpoints;
    for (const CgroupMatch& m : s_->cgroups->scan()) {
        endpoints[m.cgroup_id] = m;
    }
    return endpoints;
}

// `cp` is active in the datapath: enrich flows with it and report it.
void Daemon::usePolicy(std::shared_ptr<const policy::CompiledPolicy> cp,
                       std::map<uint64_t, CgroupMatch> endpoints) {
    s_->enricher->setPolicy(cp);
    flows::Enricher::WorkloadNames names;
    for (const auto& [id, m] : endpoints) {
        names[id] = m.workload;
    }
    s_->enricher->setWorkloadNames(std::move(names));
    {
        std::lock_guard lock(s_->mu);
        s_->policy = cp;
        s_->endpoints = std::move(endpoints);
        s_->generation = cp->generation;
    }
    // New cgroups are judged from mkdir on, by name, until classified here.
    installPreclassifier(*s_->dp, *s_->cgroups, patternsOf(*cp), classesOf(*cp));
    settleCgroups();
}

void Daemon::settleCgroups() {
    std::map<uint64_t, CgroupMatch> classified;
    {
        std::lock_guard lock(s_->mu);
        classified = s_->endpoints;
    }
    settlePending(*s_->dp, *s_->cgroups, classified);
}

uint64_t Daemon::rollback() {
    std::lock_guard op(s_->dp_mu);
    uint64_t prev = s_->dp->previousGeneration();
    if (prev == 0) {
        throw Error("rollback: no previous generation to return to");
    }
    if (!s_->previous || s_->previous->generation != prev) {
        throw Error("rollback: generation " + std::to_string(prev) +
                    " was applied before this ztsegd started; apply its bundle instead");
    }
    auto cp = s_->previous;
    s_->dp->rollback();
    // Workloads that came or went since that generation was active.
    std::map<uint64_t, CgroupMatch> endpoints = scanEndpoints(*cp);
    for (const auto& [id, m] : endpoints) {
        for (const auto& w : cp->workloads) {
            if (w.name == m.workload) {
                s_->dp->upsertEndpoint({id, w.identity}, w.mode, w.raw_sockets);
            }
        }
    }
    std::swap(s_->current_bytes, s_->previous_bytes);
    s_->store.recordCurrent(s_->current_bytes);  // a restart keeps the rollback
    {
        std::lock_guard lock(s_->mu);
        s_->previous = s_->policy;
    }
    usePolicy(cp, std::move(endpoints));
    spdlog::warn("rolled back to generation {} on request", cp->generation);
    return cp->generation;
}

v1::StatusReply Daemon::status() {
    v1::StatusReply r;
    r.set_host(cfg_.host_name);
    r.set_generation(s_->dp->activeGeneration());
    r.set_previous_generation(s_->dp->previousGeneration());
    r.set_highest_generation(s_->store.highest());
    r.set_raw_sockets(s_->dp->rawSocketGuard()
                          ? "confined (" + s_->dp->rawSocketGuardMode() + ")"
                          : "NOT confined: " + s_->dp->rawSocketGuardProblem());
    Counters c = s_->dp->counters();
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
    auto& lost = *r.mutable_events_lost();
    lost["ringbuf"] = c.events[ZTSEG_EVSTAT_LOST_RINGBUF];
    lost["rate_limited"] = c.events[ZTSEG_EVSTAT_RATE_LIMITED];
    lost["sink_file"] = s_->sink->lost();
    lost["grpc_stream"] = s_->hub.lost();
    for (const auto& [name, mode] : s_->xdp->attached()) {
        v1::Interface* i = r.add_interfaces();
        i->set_name(name);
        i->set_mode(mode);
    }
    std::lock_guard lock(s_->mu);
    for (const auto& [id, m] : s_->endpoints) {
        v1::WorkloadEndpoint* e = r.add_endpoints();
        e->set_name(m.workload);
        e->set_cgroup_path(m.path);
        e->set_cgroup_id(id);
        for (const auto& w : s_->policy->workloads) {  // endpoints come from a policy
            if (w.name == m.workload) {
                e->set_identity(w.identity);
                e->set_mode(w.mode == WorkloadMode::Enforce ? "enforce"
                            : w.mode == WorkloadMode::Audit ? "audit"
                                                            : "unmanaged");
            }
        }
    }
    return r;
}

void Daemon::syncEndpoints() {
    std::lock_guard op(s_->dp_mu);
    s_->cgroups->process([this](const CgroupEvent& ev) {
        if (!s_->policy) {
            return;
        }
        const auto& m = ev.match;
        if (ev.kind == CgroupEvent::Disappeared) {
            s_->dp->removeEndpoint(m.cgroup_id);
            std::lock_guard lock(s_->mu);
            s_->endpoints.erase(m.cgroup_id);
            spdlog::info("workload {} left: cgroup {} removed", m.workload, m.path);
            return;
        }
        for (const auto& w : s_->policy->workloads) {
            if (w.name == m.workload) {
                s_->dp->upsertEndpoint({m.cgroup_id, w.identity}, w.mode, w.raw_sockets);
                std::lock_guard lock(s_->mu);
                s_->endpoints[m.cgroup_id] = m;
                spdlog::info("workload {} appeared: cgroup {} (id {})", m.workload, m.path,
                             m.cgroup_id);
            }
        }
        flows::Enricher::WorkloadNames names;
        for (const auto& [id, em] : s_->endpoints) {
            names[id] = em.workload;
        }
        s_->enricher->setWorkloadNames(std::move(names));
    });
    if (s_->policy) {
        settleCgroups();
    }
}

void Daemon::reload() {
    if (config_path_.empty()) {
        return;
    }
    try {
        AgentConfig next = loadConfig(config_path_);
        {
            auto keys = loadTrustedKeys(next.trusted_keys);  // key rotation without a restart
            std::lock_guard op(s_->dp_mu);
            s_->trusted = std::move(keys);
        }
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
    add(s_->xdp->fd(), kLinks);
    add(s_->cgroups->fd(), kCgroups);
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
                case kLinks: {
                    std::lock_guard op(s_->dp_mu);
                    s_->xdp->process();
                    break;
                }
                case kCgroups:
                    syncEndpoints();
                    break;
            }
        }
        s_->reader->drain();
        if (n == 0 && s_->policy) {  // idle: pending cgroups whose events were missed
            std::lock_guard op(s_->dp_mu);
            settleCgroups();
        }
    }
    s_->sink->flush();
}

}  // namespace ztseg::agent
