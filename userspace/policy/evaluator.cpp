#include "policy/evaluator.hpp"

#include <algorithm>

namespace ztseg::policy {
namespace {

bool peerMatches(const PeerSpec& spec, const Peer& peer) {
    using K = Peer::Kind;
    switch (spec.kind) {
        case PeerSpec::Kind::Any:
            return peer.kind != K::Unlabeled;
        case PeerSpec::Kind::Host:
            return peer.kind == K::Host;
        case PeerSpec::Kind::World:
            return peer.kind == K::External || peer.kind == K::Cidr || peer.kind == K::World;
        case PeerSpec::Kind::Selector:
            return (peer.kind == K::Workload || peer.kind == K::External) &&
                   spec.selector.matches(peer.labels);
        case PeerSpec::Kind::Cidr:
            if (peer.kind != K::External && peer.kind != K::Cidr && peer.kind != K::World) {
                return false;
            }
            for (const IpPrefix& q : peer.prefixes) {
                if (!spec.cidr.contains(q)) {
                    return false;
                }
                for (const IpPrefix& e : spec.except) {
                    if (e.contains(q)) {
                        return false;
                    }
                }
            }
            return !peer.prefixes.empty();
    }
    return false;
}

bool portMatches(const PortSpec& spec, uint8_t protocol, uint16_t port) {
    if (spec.protocol != ZTSEG_PROTO_ANY && spec.protocol != protocol) {
        return false;
    }
    if (!protocolHasPorts(protocol)) {
        return spec.ports.isAny();  // no ports: a port-restricted rule never matches
    }
    return port >= spec.ports.first && port <= spec.ports.last;
}

}  // namespace

std::string_view evalReasonName(EvalReason r) {
    switch (r) {
        case EvalReason::NotManaged:
            return "no-endpoint";
        case EvalReason::Allowed:
            return "allow-policy";
        case EvalReason::PolicyDeny:
            return "policy-deny";
        case EvalReason::DefaultDeny:
            return "default-deny";
        case EvalReason::Unlabeled:
            return "unlabeled";
    }
    return "unknown";
}

Evaluator::Evaluator(const PolicySet& ps) : ps_(ps) {
    // Every declared range with the peer it stands for. Peers with the same
    // labels are one peer (one identity), so their ranges are gathered.
    auto add = [&](const IpPrefix& p, Peer peer) { owners_.push_back({p, std::move(peer)}); };
    for (const auto& w : ps.workloads) {
        for (const auto& a : w.addresses) {
            add(a, Peer{Peer::Kind::Workload, w.labels, {}, w.name});
        }
    }
    Peer world{Peer::Kind::World, {}, {}, "world"};
    for (const auto& e : ps.externals) {
        if (e.labels.empty()) {
            world.prefixes.insert(world.prefixes.end(), e.cidrs.begin(), e.cidrs.end());
        }
    }
    for (const auto& e : ps.externals) {
        Peer peer = e.labels.empty() ? world : Peer{Peer::Kind::External, e.labels, {}, e.name};
        if (!e.labels.empty()) {
            for (const auto& other : ps.externals) {
                if (other.labels == e.labels) {
                    peer.prefixes.insert(peer.prefixes.end(), other.cidrs.begin(),
                                         other.cidrs.end());
                }
            }
        }
        for (const auto& c : e.cidrs) {
            add(c, peer);
        }
    }
    for (const auto& h : ps.hosts) {
        add(h, Peer{Peer::Kind::Host, {}, ps.hosts, "host"});
    }
    for (const auto& p : ps.policies) {
        for (const auto& r : p.rules) {
            for (const auto& spec : r.peers) {
                if (spec.kind != PeerSpec::Kind::Cidr) {
                    continue;
                }
                std::vector<IpPrefix> ranges = spec.except;
                ranges.push_back(spec.cidr);
                for (const auto& q : ranges) {
                    bool owned = std::any_of(owners_.begin(), owners_.end(),
                                             [&](const Owner& o) { return o.prefix == q; });
                    if (!owned) {
                        add(q, Peer{Peer::Kind::Cidr, {}, {q}, "cidr " + q.str()});
                    }
                }
            }
        }
    }
}

Peer Evaluator::peerOfAddress(const IpPrefix& address) const {
    const Owner* best = nullptr;
    for (const Owner& o : owners_) {
        if (o.prefix.contains(address) && (!best || o.prefix.length > best->prefix.length)) {
            best = &o;
        }
    }
    if (!best) {
        return Peer{Peer::Kind::Unlabeled, {}, {}, "unlabeled " + address.str()};
    }
    return best->peer;
}

Peer Evaluator::peerOfLabels(const LabelSet& labels) const {
    for (const auto& w : ps_.workloads) {
        if (w.labels == labels) {
            return Peer{Peer::Kind::Workload, labels, {}, w.name};
        }
    }
    for (const Owner& o : owners_) {
        if (o.peer.kind == Peer::Kind::External && o.peer.labels == labels) {
            return o.peer;
        }
    }
    return Peer{Peer::Kind::Unlabeled, {}, {}, "unlabeled"};
}

const LabelSet& Evaluator::hostLabels() {
    static const LabelSet host{{"ztseg.io/reserved", "host"}};
    return host;
}

std::vector<const PolicySpec*> Evaluator::selecting(const LabelSet& local) const {
    std::vector<const PolicySpec*> out;
    const bool host = local == hostLabels();
    for (const auto& p : ps_.policies) {
        if (host ? p.subject == PolicySubject::Host
                 : p.subject == PolicySubject::Workloads && p.selector.matches(local)) {
            out.push_back(&p);
        }
    }
    return out;
}

Evaluation Evaluator::evaluate(const LabelSet& local, const Peer& peer, Direction dir,
                               uint8_t protocol, uint16_t port) const {
    Evaluation ev;
    std::vector<const PolicySpec*> policies = selecting(local);
    if (policies.empty()) {
        ev.pass = true;
        ev.reason = EvalReason::NotManaged;
        return ev;
    }
    bool audit = std::any_of(policies.begin(), policies.end(),
                             [](const PolicySpec* p) { return p->mode == WorkloadMode::Audit; });
    std::vector<const RuleSpec*> allows, denies;
    if (peer.kind != Peer::Kind::Unlabeled) {
        for (const PolicySpec* p : policies) {
            for (const RuleSpec& r : p->rules) {
                if (r.direction != dir) {
                    continue;
                }
                bool peer_ok = std::any_of(r.peers.begin(), r.peers.end(),
                                           [&](const PeerSpec& s) { return peerMatches(s, peer); });
                bool port_ok = r.ports.empty() ||
                               std::any_of(r.ports.begin(), r.ports.end(), [&](const PortSpec& s) {
                                   return portMatches(s, protocol, port);
                               });
                if (peer_ok && port_ok) {
                    (r.action == Action::Deny ? denies : allows).push_back(&r);
                }
            }
        }
    }
    const std::vector<const RuleSpec*>* deciding = nullptr;
    if (peer.kind == Peer::Kind::Unlabeled) {
        ev.reason = EvalReason::Unlabeled;
    } else if (!denies.empty()) {
        ev.reason = EvalReason::PolicyDeny;
        deciding = &denies;
    } else if (!allows.empty()) {
        ev.reason = EvalReason::Allowed;
        deciding = &allows;
    } else {
        ev.reason = EvalReason::DefaultDeny;
    }
    if (deciding) {
        for (const RuleSpec* r : *deciding) {
            ev.rules.push_back(r->id);
        }
        std::sort(ev.rules.begin(), ev.rules.end());
        ev.rule =
            *std::min_element(deciding->begin(), deciding->end(),
                              [](const RuleSpec* a, const RuleSpec* b) { return a->id < b->id; });
    }
    ev.pass = ev.reason == EvalReason::Allowed || audit;
    ev.would_drop = audit && ev.reason != EvalReason::Allowed;
    return ev;
}

}  // namespace ztseg::policy
