#include "controller/controller.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>

#include "common/error.hpp"
#include "common/signals.hpp"
#include "controller/etcd_distributor.hpp"
#include "controller/fleet_rules.hpp"
#include "controller/rollout.hpp"
#include "policy/bundle.hpp"
#include "policy/parser.hpp"
#include "policy/policy_diff.hpp"
#include "policy/sources.hpp"
#include "shared/flow_stream.hpp"

namespace ztseg::controller {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

// Cheap change detection: names, sizes and modification times of the
// policy files. Only when it changes is the source compiled again.
std::string fingerprint(const std::string& dir) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files;
    try {
        files = policy::policyFilesIn(dir);
    } catch (const Error&) {
        return "";  // unreadable: compileSource() reports why
    }
    std::string out;
    std::error_code ec;
    for (const fs::path& f : files) {
        auto t = fs::last_write_time(f, ec).time_since_epoch().count();
        out += f.string() + ":" + std::to_string(fs::file_size(f, ec)) + ":" + std::to_string(t) +
               "\n";
    }
    return out;
}

}  // namespace

Controller::Controller(ControllerConfig cfg) : cfg_(std::move(cfg)) {}

Controller::~Controller() {
    stop();
    if (engine_.joinable()) {
        engine_.join();
    }
    etcd_.reset();
    flow_hub_.close();
}

void Controller::stop() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
}

bool Controller::stopping() const {
    std::lock_guard lock(mu_);
    return stop_;
}

void Controller::wake() {
    cv_.notify_all();
}

void Controller::start() {
    signals_ = daemonSignals();  // before any thread starts

    std::string ids;
    for (const auto& path : cfg_.signing_keys) {
        keys_.push_back(policy::Ed25519Key::load(path));
        if (!keys_.back().hasPrivate()) {
            throw Error("signing_keys: " + path + " is a public key; the private key is needed");
        }
        ids += (ids.empty() ? "" : ", ") + keys_.back().keyId();
    }
    deltas_ = std::make_unique<DeltaCache>();
    store_.emplace(cfg_.state_dir);
    if (auto bytes = store_->currentBundle(); bytes && !bytes->empty()) {
        auto env = policy::openEnvelope(*bytes);
        Release r;
        r.policy = std::make_shared<const policy::CompiledPolicy>(policy::parseBundle(env.bundle));
        r.generation = r.policy->generation;
        r.digest = r.policy->source_digest;
        r.signed_bundle = *bytes;
        r.stable_since_unix_ms = store_->currentSinceUnixMs();
        deltas_->remember(r.generation, r.signed_bundle);
        stable_ = std::move(r);
    }
    if (!cfg_.rollout_log.empty()) {
        std::filesystem::create_directories(
            std::filesystem::path(cfg_.rollout_log).parent_path().empty()
                ? "."
                : std::filesystem::path(cfg_.rollout_log).parent_path());
        rollout_log_.open(cfg_.rollout_log, std::ios::app);
        if (!rollout_log_) {
            throw Error("rollout_log " + cfg_.rollout_log + ": cannot open for appending");
        }
    }
    if (!cfg_.flow_file.empty()) {
        flow_sink_ = std::make_unique<flows::JsonlSink>(flows::JsonlSink::Options{
            cfg_.flow_file, cfg_.flow_file_max_bytes, cfg_.flow_file_max_files});
    }
    fleet_.onChange([this] { wake(); });
    if (!cfg_.etcd_endpoints.empty()) {
        etcd_ =
            std::make_unique<EtcdDistributor>(cfg_.etcd_endpoints, cfg_.etcd_prefix, fleet_,
                                              std::chrono::milliseconds(cfg_.etcd_host_timeout_ms));
        dist_ = etcd_.get();
        if (stable_) {
            dist_->publishStable(stable_->generation, stable_->signed_bundle);
        }
    } else {
        sessions_ = std::make_unique<AgentSessions>(cfg_.rollout.confirm_within_ms);
        dist_ = sessions_.get();
        wire_keys_ = std::make_unique<WireKeyPusher>(cfg_, *sessions_, [this] {
            std::lock_guard lock(mu_);
            return workloadIdentities();
        });
        if (cfg_.rollout.confirm_within_ms != 0) {
            auto_confirm_ = std::make_unique<AutoConfirm>(
                std::chrono::milliseconds(cfg_.rollout.confirm_settle_ms),
                AutoConfirm::Links{[this] {
                                       std::lock_guard lock(mu_);
                                       return ++report_seq_;
                                   },
                                   [this](const std::string& host, uint64_t id) {
                                       sessions_->requestReport(host, id, false);
                                   },
                                   [this](const std::string& host, uint64_t g) {
                                       return sessions_->confirm(host, g);
                                   },
                                   [this](const std::string& what, uint64_t g,
                                          const std::string& host, const std::string& detail) {
                                       json d{{"host", host}};
                                       if (!detail.empty()) {
                                           d["reason"] = detail;
                                       }
                                       event(what, g, d);
                                   }});
        }
    }
    spdlog::info("ztseg-controller for fleet {}: policy {}, signing with {}, stable generation {}",
                 cfg_.fleet, cfg_.policy_dir, ids, stable_ ? stable_->generation : 0);
    engine_ = std::thread([this] { engine(); });
}

void Controller::run() {
    while (true) {
        {
            std::unique_lock lock(mu_);
            if (cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stop_; })) {
                return;
            }
        }
        signalfd_siginfo si{};
        while (::read(signals_.get(), &si, sizeof(si)) == sizeof(si)) {
            if (si.ssi_signo == SIGHUP) {
                spdlog::info("SIGHUP: re-reading the policy source");
                std::lock_guard lock(mu_);
                reload_requested_ = true;
                cv_.notify_all();
            } else {
                spdlog::info("signal {}: stopping", strsignal(int(si.ssi_signo)));
                stop();
            }
        }
    }
}

// ---- the engine thread ----

void Controller::engine() {
    auto next_check = Clock::now();
    for (;;) {
        bool forced = false;
        bool override_guard = false;
        {
            std::unique_lock lock(mu_);
            cv_.wait_until(lock,
                           std::min(next_check, Clock::now() + std::chrono::milliseconds(250)),
                           [&] { return stop_ || reload_requested_; });
            if (stop_)
                return;
            forced = std::exchange(reload_requested_, false);
            override_guard = std::exchange(guard_override_requested_, false);
        }
        bool first = cycles_ == 0;  // the source may have changed while the controller was down
        if (forced || ((cfg_.watch_interval_ms > 0 || first) && Clock::now() >= next_check)) {
            {
                std::lock_guard lock(mu_);
                checking_ = true;
            }
            try {
                checkSource(forced, override_guard);
            } catch (const std::exception& e) {
                spdlog::error("policy source {}: {}", cfg_.policy_dir, e.what());
                std::lock_guard lock(mu_);
                last_reload_.set_changed(false);
            }
            {
                std::lock_guard lock(mu_);
                ++cycles_;
                checking_ = false;
            }
            cv_.notify_all();
            next_check = Clock::now() + std::chrono::milliseconds(
                                            cfg_.watch_interval_ms ? cfg_.watch_interval_ms : 2000);
        }
        reconcile();
    }
}

v1::ReloadReply Controller::reload(bool force) {
    std::unique_lock lock(mu_);
    // A check already running may have read the source before this request.
    uint64_t after = cycles_ + (checking_ ? 1 : 0);
    reload_requested_ = true;
    guard_override_requested_ = guard_override_requested_ || force;
    cv_.notify_all();
    cv_.wait(lock, [&] { return stop_ || cycles_ > after; });
    v1::ReloadReply r = last_reload_;
    *r.mutable_rollout() = rollout_status_;
    return r;
}

std::optional<Release> Controller::compileSource(uint64_t generation) {
    policy::Diagnostics diags;
    policy::CompiledPolicy cp;
    try {
        policy::PolicySet ps = policy::loadPolicies({cfg_.policy_dir}, diags);
        cp = policy::compile(ps, generation, diags);
    } catch (const policy::PolicyError& e) {
        std::string all;
        for (const auto& d : e.diagnostics()) all += "\n  " + d.str();
        spdlog::error("policy source {} has errors, nothing rolled out:{}", cfg_.policy_dir, all);
        return std::nullopt;
    }
    for (const auto& w : diags.warnings()) {
        spdlog::warn("{}", w.str());
    }
    return sign(std::move(cp));
}

Release Controller::sign(policy::CompiledPolicy cp) {
    Release r;
    r.generation = cp.generation;
    r.digest = cp.source_digest;
    std::string bytes = policy::serializeBundle(cp, {cfg_.fleet, 0});
    r.signed_bundle = policy::signBundle(bytes, keys_);
    deltas_->remember(r.generation, r.signed_bundle);
    r.policy = std::make_shared<const policy::CompiledPolicy>(std::move(cp));
    return r;
}

Release Controller::reissue(const Release& content, uint64_t generation) {
    policy::CompiledPolicy cp = *content.policy;
    cp.generation = generation;
    return sign(std::move(cp));
}

// Strictly above everything issued before and everything any host has seen
// (so a controller that lost its state still issues acceptable generations).
uint64_t Controller::nextGeneration() {
    uint64_t g = store_->highest();
    for (const auto& [name, h] : fleet_.snapshot()) {
        g = std::max(g, h.highest);
    }
    return g + 1;
}

void Controller::checkSource(bool forced, bool override_guard) {
    std::string fp = fingerprint(cfg_.policy_dir);
    if (!forced && fp == source_fingerprint_) {
        return;
    }
    source_fingerprint_ = fp;
    auto next = compileSource(nextGeneration());
    {
        std::lock_guard lock(mu_);
        last_reload_ = v1::ReloadReply{};
        last_reload_.set_generation(stable_ ? stable_->generation : 0);
    }
    if (!next) {
        return;
    }
    if (stable_ && next->digest == stable_->digest) {
        spdlog::info("policy source unchanged (generation {} is current)", stable_->generation);
        return;
    }
    if (next->digest == failed_digest_ && !forced) {
        return;  // halted before; waits for an edit or an explicit reload
    }
    // The rollout guard: a source that would remove all enforcement or most
    // of the rules in force (an emptied directory, a bad merge) waits for an
    // edit or a reload with force.
    if (stable_ && !override_guard) {
        policy::PolicyDiff d = policy::diffPolicies(*stable_->policy, *next->policy);
        if (auto why = policy::guardRefusal(d)) {
            spdlog::error(
                "policy source {} not rolled out, generation {} stays in force: {}; roll it out "
                "anyway with ztsegctl fleet reload --force",
                cfg_.policy_dir, stable_->generation, *why);
            event("guard-refused", stable_->generation, {{"why", *why}});
            std::lock_guard lock(mu_);
            last_reload_.set_refused(*why);
            return;
        }
    }
    // Persist the number before anything leaves: a restart never reuses it.
    store_->recordApplied(next->generation, stable_ ? stable_->signed_bundle : "");
    rollout(std::move(*next));
    std::lock_guard lock(mu_);
    last_reload_.set_changed(true);
    last_reload_.set_generation(stable_ ? stable_->generation : 0);
}

void Controller::rollout(Release next) {
    Rollout(*this, std::move(next)).run();
}

// ---- distribution ----

std::map<std::string, uint32_t> Controller::workloadIdentities() const {
    std::map<std::string, uint32_t> out;
    for (const std::optional<Release>* r : {&stable_, &rolling_}) {
        if (*r && (*r)->policy) {
            for (const auto& w : (*r)->policy->workloads) out[w.name] = w.identity;
        }
    }
    return out;
}

void Controller::releasesChanged() {
    if (wire_keys_) {
        wire_keys_->pushAll();
    }
}

const Release* Controller::desiredFor(const std::string& host) const {
    if (rolling_ && included_.count(host)) {
        return &*rolling_;
    }
    return stable_ ? &*stable_ : nullptr;
}

void Controller::reconcile() {
    // Collected first, then sent in one batch (etcd mode writes the hosts'
    // keys in a few transactions instead of one put per host).
    struct Pending {
        std::string host;
        uint64_t from = 0, generation = 0;
        std::shared_ptr<const std::string> bytes;
        bool delta = false;
    };
    std::vector<Pending> pending;
    std::map<uint64_t, std::shared_ptr<const std::string>> bundles;  // one copy per generation
    for (const auto& [name, h] : fleet_.snapshot()) {
        if (!h.connected)
            continue;
        std::optional<Release> want;
        {
            std::lock_guard lock(mu_);
            if (const Release* d = desiredFor(name))
                want = *d;
        }
        // Behind, able to take it (highest below), and not already sent it
        // (a refused delta is followed by the full bundle, once).
        if (!want || h.generation >= want->generation || h.highest >= want->generation) {
            continue;
        }
        bool delta_refused = h.pushed_delta && h.last_apply.generation() == want->generation &&
                             !h.last_apply.applied();
        if (h.pushed == want->generation && !delta_refused) {
            continue;
        }
        std::optional<std::string> delta;
        if (!delta_refused) {
            delta = deltas_->delta(h.generation, want->generation);
        }
        std::shared_ptr<const std::string> bytes;
        if (delta) {
            bytes = std::make_shared<const std::string>(std::move(*delta));
        } else {
            auto& b = bundles[want->generation];
            if (!b) {
                b = std::make_shared<const std::string>(want->signed_bundle);
            }
            bytes = b;
        }
        fleet_.markPushed(name, want->generation, delta.has_value());
        pending.push_back(
            {name, h.generation, want->generation, std::move(bytes), delta.has_value()});
    }
    if (pending.empty()) {
        return;
    }
    std::vector<Distributor::Push> pushes;
    pushes.reserve(pending.size());
    for (const auto& p : pending) {
        pushes.push_back({p.host, p.generation, p.bytes.get(), p.delta});
    }
    std::vector<bool> sent = dist_->pushMany(pushes);
    for (size_t i = 0; i < pending.size(); ++i) {
        if (sent[i]) {
            event("push", pushes[i].generation,
                  {{"host", pending[i].host},
                   {"from", pending[i].from},
                   {"as", pending[i].delta ? "delta" : "bundle"},
                   {"bytes", pending[i].bytes->size()}});
        }
    }
}

void Controller::setRollout(const v1::RolloutStatus& st) {
    {
        std::lock_guard lock(mu_);
        rollout_status_ = st;
    }
    dist_->publishRollout(st);
}

void Controller::event(const std::string& what, uint64_t generation, json detail) {
    json line{{"time_ms", unixMillis()}, {"event", what}, {"generation", generation}};
    if (detail.is_object()) {
        line.update(detail);
    }
    spdlog::info("rollout: {}", line.dump());
    std::lock_guard lock(log_mu_);
    if (rollout_log_.is_open()) {
        rollout_log_ << line.dump() << "\n" << std::flush;
    }
}

// ---- reads ----

void Controller::onFlow(const v1::FlowEvent& e) {
    if (!flow_sink_)
        return;
    flow_sink_->writeLine(e.ocsf_json());
    flow_hub_.publish(fromFlowEvent(e));
}

}  // namespace ztseg::controller
