#include "flows/flow_judge.hpp"

#include <algorithm>

#include "common/error.hpp"

namespace ztseg::flows {

using policy::Party;
using policy::Peer;

bool isPolicyDecision(const FlowRecord& r) {
    if (r.summary) {
        return false;  // many drops on many ports: no one flow to judge again
    }
    static const char* const kDecisions[] = {"allow-policy", "no-endpoint", "audit",
                                             "unlabeled",    "policy-deny", "default-deny"};
    return std::any_of(std::begin(kDecisions), std::end(kDecisions),
                       [&](const char* d) { return r.reason == d; });
}

FlowJudge::FlowJudge(const policy::PolicySet& ps) : ps_(ps), ev_(ps) {
    for (const auto& w : ps.workloads) {
        known_.push_back(w.labels);
    }
    for (const auto& e : ps.externals) {
        if (!e.labels.empty()) {
            known_.push_back(e.labels);
        }
    }
}

std::string FlowJudge::labelText(const policy::LabelSet& labels) const {
    return policy::canonical(policy::minimalLabels(labels, known_));
}

Party FlowJudge::byAddress(const FlowEndpoint& ep) const {
    Party p;
    IpPrefix addr;
    try {
        addr = IpPrefix::parse(ep.ip);
    } catch (const Error&) {
        p.text = ep.ip + " (not an address)";
        p.peer = Peer{Peer::Kind::Unlabeled, {}, {}, "unlabeled " + ep.ip};
        return p;
    }
    p.peer = ev_.peerOfAddress(addr);
    switch (p.peer.kind) {
        case Peer::Kind::Workload:
            p.is_workload = true;
            p.labels = p.peer.labels;
            p.text = labelText(p.labels);
            break;
        case Peer::Kind::External:
            p.text = labelText(p.peer.labels);
            break;
        case Peer::Kind::Unlabeled:
            p.text = ep.ip + " (unlabeled)";
            p.peer.name = ep.ip;  // "10.1.2.3 has no identity"
            break;
        case Peer::Kind::Host:
            return policy::hostParty(ps_, p.peer.name + " " + ep.ip);
        case Peer::Kind::Cidr:
        case Peer::Kind::World:
            p.text = p.peer.name + " " + ep.ip;
            break;
    }
    return p;
}

std::optional<Party> FlowJudge::byWorkloadName(const std::string& name) const {
    if (name.empty()) {
        return std::nullopt;
    }
    // Workloads sharing one identity come as "a,b": any of them has the labels.
    std::string first = name.substr(0, name.find(','));
    for (const auto& w : ps_.workloads) {
        if (w.name == first) {
            Party p;
            p.is_workload = true;
            p.labels = w.labels;
            p.peer = Peer{Peer::Kind::Workload, w.labels, {}, w.name};
            p.text = labelText(w.labels);
            return p;
        }
    }
    return std::nullopt;
}

std::pair<Party, Party> FlowJudge::parties(const FlowRecord& r) const {
    bool egress = r.direction == Direction::Egress;
    const FlowEndpoint& local = egress ? r.src : r.dst;
    const FlowEndpoint& remote = egress ? r.dst : r.src;
    std::optional<Party> l = byWorkloadName(r.workload);
    // judged as the host (ztseg_judge's local identity), whatever its address
    if (!l && local.identity == kHostIdentity) {
        l = policy::hostParty(ps_, "host " + local.ip);
    }
    Party lp = l ? *l : byAddress(local);
    Party rp = byAddress(remote);
    return egress ? std::make_pair(lp, rp) : std::make_pair(rp, lp);
}

policy::Explanation FlowJudge::explain(const FlowRecord& r) const {
    auto [src, dst] = parties(r);
    uint16_t port =
        r.protocol == ZTSEG_PROTO_ICMP || r.protocol == ZTSEG_PROTO_ICMPV6 ? 0 : r.dst.port;
    return policy::explainParties(ps_, ev_, src, dst, r.protocol, port,
                                  policy::serviceText(r.protocol, r.dst.port));
}

Judgement FlowJudge::judge(const FlowRecord& r) const {
    const bool egress = r.direction == Direction::Egress;
    auto [src, dst] = parties(r);
    Judgement j;
    j.by_policy = src.is_workload || dst.is_workload;
    if (j.by_policy) {
        policy::Explanation ex = explain(r);
        for (const auto& s : ex.sides) {
            if (s.direction != r.direction) {
                continue;
            }
            const policy::Evaluation& e = s.evaluation;
            j.verdict = !e.pass ? "dropped" : e.would_drop ? "would-drop" : "allowed";
            j.reason = std::string(policy::evalReasonName(e.reason));
            j.at = std::string(egress ? "egress" : "ingress") + " at " + s.workload;
            j.because = s.because;
            j.rules = e.rules;
            return j;
        }
    }
    // The observing end is no workload of this policy: nothing judges it
    // there, except XDP, which drops sources without an identity.
    const std::string local = egress ? src.text : dst.text;
    j.at = std::string(egress ? "egress" : "ingress") + " at " + local;
    if (!egress && src.peer.kind == Peer::Kind::Unlabeled) {
        j.verdict = "dropped";
        j.reason = "unlabeled";
        j.because = "dropped at XDP: " + src.text + " has no identity";
    } else {
        j.verdict = "allowed";
        j.reason = "no-endpoint";
        j.because = "not enforced: " + local + " is no workload of this policy";
    }
    return j;
}

}  // namespace ztseg::flows
