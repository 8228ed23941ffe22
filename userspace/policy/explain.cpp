#include "policy/explain.hpp"

#include <charconv>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "model/names.hpp"
#include "policy/parser.hpp"

namespace ztseg::policy {
namespace {

// The one label set (of a workload or external) that carries every given label.
LabelSet uniqueLabelSet(const PolicySet& ps, const std::string& text) {
    Selector want{parseLabels(text), {}};
    std::map<std::string, LabelSet> found;  // canonical -> labels
    for (const auto& w : ps.workloads) {
        if (want.matches(w.labels)) {
            found[canonical(w.labels)] = w.labels;
        }
    }
    for (const auto& e : ps.externals) {
        if (!e.labels.empty() && want.matches(e.labels)) {
            found[canonical(e.labels)] = e.labels;
        }
    }
    std::vector<std::string> matches;
    for (const auto& [c, l] : found) matches.push_back(c);
    requireOneLabelSet(text, matches);
    return found.begin()->second;
}

// A range (CIDR) is one party only if no declared address lies inside it:
// otherwise its addresses have different identities, and no single verdict
// describes it. Refused, naming what it holds.
void refuseDeclaredInside(const PolicySet& ps, const IpPrefix& range, const std::string& text) {
    if (range.length == range.maxLength()) {
        return;
    }
    std::vector<std::string> inside;
    std::set<std::string> seen;  // a rule's range may be a declared one
    auto note = [&](const IpPrefix& p, const std::string& who) {
        if (range.contains(p) && !(p == range) && seen.insert(p.str()).second) {
            inside.push_back(who + " (" + p.str() + ")");
        }
    };
    for (const auto& w : ps.workloads) {
        for (const auto& a : w.addresses) note(a, "workload " + w.name);
    }
    for (const auto& e : ps.externals) {
        for (const auto& c : e.cidrs) note(c, "external " + e.name);
    }
    for (const auto& h : ps.hosts) note(h, "host");
    // Ranges rules name (and their excepts) are identities of their own too.
    for (const auto& pol : ps.policies) {
        for (const auto& r : pol.rules) {
            for (const auto& spec : r.peers) {
                if (spec.kind != PeerSpec::Kind::Cidr) {
                    continue;
                }
                note(spec.cidr, "cidr");
                for (const auto& q : spec.except) note(q, "cidr");
            }
        }
    }
    refuseMixedRange(text, inside);
}

}  // namespace

Party hostParty(const PolicySet& ps, std::string text) {
    Party p;
    p.text = std::move(text);
    p.peer = Peer{Peer::Kind::Host, {}, ps.hosts, "host"};
    p.is_workload = selectsHost(ps);
    p.labels = Evaluator::hostLabels();
    p.is_host = true;
    return p;
}

namespace {

Party resolve(const PolicySet& ps, const Evaluator& ev, const std::string& text) {
    if (text == "host") {
        return hostParty(ps, text);
    }
    Party p;
    p.text = text;
    if (text.find('=') == std::string::npos) {
        IpPrefix addr = partyAddress(text);
        refuseDeclaredInside(ps, addr, text);
        p.peer = ev.peerOfAddress(addr);
        if (addr.length == addr.maxLength()) {
            p.address = addr;
        }
    } else {
        p.peer = ev.peerOfLabels(uniqueLabelSet(ps, text));
    }
    if (p.peer.kind == Peer::Kind::Host) {
        return hostParty(ps, text);
    }
    p.is_workload = p.peer.kind == Peer::Kind::Workload;
    p.labels = p.peer.labels;
    return p;
}

}  // namespace

std::pair<uint8_t, uint16_t> parseService(const std::string& text) {
    // Protocol names in any case ("5432/TCP" as Kubernetes spells it): protocolNumber.
    auto slash = text.find('/');
    if (slash == std::string::npos) {
        std::optional<uint8_t> icmp = protocolNumber(text);
        if (icmp == ZTSEG_PROTO_ICMP || icmp == ZTSEG_PROTO_ICMPV6) {
            return {*icmp, 0};
        }
    }
    std::string proto = slash == std::string::npos ? "tcp" : text.substr(slash + 1);
    std::string port = text.substr(0, slash);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    std::optional<uint8_t> known = protocolNumber(proto);
    uint8_t num = known && protocolHasPorts(*known) ? *known : 0;
    if (ec != std::errc() || end != port.data() + port.size() || v < 1 || v > 65535 || !num) {
        throw Error("invalid service '" + text +
                    "': expected PORT/PROTOCOL (tcp, udp, sctp, udplite, dccp), icmp or icmpv6");
    }
    return {num, uint16_t(v)};
}

std::string serviceText(uint8_t protocol, uint16_t port) {
    if (protocol == ZTSEG_PROTO_ICMP || protocol == ZTSEG_PROTO_ICMPV6) {
        return protocolName(protocol);
    }
    if (protocol == ZTSEG_PROTO_TCP || protocol == ZTSEG_PROTO_UDP ||
        protocol == ZTSEG_PROTO_SCTP) {
        return std::to_string(port) + "/" + protocolName(protocol);
    }
    return protocolName(protocol);
}

Explanation explainFlow(const PolicySet& ps, const std::string& from, const std::string& to,
                        const std::string& service, const std::vector<FailsafeRule>& failsafe) {
    Evaluator ev(ps);
    auto [proto, port] = parseService(service);
    Party src = resolve(ps, ev, from), dst = resolve(ps, ev, to);
    Explanation out = explainParties(ps, ev, src, dst, proto, port, service);
    applyFailsafe(out, src, dst, proto, port, failsafe);
    if (out.sides.empty()) {
        throw Error("neither '" + from + "' nor '" + to +
                    "' is a workload: ztseg judges flows at workloads");
    }
    return out;
}

namespace {

class ReferenceJudge final : public SideJudge {
  public:
    ReferenceJudge(const PolicySet& ps, const Evaluator& ev) : ps_(ps), ev_(ev) {}
    Evaluation evaluate(const Party& local, const Party& peer, Direction dir, uint8_t protocol,
                        uint16_t port) const override {
        return ev_.evaluate(local.labels, peer.peer, dir, protocol, port);
    }
    std::string ruleRef(uint32_t id) const override {
        for (const auto& pol : ps_.policies) {
            for (const auto& r : pol.rules) {
                if (r.id == id) {
                    return ruleRefText(id, pol.name, r.loc);
                }
            }
        }
        return "rule " + std::to_string(id);
    }

  private:
    const PolicySet& ps_;
    const Evaluator& ev_;
};

}  // namespace

void requireOneLabelSet(const std::string& text, const std::vector<std::string>& matches) {
    if (matches.empty()) {
        throw Error("no workload or external carries the labels '" + text + "'");
    }
    if (matches.size() > 1) {
        std::string list;
        for (const auto& c : matches) {
            list += (list.empty() ? "" : "; ") + c;
        }
        throw Error("'" + text + "' is ambiguous, it matches: " + list);
    }
}

IpPrefix partyAddress(const std::string& text) {
    try {
        return IpPrefix::parse(text);
    } catch (const Error&) {
        throw Error("'" + text + "' is neither labels (key=value,...) nor an IP address");
    }
}

void refuseMixedRange(const std::string& text, const std::vector<std::string>& owners) {
    if (owners.empty()) {
        return;
    }
    constexpr size_t kNamed = 5;
    std::string list;
    for (size_t i = 0; i < owners.size() && i < kNamed; ++i) {
        list += (i ? ", " : "") + owners[i];
    }
    if (owners.size() > kNamed) {
        list += " and " + std::to_string(owners.size() - kNamed) + " more";
    }
    throw Error("'" + text + "' is a range holding addresses of different identities: " + list +
                ": explain one of them (by labels, or one address)");
}

std::string ruleRefText(uint32_t id, const std::string& policy, const SourceLocation& loc) {
    return "rule " + std::to_string(id) + " of policy '" + policy + "' (" + loc.str() + ")";
}

Explanation explainParties(const PolicySet& ps, const Evaluator& ev, const Party& src,
                           const Party& dst, uint8_t proto, uint16_t port,
                           const std::string& service) {
    return explainSides(ReferenceJudge(ps, ev), src, dst, proto, port, service);
}

Explanation explainSides(const SideJudge& judge, const Party& src, const Party& dst, uint8_t proto,
                         uint16_t port, const std::string& service) {
    Explanation out{src.text, dst.text, service, true, false, {}};
    auto side = [&](const Party& local, const Party& peer, Direction dir) {
        ExplainSide s{dir, local.text, judge.evaluate(local, peer, dir, proto, port), ""};
        const Evaluation& e = s.evaluation;
        std::string flow = src.text + " -> " + dst.text + " on " + service;
        switch (e.reason) {
            case EvalReason::NotManaged:
                s.because = "not enforced: no policy selects " + local.text;
                break;
            case EvalReason::Allowed:
                s.because = "allowed by " + judge.ruleRef(e.rules.front());
                break;
            case EvalReason::PolicyDeny:
                s.because = "denied by " + judge.ruleRef(e.rules.front());
                break;
            case EvalReason::DefaultDeny:
                s.because = "default deny: no rule admits " + flow;
                break;
            case EvalReason::Unlabeled:
                s.because = "dropped: " + peer.peer.name + " has no identity";
                break;
        }
        if (e.would_drop) {
            s.because = "audit mode, would drop: " + s.because;
        }
        if (dir == Direction::Ingress && e.reason == EvalReason::NotManaged &&
            peer.peer.kind == Peer::Kind::Unlabeled) {
            // XDP drops sources without identity before any workload is known.
            s.evaluation.pass = false;
            s.evaluation.reason = EvalReason::Unlabeled;
            s.because = "dropped at XDP: " + peer.peer.name +
                        " has no identity (no policy selects " + local.text + ")";
        }
        out.allowed = out.allowed && s.evaluation.pass;
        out.would_drop = out.would_drop || s.evaluation.would_drop;
        out.sides.push_back(std::move(s));
    };
    if (src.is_workload) {
        side(src, dst, Direction::Egress);
    }
    if (dst.is_workload) {
        side(dst, src, Direction::Ingress);
    }
    return out;
}

std::string Explanation::text() const {
    std::string verdict = !allowed     ? "DENIED"
                          : would_drop ? "ALLOWED (audit: would be DENIED)"
                                       : "ALLOWED";
    std::string out = from + " -> " + to + " " + service + ": " + verdict + "\n";
    for (const auto& s : sides) {
        out += std::string("  ") +
               (s.direction == Direction::Egress ? "egress  at " : "ingress at ") + s.workload +
               ": " + s.because + "\n";
    }
    return out;
}

}  // namespace ztseg::policy
