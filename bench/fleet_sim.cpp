#include "fleet_sim.hpp"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "fleet/fleet_lab.hpp"
#include "interrupt.hpp"
#include "synthetic_policy.hpp"
#include "wire_meter.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace ztseg::bench {
namespace {

// A TCP port nobody listens on now (and the next one, for etcd's peer URL).
uint16_t freePortPair() {
    for (int attempt = 0; attempt < 50; ++attempt) {
        UniqueFd a(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(sa);
        if (::bind(a.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0 ||
            ::getsockname(a.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
            continue;
        }
        uint16_t port = ntohs(sa.sin_port);
        if (port >= 65535)
            continue;
        UniqueFd b(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sa.sin_port = htons(uint16_t(port + 1));
        if (::bind(b.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) {
            return port;
        }
    }
    throw Error("no free pair of TCP ports on 127.0.0.1");
}

// Every agent holds a connection or two, the controller one per agent.
void raiseFileLimit(int agents) {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t want = std::max<rlim_t>(rl.rlim_cur, rlim_t(agents) * 8 + 4096);
    if (want > rl.rlim_max) {
        rl.rlim_max = want;  // root may raise the hard limit
    }
    rl.rlim_cur = want;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        spdlog::warn("fleet sim: could not raise RLIMIT_NOFILE to {}", want);
    }
}

std::string agentName(int i) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "sim%05d", i);
    return buf;
}

double msBetween(SimClock::time_point a, SimClock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

const char* modeName(FleetMode m) {
    return m == FleetMode::Controller ? "controller" : "etcd";
}

double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty())
        return 0;
    size_t rank = size_t(std::ceil(p / 100.0 * double(sorted.size())));
    return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

FleetSim::FleetSim(FleetSimOptions opts) : opts_(opts) {
    WireMeter::instance();  // its interceptor must precede every channel
    raiseFileLimit(opts_.agents);
    lab_ = std::make_unique<test::FleetLab>(0);
    lab_->service_ns = nullptr;
    lab_->controller_port = freePortPair();
    lab_->etcd_port = freePortPair();
    lab_->etcd_host_timeout_ms = 600'000;
    // One wave after a single canary, no soak: the time measured is distribution.
    lab_->rollout_yaml =
        "rollout:\n  canary_percent: 1\n  waves: [100]\n  ack_timeout_ms: 600000\n"
        "  soak_ms: 0\n";
    state_root_ = "/dev/shm/" + lab_->tag + "-sim";
    fs::create_directories(state_root_);

    // Client certificates, one at a time (`openssl x509 -CAcreateserial`
    // shares the CA's serial file).
    for (int i = 0; i < opts_.agents; ++i) lab_->addHostCert(agentName(i));

    source_ = syntheticPolicy(opts_.rules);
    writePolicy(source_);
    auto mode =
        opts_.mode == FleetMode::Etcd ? test::FleetLab::Mode::Etcd : test::FleetLab::Mode::Direct;
    lab_->writeControllerConfig(mode, {"A"});
    if (opts_.mode == FleetMode::Etcd) {
        lab_->startEtcd();
    }
    lab_->startController();
    if (!test::FleetLab::waitFor(
            [&] {
                checkInterrupted();
                return lab_->fleetStatus().stable_generation() != 0;
            },
            opts_.converge_timeout)) {
        throw Error("fleet sim: the controller published no generation; see " +
                    (lab_->dir / "controller.log").string());
    }
    uint64_t first = lab_->fleetStatus().stable_generation();

    std::vector<policy::Ed25519Key> trusted{
        policy::Ed25519Key::loadTrusted(lab_->keyPath("A", ".pub")),
        policy::Ed25519Key::loadTrusted(lab_->keyPath("B", ".pub"))};
    std::map<std::string, double> etcd_before;
    if (opts_.mode == FleetMode::Etcd) {
        etcd_before = scrapeMetrics("127.0.0.1", lab_->etcd_port);
    }
    auto start = SimClock::now();
    for (int i = 0; i < opts_.agents; ++i) {
        SimAgentOptions o;
        o.name = agentName(i);
        o.fleet = test::kFleetName;
        o.state_dir = state_root_ + "/" + o.name;
        o.trusted_keys = trusted;
        o.tls = {lab_->pki.cert(o.name), lab_->pki.key(o.name), lab_->pki.cert("ca")};
        if (opts_.mode == FleetMode::Etcd) {
            o.etcd_endpoints = {lab_->etcdEndpoint()};
            o.etcd_prefix = "/ztseg/" + test::kFleetName;
        } else {
            o.controller_address = lab_->controllerAddress();
            o.server_name = "controller.lab";
        }
        checkInterrupted();
        agents_.push_back(std::make_unique<SimAgent>(std::move(o)));
        agents_.back()->connect();
    }
    if (!waitAll(first, opts_.converge_timeout)) {
        throw Error("fleet sim: not every agent reached generation " + std::to_string(first));
    }
    initial_ms_ = msBetween(start, SimClock::now());
    if (opts_.mode == FleetMode::Etcd) {
        for (const auto& [name, v] : scrapeMetrics("127.0.0.1", lab_->etcd_port)) {
            initial_etcd_delta_[name] = v - etcd_before[name];
        }
    }
    spdlog::info("fleet sim: {} agents ({} mode) at generation {} after {:.0f} ms", opts_.agents,
                 modeName(opts_.mode), first, initial_ms_);
}

FleetSim::~FleetSim() {
    agents_.clear();  // disconnect first: the controller and etcd are still up
    lab_.reset();
    std::error_code ec;
    fs::remove_all(state_root_, ec);
}

policy::Ed25519Key FleetSim::signingKey() const {
    return policy::Ed25519Key::load(lab_->keyPath("A", ".key"));
}

void FleetSim::writePolicy(const std::vector<policy::SourceText>& files) {
    for (const auto& f : files) {
        fs::path p = lab_->dir / "policy" / f.name;
        fs::create_directories(p.parent_path());
        std::ofstream out(p.string() + ".tmp");
        out << f.text;
        out.close();
        fs::rename(p.string() + ".tmp", p);  // the controller never reads half a file
    }
}

bool FleetSim::waitAll(uint64_t generation, std::chrono::seconds timeout) const {
    return test::FleetLab::waitFor(
        [&] {
            checkInterrupted();  // Ctrl-C: the destructors stop etcd, the controller, the netns
            return std::all_of(agents_.begin(), agents_.end(),
                               [&](const auto& a) { return a->generation() >= generation; });
        },
        timeout);
}

PushResult FleetSim::pushOneRuleChange() {
    PushResult r;
    r.agents = int(agents_.size());
    std::map<std::string, WireMeter::Count> wire_before;
    uint64_t admitted_before = 0, refusals_before = 0;
    for (const auto& a : agents_) {
        wire_before[a->name()] = WireMeter::instance().received(a->name());
        admitted_before += a->bytesAdmitted();
        refusals_before += a->refusals();
    }
    std::map<std::string, double> etcd_before;
    if (opts_.mode == FleetMode::Etcd) {
        etcd_before = scrapeMetrics("127.0.0.1", lab_->etcd_port);
    }
    r.controller_before = procStats(lab_->controllerPid());

    writePolicy(withOneRuleChanged(source_, next_port_++));
    auto t0 = SimClock::now();
    v1::ReloadReply reply;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + opts_.converge_timeout);
    grpc::Status st = lab_->controller()->Reload(&ctx, {}, &reply);
    r.reload_ms = msBetween(t0, SimClock::now());
    if (!st.ok()) {
        throw Error("fleet sim: Reload: " + st.error_message());
    }
    if (!reply.refused().empty() || !reply.changed()) {
        throw Error("fleet sim: the controller did not roll out the change: " +
                    (reply.refused().empty() ? std::string("source unchanged") : reply.refused()));
    }
    r.generation = reply.generation();
    r.rollout_state = reply.rollout().state();
    r.rollout_reason = reply.rollout().reason();
    waitAll(r.generation, opts_.converge_timeout);
    r.controller_after = procStats(lab_->controllerPid());
    if (opts_.mode == FleetMode::Etcd) {
        for (const auto& [name, v] : scrapeMetrics("127.0.0.1", lab_->etcd_port)) {
            r.etcd_delta[name] = v - etcd_before[name];
            if (name == "etcd_mvcc_db_total_size_in_bytes") {
                r.etcd_db_mib = v / (1024.0 * 1024.0);
            }
        }
        r.etcd_after = procStats(lab_->etcdPid());
    }
    for (const auto& a : agents_) {
        if (auto at = a->arrival(r.generation)) {
            r.received_ms.push_back(msBetween(t0, at->received));
            r.admitted_ms.push_back(msBetween(t0, at->admitted));
            r.admission_ms.push_back(at->admission_ms);
            r.own_cpu_ms.push_back(r.received_ms.back() + at->admission_ms);
        }
        WireMeter::Count c = WireMeter::instance().received(a->name());
        r.streams += c.streams - wire_before[a->name()].streams;
        r.wire_messages += c.messages - wire_before[a->name()].messages;
        r.wire_bytes += c.bytes - wire_before[a->name()].bytes;
        r.admitted_bytes += a->bytesAdmitted();
        r.refusals += a->refusals();
    }
    r.admitted_bytes -= admitted_before;
    r.refusals -= refusals_before;
    for (auto* v : {&r.received_ms, &r.admitted_ms, &r.admission_ms, &r.own_cpu_ms}) {
        std::sort(v->begin(), v->end());
    }
    r.reached = int(r.admitted_ms.size());
    return r;
}

}  // namespace ztseg::bench
