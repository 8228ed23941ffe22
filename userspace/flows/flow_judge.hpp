// A recorded flow re-judged against a policy the way the datapath judges a
// new flow: the local end (where the event was observed) by its workload name
// when the policy declares it, else by address; the other end by address
// (longest declared prefix), as the datapath's identity map does. Shared by
// `ztsegctl explain` (of a flow event), `whatif` and `suggest`.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "flows/flow_record.hpp"
#include "policy/explain.hpp"

namespace ztseg::flows {

// False for events that policy does not decide: packets of tracked
// connections, related ICMP, malformed packets, fragments, traffic not
// subject to policy, and summaries of one source's drops.
bool isPolicyDecision(const FlowRecord& r);

struct Judgement {
    std::string verdict;  // "allowed", "dropped", "would-drop"
    std::string reason;   // datapath reason names: allow-policy, default-deny, ...
    std::string at;       // "ingress at app=db", "egress at app=web"
    std::string because;  // the explanation's sentence, with rule and file:line
    std::vector<uint32_t> rules;
    bool by_policy = false;  // an end is a workload of the policy (else nothing of it judges)
};

class FlowJudge {
  public:
    // Keeps a reference to ps.
    explicit FlowJudge(const policy::PolicySet& ps);

    // (source, destination) as the policy sees them.
    std::pair<policy::Party, policy::Party> parties(const FlowRecord& r) const;
    // The whole flow: each end that is a workload of the policy.
    policy::Explanation explain(const FlowRecord& r) const;
    // The verdict at the end the event was observed at (its direction).
    Judgement judge(const FlowRecord& r) const;

    // "app=web": the fewest labels that name this label set among the policy's.
    std::string labelText(const policy::LabelSet& labels) const;
    const std::vector<policy::LabelSet>& knownLabelSets() const { return known_; }
    const policy::Evaluator& evaluator() const { return ev_; }

  private:
    policy::Party byAddress(const FlowEndpoint& ep) const;
    std::optional<policy::Party> byWorkloadName(const std::string& name) const;

    const policy::PolicySet& ps_;
    policy::Evaluator ev_;
    std::vector<policy::LabelSet> known_;  // every workload's and labeled external's
};

}  // namespace ztseg::flows
