// `ztsegctl explain`: the verdict for a flow between two named parties and
// the rule (file:line) that decides each side, from the reference evaluator.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "model/failsafe.hpp"
#include "policy/evaluator.hpp"

namespace ztseg::policy {

struct ExplainSide {
    Direction direction;   // egress at the source, ingress at the destination
    std::string workload;  // e.g. "app=web"
    Evaluation evaluation;
    std::string because;  // human sentence with file:line
};

struct Explanation {
    std::string from, to, service;   // "app=web", "app=db", "5432/tcp"
    bool allowed = true;             // every enforcing side passes
    bool would_drop = false;         // allowed only because of audit mode
    std::vector<ExplainSide> sides;  // one per side that is a local workload
    std::string text() const;
};

// One end of a flow as explain sees it.
struct Party {
    std::string text;  // how output names it, e.g. "app=web" or "10.9.9.9 (unlabeled)"
    Peer peer;         // as the other end's policy sees it
    bool is_workload = false;
    LabelSet labels;                  // the workload's labels when is_workload
    bool is_host = false;             // the host itself (failsafe rules apply to its side)
    std::optional<IpPrefix> address;  // given as one address (failsafe rules match it)
};

// The host itself as a party (its `hosts` addresses as a peer), judged as a
// local side when a policy selects it (`entity: host`).
Party hostParty(const PolicySet& ps, std::string text);

// Both sides of a new flow between resolved parties (egress at the source,
// ingress at the destination, for each that is a workload), judged by the
// reference evaluator.
Explanation explainParties(const PolicySet& ps, const Evaluator& ev, const Party& src,
                           const Party& dst, uint8_t protocol, uint16_t port,
                           const std::string& service);

// What decides one side of a flow, and how a rule id is named in sentences:
// the reference evaluator over policy files, or a compiled bundle
// (compiled_judge.hpp, `explain --live`).
struct SideJudge {
    virtual ~SideJudge() = default;
    virtual Evaluation evaluate(const Party& local, const Party& peer, Direction dir,
                                uint8_t protocol, uint16_t port) const = 0;
    // "rule 3 of policy 'db' (policies/db.yaml:12:9)"
    virtual std::string ruleRef(uint32_t id) const = 0;
};
// How both judges refuse a party, worded once.
// Throws unless exactly one label set (canonical text) carries every label of `text`.
void requireOneLabelSet(const std::string& text, const std::vector<std::string>& matches);
// `text` as an address or range; throws naming it otherwise.
IpPrefix partyAddress(const std::string& text);
// Throws when the range `text` holds addresses of other identities: `owners`
// names them, e.g. "workload web (10.0.0.1/32)".
void refuseMixedRange(const std::string& text, const std::vector<std::string>& owners);

// "rule 3 of policy 'db' (policies/db.yaml:12:9)"
std::string ruleRefText(uint32_t id, const std::string& policy, const SourceLocation& loc);

Explanation explainSides(const SideJudge& judge, const Party& src, const Party& dst,
                         uint8_t protocol, uint16_t port, const std::string& service);

// "5432/tcp", "53/udp", "icmp", "47" (a protocol without ports: its number).
std::string serviceText(uint8_t protocol, uint16_t port);

// A party: "key=value[,key=value]" (a workload's or external's labels) or an
// IP address. Service: "5432/tcp", "53/udp", "icmp", "icmpv6". Throws Error
// on a malformed argument or labels that name nothing.
Explanation explainFlow(const PolicySet& ps, const std::string& from, const std::string& to,
                        const std::string& service, const std::vector<FailsafeRule>& failsafe = {});

// ztsegd.yaml's failsafe rules over an explanation: the host's side of a flow
// with a peer address a failsafe rule admits is decided by that rule, whatever
// the host policy (or, with no host policy, the unlabeled-source check) says.
void applyFailsafe(Explanation& ex, const Party& src, const Party& dst, uint8_t protocol,
                   uint16_t port, const std::vector<FailsafeRule>& failsafe);

// "5432/tcp" -> protocol 6, port 5432. Throws Error naming the text.
std::pair<uint8_t, uint16_t> parseService(const std::string& text);

}  // namespace ztseg::policy
