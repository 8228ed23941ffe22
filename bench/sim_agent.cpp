#include "sim_agent.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <thread>

#include "agent/controller_link.hpp"
#include "agent/etcd_link.hpp"
#include "common/error.hpp"
#include "common/unix_time.hpp"
#include "shared/flow_hub.hpp"

namespace ztseg::bench {
namespace {

// A counting semaphore whose size is set at run time.
class AdmissionSlots {
  public:
    void resize(int n) {
        std::lock_guard lock(mu_);
        free_ += n - size_;
        size_ = n;
        cv_.notify_all();
    }
    void acquire() {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return free_ > 0; });
        --free_;
    }
    void release() {
        {
            std::lock_guard lock(mu_);
            ++free_;
        }
        cv_.notify_one();
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    int size_ = std::max(1, int(std::thread::hardware_concurrency()) - 1);
    int free_ = size_;
};

AdmissionSlots& slots() {
    static AdmissionSlots s;
    return s;
}

struct SlotGuard {
    SlotGuard() { slots().acquire(); }
    ~SlotGuard() { slots().release(); }
    SlotGuard(const SlotGuard&) = delete;
    SlotGuard& operator=(const SlotGuard&) = delete;
};

}  // namespace

void SimAgent::setConcurrentAdmissions(int n) {
    slots().resize(std::max(1, n));
}

SimAgent::SimAgent(SimAgentOptions opts) : opts_(std::move(opts)), store_(opts_.state_dir) {
    cfg_.host_name = opts_.name;
    cfg_.fleet = opts_.fleet;
    cfg_.tls = opts_.tls;
    cfg_.controller.address = opts_.controller_address;
    cfg_.controller.server_name = opts_.server_name;
    cfg_.controller.report_interval_ms = opts_.report_interval_ms;
    cfg_.etcd.endpoints = opts_.etcd_endpoints;
    cfg_.etcd.prefix = opts_.etcd_prefix;
    cfg_.etcd.report_interval_ms = opts_.report_interval_ms;
    generation_ = store_.highest();
}

SimAgent::~SimAgent() {
    disconnect();
}

void SimAgent::connect() {
    hub_ = std::make_unique<FlowHub>(16, 0);
    if (!cfg_.etcd.endpoints.empty()) {
        etcd_ = std::make_unique<agent::EtcdLink>(cfg_, *this);
    } else {
        controller_ = std::make_unique<agent::ControllerLink>(cfg_, nullptr, *this, *hub_);
    }
}

void SimAgent::disconnect() {
    etcd_.reset();
    controller_.reset();
    if (hub_) {
        hub_->close();
    }
    hub_.reset();
}

uint64_t SimAgent::apply(const std::string& bundle, uint32_t) {
    const auto received = SimClock::now();
    SlotGuard slot;
    std::lock_guard lock(mu_);  // one admission at a time, as Enforcement serializes them
    const auto start = SimClock::now();
    bytes_ += bundle.size();
    agent::AdmissionPolicy rules{opts_.fleet, int64_t(std::time(nullptr)), opts_.trusted_keys};
    try {
        std::string signer, record;
        policy::CompiledPolicy cp = agent::admitBundle(bundle, rules, store_, &signer, &record);
        // "Applied" in memory: the compiled policy was built; keep its summary,
        // not the policy (thousands of agents share this process). The bundle
        // goes to the state dir as in ztsegd: the next delta's base.
        store_.recordApplied(cp.generation, record);
        generation_ = cp.generation;
        rules_ = cp.rules.size();
        signer_ = std::move(signer);
        const auto done = SimClock::now();
        admitted_[cp.generation] = {
            received, done, std::chrono::duration<double, std::milli>(done - start).count()};
        return cp.generation;
    } catch (const std::exception& e) {
        ++refusals_;
        last_refusal_ = e.what();
        spdlog::debug("{}: bundle refused: {}", opts_.name, e.what());
        throw;
    }
}

uint64_t SimAgent::rollback() {
    throw Error(opts_.name + ": a simulated agent does not roll back");
}

v1::StatusReply SimAgent::status() {
    std::lock_guard lock(mu_);
    v1::StatusReply r;
    r.set_host(opts_.name);
    r.set_generation(generation_);
    r.set_highest_generation(store_.highest());
    r.set_version("fleet-sim");
    if (wire_proof_.updated_unix_ms() != 0) {
        *r.mutable_wire_proof() = wire_proof_;
    }
    return r;
}

void SimAgent::setWireProof(const WireProofConfig& config, uint64_t epoch) {
    std::lock_guard lock(mu_);
    wire_proof_.set_epoch(epoch);
    wire_proof_.set_peers(uint32_t(config.peers.size()));
    wire_proof_.set_updated_unix_ms(unixMillis());
}

v1::PolicyReply SimAgent::policy() {
    std::lock_guard lock(mu_);
    v1::PolicyReply r;
    r.set_generation(generation_);
    r.set_signer(signer_);
    return r;
}

v1::RulesReply SimAgent::rules() {
    return {};
}

uint64_t SimAgent::generation() const {
    std::lock_guard lock(mu_);
    return generation_;
}

size_t SimAgent::ruleCount() const {
    std::lock_guard lock(mu_);
    return rules_;
}

std::optional<SimAgent::Arrival> SimAgent::arrival(uint64_t generation) const {
    std::lock_guard lock(mu_);
    auto it = admitted_.find(generation);
    if (it == admitted_.end()) {
        return std::nullopt;
    }
    return it->second;
}

uint64_t SimAgent::refusals() const {
    std::lock_guard lock(mu_);
    return refusals_;
}

std::string SimAgent::lastRefusal() const {
    std::lock_guard lock(mu_);
    return last_refusal_;
}

uint64_t SimAgent::bytesAdmitted() const {
    std::lock_guard lock(mu_);
    return bytes_;
}

}  // namespace ztseg::bench
