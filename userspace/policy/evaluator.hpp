// The reference evaluator: docs/design.md#policy-model for one new flow, computed straight
// from the parsed policy with deliberately plain code (linear scans, no
// identities, no maps). The differential test holds the BPF datapath to it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "policy/model.hpp"

namespace ztseg::policy {

// Who the peer of a flow is, as policy sees it.
struct Peer {
    enum class Kind { Unlabeled, Workload, External, Cidr, Host, World };
    Kind kind = Kind::Unlabeled;
    LabelSet labels;                 // Workload, External
    std::vector<IpPrefix> prefixes;  // every range of this peer (External, Cidr, World)
    std::string name;                // for output
};

enum class EvalReason { NotManaged, Allowed, PolicyDeny, DefaultDeny, Unlabeled };
std::string_view evalReasonName(EvalReason r);  // matches the datapath's reason names

struct Evaluation {
    bool pass = false;
    bool would_drop = false;  // audit mode: passed, but `reason` says why it would drop
    EvalReason reason = EvalReason::DefaultDeny;
    std::vector<uint32_t> rules;     // ids of every matching rule of the deciding action
    const RuleSpec* rule = nullptr;  // the first of them (lowest id)
};

class Evaluator {
  public:
    explicit Evaluator(const PolicySet& ps);

    // The peer an address belongs to: the owner of the longest declared prefix
    // containing it (workload addresses, externals, hosts, CIDRs named in rules).
    Peer peerOfAddress(const IpPrefix& address) const;
    // A peer named by labels (exactly a workload's or external's label set).
    Peer peerOfLabels(const LabelSet& labels) const;

    // The local side "the host itself" (processes of the host network
    // namespace outside workload cgroups): pass it as `local` to evaluate()
    // and selecting(). Only `entity: host` policies select it.
    static const LabelSet& hostLabels();

    // A new flow of the local workload `local` with `peer`; port is the
    // destination port of the flow (ignored for ICMP: pass 0).
    Evaluation evaluate(const LabelSet& local, const Peer& peer, Direction dir, uint8_t protocol,
                        uint16_t port) const;

    // Policies that select a workload with these labels.
    std::vector<const PolicySpec*> selecting(const LabelSet& local) const;

  private:
    struct Owner {
        IpPrefix prefix;
        Peer peer;
    };
    const PolicySet& ps_;
    std::vector<Owner> owners_;
};

}  // namespace ztseg::policy
