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
#include "agent/daemon_state.hpp"
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
#include "common/unix_time.hpp"
#include "common/version.hpp"
#include "datapath/event_reader.hpp"
#include "flows/enrich.hpp"
#include "flows/jsonl_sink.hpp"
#include "model/names.hpp"
#include "policy/bundle.hpp"
#include "policy/signing.hpp"

namespace ztseg::agent {

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

void Daemon::setWireProof(const WireProofConfig& config, uint64_t epoch) {
    awaitReady();
    v1::WireProofStatus st;
    st.set_epoch(epoch);
    st.set_updated_unix_ms(unixMillis());
    try {
        s_->enforcement->setWireProof(config);
    } catch (const Error& e) {
        std::lock_guard lock(s_->wire_proof_mu);
        s_->wire_proof.set_error(e.what());  // the keys in force stay, and so does their status
        throw;
    }
    size_t addresses = 0;
    for (const WirePeer& p : config.peers) addresses += p.addresses.size();
    st.set_peers(uint32_t(config.peers.size()));
    st.set_addresses(uint32_t(addresses));
    std::lock_guard lock(s_->wire_proof_mu);
    s_->wire_proof = st;
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
