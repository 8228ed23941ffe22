// `explain --live` judges from a compiled bundle (CompiledJudge): it must give
// the explanation `explain` gives from the policy files it was compiled from.
// Checked on the example policies (every pair of parties, every service their
// rules name, word for word) and on seeded random policies and flows against
// the reference evaluator.
#include "policy/compiled_judge.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <iostream>
#include <random>
#include <set>

#include "model/names.hpp"
#include "policy/bundle.hpp"
#include "policy/parser.hpp"
#include "random_policy.hpp"

namespace ztseg::policy {
namespace {

std::string outcome(const std::function<Explanation()>& f) {
    try {
        return f().text();
    } catch (const Error& e) {
        return std::string("error: ") + e.what();
    }
}

TEST(CompiledJudge, ExplainsTheExamplePoliciesWordForWordLikeThePolicyFiles) {
    Diagnostics diags;
    PolicySet ps = loadPolicies({std::string(ZTSEG_SOURCE_DIR) + "/policies"}, diags);
    // As ztsegd holds it: through the bundle's bytes.
    CompiledPolicy cp = parseBundle(serializeBundle(compile(ps, 1, diags)));

    std::set<std::string> parties{"10.99.99.99", "8.8.8.8", "10.0.0.11", "10.10.0.0/16",
                                  "app=nothing"};
    for (const auto& w : ps.workloads) {
        parties.insert(canonical(w.labels));
        parties.insert(w.labels.begin()->first + "=" + w.labels.begin()->second);
        for (const auto& a : w.addresses) parties.insert(a.str());
    }
    for (const auto& e : ps.externals) {
        if (!e.labels.empty())
            parties.insert(canonical(e.labels));
        for (const auto& c : e.cidrs) parties.insert(c.str());
    }
    std::set<std::string> services{"icmp", "icmpv6", "9/tcp", "53/udp", "47/sctp"};
    for (const auto& p : ps.policies) {
        for (const auto& r : p.rules) {
            for (const auto& s : r.ports) {
                if (protocolHasPorts(s.protocol)) {
                    services.insert(std::to_string(s.ports.first) + "/" + protocolName(s.protocol));
                    services.insert(std::to_string(s.ports.last) + "/" + protocolName(s.protocol));
                }
            }
        }
    }
    size_t compared = 0, explained = 0;
    for (const auto& from : parties) {
        for (const auto& to : parties) {
            for (const auto& svc : services) {
                std::string files = outcome([&] { return explainFlow(ps, from, to, svc); });
                std::string live = outcome([&] { return explainCompiled(cp, from, to, svc); });
                // Refusals agree on what is refused; a range lists its owners
                // in inventory order rather than file order.
                auto head = [](const std::string& t) { return t.substr(0, t.find(": ")); };
                if (files.rfind("error: ", 0) == 0) {
                    ASSERT_EQ(head(live.substr(7)), head(files.substr(7)))
                        << from << " -> " << to << " " << svc << "\n"
                        << live << "\n"
                        << files;
                } else {
                    ASSERT_EQ(live, files) << from << " -> " << to << " " << svc;
                }
                ++compared;
                explained += files.rfind("error: ", 0) != 0;
            }
        }
    }
    std::cout << "[info] " << compared << " explanations compared, " << explained
              << " of them verdicts\n";
    EXPECT_GT(explained, compared / 4) << "most pairs must be judged, not refused";
}

TEST(CompiledJudge, AgreesWithTheReferenceEvaluatorOnRandomPolicies) {
    constexpr int kPolicies = 200, kFlows = 100;
    size_t decided = 0;
    for (int seed = 1; seed <= kPolicies; ++seed) {
        std::mt19937_64 rng{uint64_t(seed)};
        PolicySet ps = test::randomPolicySet(rng);
        Diagnostics diags;
        CompiledPolicy cp = compile(ps, 1, diags);
        Evaluator ref(ps);
        CompiledJudge judge(cp);
        for (int i = 0; i < kFlows; ++i) {
            test::RandomFlow f = test::randomFlow(rng, ps);
            const auto& w = ps.workloads[f.local];
            Party local;
            local.text = w.name;
            local.peer = Peer{Peer::Kind::Workload, w.labels, {}, w.name};
            local.is_workload = true;
            local.labels = w.labels;
            Evaluation want = ref.evaluate(w.labels, ref.peerOfAddress(f.peer_address), f.direction,
                                           f.protocol, f.port);
            Evaluation got = judge.evaluate(local, judge.resolve(f.peer_address.str()), f.direction,
                                            f.protocol, f.port);
            const std::string ctx =
                "seed " + std::to_string(seed) + ": " + f.str(ps) + "\n" + test::toYaml(ps);
            ASSERT_EQ(evalReasonName(got.reason), evalReasonName(want.reason)) << ctx;
            ASSERT_EQ(got.pass, want.pass) << ctx;
            ASSERT_EQ(got.would_drop, want.would_drop) << ctx;
            ASSERT_EQ(got.rules, want.rules) << ctx;
            decided += want.reason != EvalReason::NotManaged;
        }
    }
    EXPECT_GT(decided, size_t(kPolicies * kFlows / 4));
}

}  // namespace
}  // namespace ztseg::policy
