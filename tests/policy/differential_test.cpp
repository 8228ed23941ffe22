// Differential test: the BPF datapath against the reference evaluator
// (docs/design.md#policy-model) on random policies and random new flows.
//
// For every seed: a random PolicySet (tests/policy/random_policy.hpp) is
// compiled and applied to a real datapath, with this process's cgroup as the
// endpoint of one local workload at a time, or with no endpoint as a process
// of the host itself when the flow's local side is the host (`entity: host`
// policies; the datapath's host netns is this process's); each flow is crafted as a packet
// and run through cgroup_skb ingress/egress (and, for ingress, XDP). The
// kernel's verdict, the one counter that moved, and the flow event's rule id
// must be what Evaluator::evaluate says. Conntrack is flushed before every
// flow, so each one is judged as new.
//
// Reproduce one seed: ZTSEG_DIFF_SEED=<seed> ZTSEG_DIFF_POLICIES=1 differential_tests
//   --gtest_filter=Differential.KernelAgreesWithReferenceEvaluator (ZTSEG_DIFF_FLOWS sets
//   flows per policy; KernelAgreesOnLargerPolicies uses seeds ZTSEG_DIFF_SEED + 1000000 + i).
// Differential.* also holds hand-written corners the generator does not reach.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "bpf/datapath_fixture.hpp"
#include "common/packet_builder.hpp"
#include "model/names.hpp"
#include "policy/compiler.hpp"
#include "policy/evaluator.hpp"
#include "policy/parser.hpp"
#include "policy/random_policy.hpp"

namespace ztseg::policy {
namespace {

using test::RandomFlow;
using ztseg::test::kSkbDrop;
using ztseg::test::kSkbPass;
using ztseg::test::kXdpDrop;
using ztseg::test::kXdpPass;
using ztseg::test::PacketBuilder;

uint64_t envOr(const char* name, uint64_t fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::strtoull(v, nullptr, 0) : fallback;
}

constexpr uint64_t kDefaultSeed = 0x5eed0000;
constexpr uint64_t kDefaultPolicies = 150;
constexpr uint64_t kDefaultFlowsPerPolicy = 150;
constexpr uint64_t kLargePolicies = 10;
constexpr uint64_t kLargeFlowsPerPolicy = 500;

std::string addrText(const IpPrefix& p) {
    return addressToString(p.family, p.addr.data());
}

std::vector<uint8_t> buildFrame(const RandomFlow& f) {
    const IpPrefix& src = f.direction == Direction::Ingress ? f.peer_address : f.local_address;
    const IpPrefix& dst = f.direction == Direction::Ingress ? f.local_address : f.peer_address;
    PacketBuilder b = src.family == 4 ? PacketBuilder::ipv4(addrText(src), addrText(dst))
                                      : PacketBuilder::ipv6(addrText(src), addrText(dst));
    switch (f.protocol) {
        case ZTSEG_PROTO_TCP:
            b.tcp(f.sport, f.port, ztseg::test::kTcpSyn);
            break;
        case ZTSEG_PROTO_UDP:
            b.udp(f.sport, f.port);
            break;
        case ZTSEG_PROTO_SCTP:
            b.sctp(f.sport, f.port);
            break;
        default:
            b.icmpEcho(f.sport);  // echo request; the identifier stands in for ports
            break;
    }
    return b.build();
}

// The drop reason of a refused (or, in audit mode, would-be refused) flow.
uint32_t dropReason(const Evaluation& e) {
    switch (e.reason) {
        case EvalReason::PolicyDeny:
            return ZTSEG_REASON_DROP_POLICY_DENY;
        case EvalReason::Unlabeled:
            return ZTSEG_REASON_DROP_UNLABELED;
        default:
            return ZTSEG_REASON_DROP_DEFAULT_DENY;
    }
}

// The counter the cgroup stage must move for this evaluation.
uint32_t cgroupReason(const Evaluation& e) {
    switch (e.reason) {
        case EvalReason::NotManaged:
            return ZTSEG_REASON_PASS_NO_ENDPOINT;
        case EvalReason::Allowed:
            return ZTSEG_REASON_ALLOW_POLICY;
        default:
            break;
    }
    if (e.would_drop) {
        return ZTSEG_REASON_AUDIT;
    }
    return dropReason(e);
}

std::string rulesText(const std::vector<uint32_t>& ids) {
    std::string s = "{";
    for (uint32_t id : ids) {
        s += (s.size() > 1 ? "," : "") + std::to_string(id);
    }
    return s + "}";
}

std::string evalText(const Evaluation& e) {
    return std::string(e.pass ? "pass" : "drop") + (e.would_drop ? " (would-drop)" : "") + " " +
           std::string(evalReasonName(e.reason)) + " rules " + rulesText(e.rules);
}

// Counter deltas of one hook between two snapshots.
std::array<uint64_t, ZTSEG_REASON_MAX> deltas(const Counters& before, const Counters& after,
                                              uint32_t hook) {
    std::array<uint64_t, ZTSEG_REASON_MAX> d{};
    for (uint32_t r = 0; r < ZTSEG_REASON_MAX; ++r) {
        d[r] = after.at(hook, r).packets - before.at(hook, r).packets;
    }
    return d;
}

std::string movedText(const std::array<uint64_t, ZTSEG_REASON_MAX>& d) {
    std::string s;
    for (uint32_t r = 0; r < ZTSEG_REASON_MAX; ++r) {
        if (d[r]) {
            s += std::string(reasonName(r)) + "=" + std::to_string(d[r]) + " ";
        }
    }
    return s.empty() ? "nothing" : s;
}

std::string eventText(const ztseg_flow_event& ev) {
    return std::string(hookName(ev.hook)) + " " + std::string(verdictName(ev.verdict)) + " " +
           std::string(reasonName(ev.reason)) + " rule " + std::to_string(ev.rule_id);
}

bool contains(const std::vector<uint32_t>& ids, uint32_t id) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
}

class Differential : public ztseg::test::DatapathTest {
  protected:
    struct Stats {
        uint64_t policies = 0, flows = 0, xdp = 0, xdp_enforce = 0, applies = 0, failed_flows = 0;
        std::map<std::string, uint64_t> by_outcome;  // "ingress allow-policy", ...
    };

    void SetUp() override {
        DatapathTest::SetUp();
        saved_log_level_ = spdlog::get_level();
        spdlog::set_level(spdlog::level::warn);  // one "generation N active" line per apply
    }
    void TearDown() override {
        spdlog::set_level(saved_log_level_);
        DatapathTest::TearDown();
    }

    // Applies `cp` as a new generation with this process's cgroup as the
    // endpoint of `local`.
    void install(CompiledPolicy& cp, const CompiledWorkload& local) {
        cp.generation = next_generation_++;
        dp().apply(cp.toGeneration({{selfCgroupId(), local.identity}}));
    }

    // One packet at one hook: checks verdict, the single counter that moved,
    // and the events; appends every mismatch to `why`.
    void check(uint32_t hook, const std::vector<uint8_t>& frame, uint32_t want_retval,
               uint32_t want_reason, const Evaluation& e, bool want_event, uint8_t want_verdict,
               std::string& why) {
        Counters before = dp().counters();
        uint32_t got = runAt(hook, frame).retval;
        auto d = deltas(before, dp().counters(), hook);
        std::vector<ztseg_flow_event> events = takeEvents();
        std::string at = std::string(hookName(hook)) + ": ";
        uint64_t total = 0;
        for (uint64_t c : d) {
            total += c;
        }
        if (got != want_retval) {
            why += at + "verdict " + std::to_string(got) + ", expected " +
                   std::to_string(want_retval) + "\n";
        }
        if (d[want_reason] != 1 || total != 1) {
            why += at + "counted " + movedText(d) + ", expected " +
                   std::string(reasonName(want_reason)) + "=1\n";
        }
        if (!want_event) {
            if (!events.empty()) {
                why += at + std::to_string(events.size()) +
                       " events, expected none (first: " + eventText(events.front()) + ")\n";
            }
            return;
        }
        if (events.size() != 1) {
            why += at + std::to_string(events.size()) + " events, expected 1\n";
            return;
        }
        const ztseg_flow_event& ev = events.front();
        uint8_t want_event_reason = e.reason == EvalReason::Allowed
                                        ? uint8_t(ZTSEG_REASON_ALLOW_POLICY)
                                        : uint8_t(dropReason(e));
        if (ev.hook != hook || ev.verdict != want_verdict || ev.reason != want_event_reason) {
            why += at + "event " + eventText(ev) + ", expected " +
                   std::string(verdictName(want_verdict)) + " " +
                   std::string(reasonName(want_event_reason)) + "\n";
        }
        bool by_rule = e.reason == EvalReason::Allowed || e.reason == EvalReason::PolicyDeny;
        if (by_rule ? !contains(e.rules, ev.rule_id) : ev.rule_id != 0) {
            why += at + "event rule " + std::to_string(ev.rule_id) + ", expected " +
                   (by_rule ? "one of " + rulesText(e.rules) : std::string("0")) + "\n";
        }
    }

    // Judges `f` with the evaluator and in the kernel (whose endpoint must be
    // `cw` already). Returns every disagreement, with the evaluation, or "".
    std::string checkFlow(const PolicySet& ps, const CompiledWorkload& cw, const Evaluator& ev,
                          const RandomFlow& f, Stats& stats) {
        const LabelSet& local =
            f.host_local ? Evaluator::hostLabels() : ps.workloads[f.local].labels;
        Peer peer = ev.peerOfAddress(f.peer_address);
        Evaluation e = ev.evaluate(local, peer, f.direction, f.protocol, f.port);
        std::string why;

        // The compiled mode must be what the evaluator derives from the policies.
        auto selecting = ev.selecting(local);
        bool audit = std::any_of(selecting.begin(), selecting.end(), [](const PolicySpec* p) {
            return p->mode == WorkloadMode::Audit;
        });
        WorkloadMode want_mode = selecting.empty() ? WorkloadMode::Unmanaged
                                 : audit           ? WorkloadMode::Audit
                                                   : WorkloadMode::Enforce;
        if (cw.mode != want_mode) {
            why += "compiled mode " + std::to_string(int(cw.mode)) + ", evaluator implies " +
                   std::to_string(int(want_mode)) + "\n";
        }

        std::vector<uint8_t> frame = buildFrame(f);
        dp().flushConntrack();
        // XDP judges ingress with the destination address as the local side:
        // only where that address resolves to the local workload itself.
        if (f.direction == Direction::Ingress && f.local_declared) {
            Peer self = ev.peerOfAddress(f.local_address);
            if (f.host_local ? self.kind == Peer::Kind::Host
                             : self.kind == Peer::Kind::Workload && self.labels == local) {
                ++stats.xdp;
                if (cw.mode == WorkloadMode::Enforce) {
                    ++stats.xdp_enforce;
                    uint32_t reason = e.pass ? uint32_t(ZTSEG_REASON_ALLOW_POLICY) : dropReason(e);
                    check(ZTSEG_HOOK_XDP, frame, e.pass ? kXdpPass : kXdpDrop, reason, e, !e.pass,
                          ZTSEG_VERDICT_DROPPED, why);
                } else {
                    // docs/datapath.md "XDP scope": audit defers to the cgroup
                    // stage; unmanaged destinations only lose unlabeled sources.
                    bool drop =
                        cw.mode == WorkloadMode::Unmanaged && peer.kind == Peer::Kind::Unlabeled;
                    Evaluation unlabeled;
                    unlabeled.reason = EvalReason::Unlabeled;
                    check(ZTSEG_HOOK_XDP, frame, drop ? kXdpDrop : kXdpPass,
                          drop ? uint32_t(ZTSEG_REASON_DROP_UNLABELED)
                               : uint32_t(ZTSEG_REASON_PASS_TO_STACK),
                          unlabeled, drop, ZTSEG_VERDICT_DROPPED, why);
                }
                dp().flushConntrack();  // XDP tracks nothing; be sure anyway
            }
        }
        uint32_t hook = f.direction == Direction::Ingress ? ZTSEG_HOOK_CGROUP_INGRESS
                                                          : ZTSEG_HOOK_CGROUP_EGRESS;
        uint8_t verdict = e.reason == EvalReason::Allowed ? ZTSEG_VERDICT_ALLOWED
                          : e.would_drop                  ? ZTSEG_VERDICT_WOULD_DROP
                                                          : ZTSEG_VERDICT_DROPPED;
        check(hook, frame, e.pass ? kSkbPass : kSkbDrop, cgroupReason(e), e,
              e.reason != EvalReason::NotManaged, verdict, why);

        ++stats.flows;
        ++stats.by_outcome[std::string(f.host_local ? "host " : "") +
                           std::string(f.direction == Direction::Ingress ? "ingress " : "egress ") +
                           std::string(reasonName(cgroupReason(e)))];
        if (why.empty()) {
            return why;
        }
        ++stats.failed_flows;
        return f.str(ps) + "\n  peer is " + peer.name + "; local mode " +
               std::to_string(int(cw.mode)) + " identity " + std::to_string(cw.identity) +
               "\n  evaluator: " + evalText(e) + "\n" + why;
    }

    // Runs `n_flows` random flows of the random policy of `seed`; false when
    // the failure budget is spent.
    bool runSeed(uint64_t seed, uint64_t n_flows, const test::RandomPolicyOptions& opts,
                 Stats& stats) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        std::mt19937_64 rng(seed);
        PolicySet ps = test::randomPolicySet(rng, opts);
        Diagnostics diags;
        CompiledPolicy cp = compile(ps, 1, diags);
        Evaluator ev(ps);
        std::vector<RandomFlow> flows;
        for (uint64_t i = 0; i < n_flows; ++i) {
            flows.push_back(test::randomFlow(rng, ps));
        }
        // Grouped by local workload. The first local comes in with the
        // generation (toGeneration's endpoint list); the next ones replace
        // this process's endpoint in place, which is much cheaper than an apply.
        // The host's flows come last: this process then leaves its workload
        // endpoint and is a host process (the datapath's host netns is ours).
        std::stable_sort(flows.begin(), flows.end(), [](const RandomFlow& a, const RandomFlow& b) {
            return std::tie(a.host_local, a.local) < std::tie(b.host_local, b.local);
        });
        std::map<std::string, const CompiledWorkload*> compiled;
        for (const auto& w : cp.workloads) {
            compiled[w.name] = &w;
        }
        auto host_mode = cp.modes.find(kHostIdentity);
        const CompiledWorkload host{
            "host",
            kHostIdentity,
            "",
            "",
            host_mode == cp.modes.end() ? WorkloadMode::Unmanaged : host_mode->second,
            false};
        constexpr size_t kHost = SIZE_MAX - 1;
        bool printed_policy = false;
        size_t current = SIZE_MAX;
        for (const RandomFlow& f : flows) {
            const size_t want = f.host_local ? kHost : f.local;
            const CompiledWorkload& cw =
                f.host_local ? host : *compiled.at(ps.workloads[f.local].name);
            if (current == SIZE_MAX) {
                cp.generation = next_generation_++;
                dp().apply(cp.toGeneration(
                    f.host_local ? std::vector<Endpoint>{}
                                 : std::vector<Endpoint>{{selfCgroupId(), cw.identity}}));
                ++stats.applies;
            } else if (current != want && f.host_local) {
                dp().removeEndpoint(selfCgroupId());
            } else if (current != want) {
                dp().upsertEndpoint({selfCgroupId(), cw.identity}, cw.mode);
            }
            current = want;
            std::string why = checkFlow(ps, cw, ev, f, stats);
            if (why.empty()) {
                continue;
            }
            std::string policy_text;
            if (!printed_policy) {
                policy_text =
                    "--- policy (seed " + std::to_string(seed) + ") ---\n" + test::toYaml(ps);
                printed_policy = true;
            }
            ADD_FAILURE() << "seed " << seed << ": " << why << policy_text;
            if (stats.failed_flows >= 25) {
                ADD_FAILURE() << "25 failing flows: stopping early";
                return false;
            }
        }
        ++stats.policies;
        return true;
    }

    // Hand-written policy text and flows (local workload by name, addresses
    // as text): every flow must be judged alike by kernel and evaluator. Text
    // the parser refuses leaves nothing to disagree on: the test then passes.
    struct Flow {
        std::string local, local_address, peer_address;
        Direction direction;
        uint8_t protocol;
        uint16_t port;
    };
    void expectAgreement(const std::string& yaml, const std::vector<Flow>& flows) {
        Diagnostics diags;
        PolicySet ps;
        try {
            ps = parsePolicies({{"corner.yaml", yaml}}, diags);
        } catch (const PolicyError& e) {
            // Refused at the door: then kernel and evaluator never see it.
            std::cout << "parser refuses this input, nothing to compare: " << e.what() << "\n";
            return;
        }
        CompiledPolicy cp = compile(ps, 1, diags);
        Evaluator ev(ps);
        Stats stats;
        for (const Flow& fl : flows) {
            RandomFlow f;
            auto it = std::find_if(ps.workloads.begin(), ps.workloads.end(),
                                   [&](const WorkloadSpec& w) { return w.name == fl.local; });
            ASSERT_NE(it, ps.workloads.end()) << fl.local;
            f.local = size_t(it - ps.workloads.begin());
            f.local_address = IpPrefix::parse(fl.local_address);
            f.local_declared = true;
            f.peer_address = IpPrefix::parse(fl.peer_address);
            f.peer_origin = "hand-written";
            f.direction = fl.direction;
            f.protocol = fl.protocol;
            f.sport = 40000;
            f.port = fl.port;
            const CompiledWorkload* cw = nullptr;
            for (const auto& w : cp.workloads) {
                if (w.name == fl.local) {
                    cw = &w;
                }
            }
            ASSERT_NE(cw, nullptr);
            install(cp, *cw);
            std::string why = checkFlow(ps, *cw, ev, f, stats);
            EXPECT_TRUE(why.empty()) << why << "--- policy ---\n" << yaml;
        }
    }

    uint64_t next_generation_ = 1;
    spdlog::level::level_enum saved_log_level_ = spdlog::level::info;
};

TEST_F(Differential, KernelAgreesWithReferenceEvaluator) {
    const uint64_t base = envOr("ZTSEG_DIFF_SEED", kDefaultSeed);
    const uint64_t n_policies = envOr("ZTSEG_DIFF_POLICIES", kDefaultPolicies);
    const uint64_t n_flows = envOr("ZTSEG_DIFF_FLOWS", kDefaultFlowsPerPolicy);
    auto start = std::chrono::steady_clock::now();
    Stats stats;
    for (uint64_t i = 0; i < n_policies; ++i) {
        if (!runSeed(base + i, n_flows, {}, stats)) {
            break;
        }
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::ostringstream out;
    out << "differential: " << stats.flows << " flows (" << stats.xdp << " also at XDP, "
        << stats.xdp_enforce << " of them to enforce-mode locals) across " << stats.policies
        << " random policies (seeds " << base << ".." << base + n_policies - 1 << "), "
        << stats.applies << " generations applied, " << stats.failed_flows << " disagreements, "
        << secs << " s\n";
    for (const auto& [what, n] : stats.by_outcome) {
        out << "  " << what << ": " << n << "\n";
    }
    std::cout << out.str();
    RecordProperty("flows", std::to_string(stats.flows));
    if (n_policies >= kDefaultPolicies && n_flows >= kDefaultFlowsPerPolicy &&
        stats.failed_flows == 0) {
        EXPECT_GE(stats.flows, 10000u);
        EXPECT_GE(stats.policies, 50u);
        // Every outcome must be exercised, or the generator has drifted.
        for (const char* what : {"ingress allow-policy",
                                 "ingress policy-deny",
                                 "ingress default-deny",
                                 "ingress unlabeled",
                                 "ingress audit",
                                 "ingress no-endpoint",
                                 "egress allow-policy",
                                 "egress policy-deny",
                                 "egress default-deny",
                                 "egress unlabeled",
                                 "egress audit",
                                 "egress no-endpoint",
                                 "host ingress allow-policy",
                                 "host ingress policy-deny",
                                 "host ingress default-deny",
                                 "host ingress unlabeled",
                                 "host ingress audit",
                                 "host egress allow-policy",
                                 "host egress policy-deny",
                                 "host egress default-deny",
                                 "host egress unlabeled",
                                 "host egress audit"}) {
            EXPECT_GT(stats.by_outcome[what], 0u) << what;
        }
    }
}

// Fewer, larger policies: many identities, rules and port prefixes per local,
// so deny closure and prefix probing work on crowded (local, direction) groups.
TEST_F(Differential, KernelAgreesOnLargerPolicies) {
    const uint64_t base = envOr("ZTSEG_DIFF_SEED", kDefaultSeed) + 1'000'000;
    test::RandomPolicyOptions opts;
    opts.min_workloads = 12;
    opts.max_workloads = 30;
    opts.max_externals = 6;
    opts.min_policies = 6;
    opts.max_policies = 16;
    opts.max_rules_per_policy = 8;
    Stats stats;
    for (uint64_t i = 0; i < kLargePolicies; ++i) {
        if (!runSeed(base + i, kLargeFlowsPerPolicy, opts, stats)) {
            break;
        }
    }
    std::cout << "differential (larger policies): " << stats.flows << " flows across "
              << stats.policies << " policies (seeds " << base << ".." << base + kLargePolicies - 1
              << "), " << stats.failed_flows << " disagreements\n";
}

// Corners the random generator does not reach: policy text the parser accepts
// whose meaning depends on details outside the generator's vocabulary.

// Selector::str() is not injective for values the parser leaves unchecked
// (matchExpressions values may contain ','): "app in (web,api)" is both one
// value "web,api" (matches nobody) and two values web, api. Each selector must
// still be resolved on its own.
TEST_F(Differential, SelectorsWithTheSameTextFormAreResolvedApart) {
    const std::string yaml = R"(
workloads:
  - {name: web, labels: {app: web}, addresses: ["10.9.0.1", "fd00:9::1"]}
  - {name: api, labels: {app: api}, addresses: ["10.9.0.2"]}
  - {name: db, labels: {app: db}, addresses: ["10.9.0.3", "fd00:9::3"]}
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - action: deny   # a typo: one value "web,api", which no workload carries
        from: [{selector: {matchExpressions: [{key: app, operator: In, values: ["web,api"]}]}}]
      - from: [{selector: {matchExpressions: [{key: app, operator: In, values: [web, api]}]}}]
        ports: [{port: 5432, protocol: tcp}]
)";
    expectAgreement(yaml,
                    {
                        {"db", "10.9.0.3", "10.9.0.1", Direction::Ingress, ZTSEG_PROTO_TCP, 5432},
                        {"db", "10.9.0.3", "10.9.0.2", Direction::Ingress, ZTSEG_PROTO_TCP, 5432},
                        {"db", "fd00:9::3", "fd00:9::1", Direction::Ingress, ZTSEG_PROTO_TCP, 5432},
                    });
}

// The same for a matchExpressions key the parser does not check: Exists on the
// key "app=web" prints as "app=web", exactly like matchLabels {app: web}.
TEST_F(Differential, ExistsOnAnOddKeyIsNotMatchLabels) {
    const std::string yaml = R"(
workloads:
  - {name: web, labels: {app: web}, addresses: ["10.9.0.1"]}
  - {name: db, labels: {app: db}, addresses: ["10.9.0.3"]}
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{selector: {matchLabels: {app: web}}}]
        ports: [{port: 5432, protocol: tcp}]
      - action: deny
        from: [{selector: {matchExpressions: [{key: "app=web", operator: Exists}]}}]
)";
    expectAgreement(yaml,
                    {
                        {"db", "10.9.0.3", "10.9.0.1", Direction::Ingress, ZTSEG_PROTO_TCP, 5432},
                    });
}

// Host addresses are not part of the parser's one-owner-per-prefix check: a
// host address may equal a workload's. The evaluator then resolves the address
// to the workload (declared first); the kernel must do the same, whatever the
// inventory size (many entries, so the order of equal prefixes is put to the test).
TEST_F(Differential, HostAddressEqualToWorkloadAddress) {
    std::string yaml = "workloads:\n  - {name: db, labels: {app: db}, addresses: [\"10.9.1.1\"]}\n";
    std::string hosts = "hosts: [";
    std::vector<Flow> flows;
    for (int i = 1; i <= 40; ++i) {
        std::string a = "10.9.0." + std::to_string(i);
        yaml += "  - {name: web" + std::to_string(i) + ", labels: {app: web, n: \"" +
                std::to_string(i) + "\"}, addresses: [\"" + a + "\"]}\n";
        hosts += std::string(i > 1 ? ", " : "") + "\"" + a + "\"";
        flows.push_back({"db", "10.9.1.1", a, Direction::Ingress, ZTSEG_PROTO_TCP, 5432});
    }
    yaml += hosts + "]\n" + R"(policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{selector: {matchLabels: {app: web}}}]
        ports: [{port: 5432, protocol: tcp}]
)";
    expectAgreement(yaml, flows);
}

// The generator only produces what the parser accepts: its YAML rendering
// parses, numbers the rules the same way, compiles to the same rules, and the
// evaluator judges random flows the same on both.
TEST(RandomPolicy, GeneratedSetsParseAndRoundTrip) {
    auto ruleTuple = [](const Rule& r) {
        return std::tuple(r.local, r.peer, r.direction, r.protocol, r.ports.first, r.ports.last,
                          r.action, r.rule_id);
    };
    for (uint64_t seed = 1; seed <= 300; ++seed) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        std::mt19937_64 rng(seed);
        PolicySet ps = test::randomPolicySet(rng);
        std::string yaml = test::toYaml(ps);
        Diagnostics diags;
        PolicySet parsed;
        try {
            parsed = parsePolicies({{"random.yaml", yaml}}, diags);
        } catch (const PolicyError& e) {
            ADD_FAILURE() << e.what() << "\n" << yaml;
            continue;
        }
        ASSERT_EQ(parsed.workloads.size(), ps.workloads.size());
        ASSERT_EQ(parsed.policies.size(), ps.policies.size());
        for (size_t i = 0; i < ps.policies.size(); ++i) {
            ASSERT_EQ(parsed.policies[i].rules.size(), ps.policies[i].rules.size());
            for (size_t j = 0; j < ps.policies[i].rules.size(); ++j) {
                EXPECT_EQ(parsed.policies[i].rules[j].id, ps.policies[i].rules[j].id);
                EXPECT_EQ(parsed.policies[i].rules[j].direction, ps.policies[i].rules[j].direction);
            }
        }
        Diagnostics d1, d2;
        CompiledPolicy a = compile(ps, 1, d1), b = compile(parsed, 1, d2);
        ASSERT_EQ(a.rules.size(), b.rules.size()) << yaml;
        for (size_t i = 0; i < a.rules.size(); ++i) {
            EXPECT_EQ(ruleTuple(a.rules[i]), ruleTuple(b.rules[i])) << i;
        }
        Evaluator ea(ps), eb(parsed);
        for (int i = 0; i < 50; ++i) {
            RandomFlow f = test::randomFlow(rng, ps);
            const LabelSet& l = ps.workloads[f.local].labels;
            Evaluation x =
                ea.evaluate(l, ea.peerOfAddress(f.peer_address), f.direction, f.protocol, f.port);
            Evaluation y =
                eb.evaluate(l, eb.peerOfAddress(f.peer_address), f.direction, f.protocol, f.port);
            EXPECT_EQ(evalText(x), evalText(y)) << f.str(ps);
        }
    }
}

}  // namespace
}  // namespace ztseg::policy
