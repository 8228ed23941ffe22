#include "agent/enforcement.hpp"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "agent/cgroup_preclassify.hpp"
#include "agent/failsafe_rules.hpp"
#include "common/cgroup.hpp"
#include "common/error.hpp"
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

}  // namespace

Enforcement::Enforcement(const AgentConfig& cfg, GenerationStore& store, Listener listener)
    : cfg_(cfg),
      store_(store),
      listener_(std::move(listener)),
      cgroup_root_(cfg.cgroup_root.empty() ? cgroup2MountPoint() : cfg.cgroup_root),
      state_(std::make_shared<const EnforcedState>()) {}

Enforcement::~Enforcement() = default;

void Enforcement::uninstall(const AgentConfig& cfg) {
    Datapath::uninstall(cfg.datapath.pin_dir);
}

bool Enforcement::open() {
    std::lock_guard lock(mu_);
    const bool fresh = !Datapath::isPinned(cfg_.datapath.pin_dir);
    if (fresh) {
        dp_.emplace(Datapath::create(cfg_.datapath));
    } else {
        dp_.emplace(Datapath::adopt(cfg_.datapath));
    }
    dp_->setDropEventInterval(cfg_.datapath.drop_event_interval_ns);
    dp_->setDropEventSourceBudget(cfg_.datapath.drop_event_source_budget);
    installFailsafe();
    cgroups_ = std::make_unique<CgroupWatcher>(cgroup_root_, std::vector<WorkloadPattern>{});
    return fresh;
}

// Before any policy: no generation may come into force without them.
void Enforcement::installFailsafe() {
    std::vector<std::string> warnings;
    failsafe_ = failsafeRules(cfg_, &warnings);
    for (const std::string& w : warnings) spdlog::warn("{}", w);
    dp_->setFailsafe(failsafe_);
    if (!cfg_.failsafe.enabled) {
        spdlog::warn(
            "failsafe.enabled is false: a host policy can cut every path to this host, SSH and "
            "the controller link included");
        return;
    }
    for (const FailsafeRule& r : failsafe_) {
        spdlog::info("failsafe rule '{}': {} ({})", r.name, r.flowText(), r.origin);
    }
}

void Enforcement::attach() {
    std::lock_guard lock(mu_);
    uint64_t root_id = cgroupIdOf(cgroup_root_);
    auto attached = dp_->attachedCgroups();
    if (std::find(attached.begin(), attached.end(), root_id) == attached.end()) {
        dp_->attachCgroup(cgroup_root_);
    }
    if (cfg_.cgroup_only) {
        spdlog::warn(
            "cgroup_only: XDP is not attached; traffic the kernel answers itself on this host's "
            "interfaces (host services, ICMP, anything outside workload cgroups) is not judged");
    }
    xdp_ = std::make_unique<XdpInterfaces>(*dp_, cfg_.interfaces, cfg_.xdp_mode);
    xdp_->start();
}

void Enforcement::publish(EnforcedState next) {
    auto s = std::make_shared<const EnforcedState>(std::move(next));
    state_.store(s);
    listener_(*s);
}

void Enforcement::countFailure() {
    EnforcedState next = *state_.load();
    ++next.apply_failures;
    state_.store(std::make_shared<const EnforcedState>(std::move(next)));
}

uint64_t Enforcement::apply(const Admit& admit, bool record, const SwitchHooks& hooks) {
    std::lock_guard lock(mu_);
    return applyLocked(admit, record, hooks);
}

uint64_t Enforcement::applyLocked(const Admit& admit, bool record, const SwitchHooks& hooks) {
    auto t0 = std::chrono::steady_clock::now();
    std::shared_ptr<const policy::CompiledPolicy> cp;
    std::map<uint64_t, CgroupMatch> endpoints;
    std::vector<Endpoint> eps;
    std::string bytes;
    try {
        Admitted a = admit();
        cp = std::move(a.policy);
        bytes = std::move(a.bytes);
        if (hooks.before) {
            hooks.before(state_.load()->generation(), cp->generation);
        }
    } catch (const Error&) {
        countFailure();
        throw;
    }
    try {
        endpoints = scanEndpoints(*cp);
        for (const auto& [id, m] : endpoints) {
            eps.push_back({id, cp->workload(m.workload)->identity});
        }
        dp_->apply(cp->toGeneration(eps));
    } catch (const Error&) {
        if (hooks.failed) {
            hooks.failed();
        }
        countFailure();
        throw;
    }
    if (record) {
        store_.recordApplied(cp->generation, bytes, /*keep_previous=*/true);
    }
    // What rollback returns to: its bytes stay on disk (previousBundle()).
    previous_generation_ = state_.load()->generation();
    use(cp, std::move(endpoints));
    releaseFreedMemory();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    {
        EnforcedState next = *state_.load();
        next.apply_seconds.push_back(secs);
        state_.store(std::make_shared<const EnforcedState>(std::move(next)));
    }
    const ApplyStats& st = dp_->lastApply();
    spdlog::info(
        "applied generation {} in {:.1f} ms ({} rules, {} local workload cgroups; {}, {} map "
        "writes)",
        cp->generation, secs * 1000, cp->rules.size(), eps.size(),
        st.incremental ? "incremental" : "full build", st.map_writes);
    return cp->generation;
}

// Which local cgroups are this policy's workloads.
std::map<uint64_t, CgroupMatch> Enforcement::scanEndpoints(const policy::CompiledPolicy& cp) {
    cgroups_->setPatterns(patternsOf(cp));
    std::map<uint64_t, CgroupMatch> endpoints;
    for (const CgroupMatch& m : cgroups_->scan()) {
        if (cp.workload(m.workload) != nullptr) {
            endpoints[m.cgroup_id] = m;
        }
    }
    return endpoints;
}

void Enforcement::use(std::shared_ptr<const policy::CompiledPolicy> cp,
                      std::map<uint64_t, CgroupMatch> endpoints) {
    EnforcedState next = *state_.load();
    next.policy = cp;
    next.endpoints = std::move(endpoints);
    publish(std::move(next));
    // New cgroups are judged from mkdir on, by name, until classified here.
    installPreclassifier(*dp_, *cgroups_, patternsOf(*cp), classesOf(*cp));
    settle();
}

void Enforcement::settle() {
    settlePending(*dp_, *cgroups_, state_.load()->endpoints);
}

uint64_t Enforcement::restore(const std::function<std::optional<std::string>()>& pick,
                              const std::function<void(uint64_t from, uint64_t to)>& done) {
    std::lock_guard lock(mu_);
    std::optional<std::string> bytes = pick();
    if (!bytes) {
        return 0;
    }
    const uint64_t from = state_.load()->generation();
    uint64_t to = applyLocked(
        [&] {
            try {
                return Admitted{std::make_shared<const policy::CompiledPolicy>(
                                    policy::parseBundle(policy::openEnvelope(*bytes).bundle)),
                                *bytes};
            } catch (const Error& e) {
                throw Error(std::string("read the recorded bundle to return to: ") + e.what());
            }
        },
        /*record=*/false, {});
    done(from, to);
    return to;
}

void Enforcement::serialized(const std::function<void()>& fn) {
    std::lock_guard lock(mu_);
    fn();
}

void Enforcement::setWireProof(const WireProofConfig& config) {
    std::lock_guard lock(mu_);
    dp_->setWireProof(config);
}

uint64_t Enforcement::rollback(const SwitchHooks& hooks) {
    std::lock_guard lock(mu_);
    uint64_t prev = dp_->previousGeneration();
    if (prev == 0 || previous_generation_ == 0) {
        throw Error(
            "rollback: no previous generation since this ztsegd started; apply the bundle of "
            "the generation you want instead");
    }
    if (previous_generation_ != prev) {
        throw Error("rollback: generation " + std::to_string(prev) +
                    " was applied before this ztsegd started; apply its bundle instead");
    }
    // Parsed again from the state dir (it was admitted when it was applied):
    // keeping it parsed would double the agent's memory for a rare operation.
    std::optional<std::string> bytes = store_.previousBundle();
    std::shared_ptr<const policy::CompiledPolicy> cp;
    try {
        if (!bytes) {
            throw Error("it is not in the state directory");
        }
        cp = std::make_shared<const policy::CompiledPolicy>(
            policy::parseBundle(policy::openEnvelope(*bytes).bundle));
    } catch (const Error& e) {
        throw Error("rollback: read the bundle of generation " + std::to_string(prev) + ": " +
                    e.what());
    }
    if (cp->generation != prev) {
        throw Error("rollback: the stored previous bundle is generation " +
                    std::to_string(cp->generation) + ", the datapath's previous is " +
                    std::to_string(prev) + "; apply the bundle you want instead");
    }
    if (hooks.before) {
        hooks.before(state_.load()->generation(), cp->generation);
    }
    try {
        dp_->rollback();
    } catch (const Error&) {
        if (hooks.failed) {
            hooks.failed();
        }
        throw;
    }
    // Workloads that came or went since that generation was active.
    std::map<uint64_t, CgroupMatch> endpoints = scanEndpoints(*cp);
    for (const auto& [id, m] : endpoints) {
        const policy::CompiledWorkload* w = cp->workload(m.workload);
        dp_->upsertEndpoint({id, w->identity}, w->mode, w->raw_sockets);
    }
    store_.swapCurrentAndPrevious();  // a restart keeps the rollback
    previous_generation_ = state_.load()->generation();
    use(cp, std::move(endpoints));
    releaseFreedMemory();
    spdlog::warn("rolled back to generation {} on request", cp->generation);
    return cp->generation;
}

std::string Enforcement::currentBundle() const {
    std::lock_guard lock(mu_);
    return store_.currentBundle().value_or("");
}

// Parsing a bundle allocates several times what stays in force; glibc keeps
// the freed heap mapped unless asked. Without this, a 100k-rule agent's RSS
// stays at the parse's peak (measured: 239 -> 162 MiB).
void Enforcement::releaseFreedMemory() {
    ::malloc_trim(0);
}

void Enforcement::syncCgroups() {
    std::lock_guard lock(mu_);
    std::shared_ptr<const EnforcedState> now = state_.load();
    if (!now->policy) {
        cgroups_->process([](const CgroupEvent&) {});
        return;
    }
    EnforcedState next = *now;
    bool changed = false;
    cgroups_->process([&](const CgroupEvent& ev) {
        const auto& m = ev.match;
        if (ev.kind == CgroupEvent::Disappeared) {
            dp_->removeEndpoint(m.cgroup_id);
            changed = next.endpoints.erase(m.cgroup_id) != 0 || changed;
            spdlog::info("workload {} left: cgroup {} removed", m.workload, m.path);
            return;
        }
        if (const policy::CompiledWorkload* w = next.policy->workload(m.workload)) {
            dp_->upsertEndpoint({m.cgroup_id, w->identity}, w->mode, w->raw_sockets);
            next.endpoints[m.cgroup_id] = m;
            changed = true;
            spdlog::info("workload {} appeared: cgroup {} (id {})", m.workload, m.path,
                         m.cgroup_id);
        }
    });
    if (changed) {
        publish(std::move(next));
    }
    settle();
}

void Enforcement::syncInterfaces() {
    std::lock_guard lock(mu_);
    xdp_->process();
}

void Enforcement::settleIdle() {
    std::lock_guard lock(mu_);
    if (state_.load()->policy) {
        settle();
    }
}

EnforcementSnapshot Enforcement::snapshot() const {
    EnforcementSnapshot s;
    s.state = state_.load();
    s.active_generation = dp_->activeGeneration();
    // The kernel's other slot may hold a generation an earlier ztsegd applied
    // (after a restart, even the active one): rollback cannot return to it.
    const uint64_t mine = previous_generation_.load();
    s.previous_generation = mine != 0 && mine == dp_->previousGeneration() ? mine : 0;
    s.counters = dp_->counters();
    s.conntrack = dp_->conntrackUsage();
    s.pending_cgroups = dp_->pendingCgroups().size();
    s.interfaces = xdp_ ? xdp_->attached() : std::map<std::string, std::string>{};
    s.failsafe = failsafe_;
    s.raw_socket_guard = dp_->rawSocketGuard();
    s.raw_sockets = s.raw_socket_guard ? "confined (" + dp_->rawSocketGuardMode() + ")"
                                       : "NOT confined: " + dp_->rawSocketGuardProblem();
    return s;
}

RuleHitsSnapshot Enforcement::ruleHits() const {
    std::lock_guard lock(mu_);  // the counter table changes with every apply
    RuleHitsSnapshot r;
    r.policy = state_.load()->policy;
    r.hits = dp_->ruleHits();
    r.uncounted = dp_->uncountedRules();
    return r;
}

}  // namespace ztseg::agent
