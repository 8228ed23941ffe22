#include "policy/compiled_judge.hpp"

#include <algorithm>
#include <set>

#include "common/error.hpp"

namespace ztseg::policy {

Party CompiledJudge::partyOf(const IdentityInfo& id, std::string text) const {
    Party p;
    p.text = std::move(text);
    p.labels = id.labels;
    p.peer.labels = id.labels;
    p.peer.prefixes = id.prefixes;
    std::string names;
    for (const auto& n : id.names) names += (names.empty() ? "" : ",") + n;
    p.peer.name = names.empty() ? canonical(id.labels) : names;
    switch (id.kind) {
        case IdentityKind::Workload:
            p.peer.kind = Peer::Kind::Workload;
            p.is_workload = true;
            break;
        case IdentityKind::External:
            p.peer.kind = Peer::Kind::External;
            break;
        case IdentityKind::Cidr:
            p.peer.kind = Peer::Kind::Cidr;
            break;
        case IdentityKind::Reserved:
            p.peer.kind = id.id == kHostIdentity ? Peer::Kind::Host : Peer::Kind::World;
            // the host is judged as a local side once a policy selects it
            p.is_workload = id.id == kHostIdentity && cp_.modes.count(kHostIdentity) != 0;
            p.is_host = id.id == kHostIdentity;
            break;
    }
    return p;
}

// "workload web", "external partner", "host", as explain names owners.
std::string CompiledJudge::ownerText(IdentityId id) const {
    const IdentityInfo* info = cp_.identity(id);
    if (!info) {
        return "identity " + std::to_string(id);
    }
    std::string names;
    for (const auto& n : info->names) names += (names.empty() ? "" : ",") + n;
    switch (info->kind) {
        case IdentityKind::Workload:
            return "workload " + names;
        case IdentityKind::External:
            return "external " + names;
        case IdentityKind::Cidr:
            return "cidr";
        case IdentityKind::Reserved:
            break;
    }
    return id == kHostIdentity ? "host" : "external " + names;
}

Party CompiledJudge::resolve(const std::string& text) const {
    if (text == "host") {
        if (const IdentityInfo* host = cp_.identity(kHostIdentity)) {
            return partyOf(*host, text);
        }
        Party p;
        p.text = text;
        p.peer = Peer{Peer::Kind::Host, {}, {}, "host"};
        p.is_host = true;
        return p;
    }
    if (text.find('=') != std::string::npos) {
        Selector want{parseLabels(text), {}};
        std::vector<const IdentityInfo*> found;
        for (const IdentityInfo& id : cp_.identities) {
            bool named = id.kind == IdentityKind::Workload ||
                         (id.kind == IdentityKind::External && !id.labels.empty());
            if (named && want.matches(id.labels)) {
                found.push_back(&id);
            }
        }
        std::vector<std::string> matches;
        for (const IdentityInfo* id : found) matches.push_back(canonical(id->labels));
        requireOneLabelSet(text, matches);
        return partyOf(*found.front(), text);
    }
    const IpPrefix addr = partyAddress(text);
    // A range is one party only if the inventory gives all of it one identity.
    if (addr.length != addr.maxLength()) {
        std::vector<std::string> inside;
        for (const IdentityPrefix& e : cp_.inventory) {
            if (addr.contains(e.prefix) && !(e.prefix == addr)) {
                inside.push_back(ownerText(e.identity) + " (" + e.prefix.str() + ")");
            }
        }
        refuseMixedRange(text, inside);
    }
    const IdentityPrefix* best = nullptr;
    for (const IdentityPrefix& e : cp_.inventory) {
        if (e.prefix.contains(addr) && (!best || e.prefix.length > best->prefix.length)) {
            best = &e;
        }
    }
    const IdentityInfo* info = best ? cp_.identity(best->identity) : nullptr;
    Party p;
    if (!info) {
        p.text = text;
        p.peer = Peer{Peer::Kind::Unlabeled, {}, {}, "unlabeled " + addr.str()};
    } else {
        p = partyOf(*info, text);
    }
    if (addr.length == addr.maxLength()) {
        p.address = addr;
    }
    return p;
}

const IdentityInfo* CompiledJudge::identityOf(const Party& p) const {
    if (p.peer.kind == Peer::Kind::Unlabeled) {
        return nullptr;
    }
    for (const IdentityInfo& id : cp_.identities) {
        if (id.labels == p.peer.labels) {
            return &id;
        }
    }
    return nullptr;
}

Evaluation CompiledJudge::evaluate(const Party& local, const Party& peer, Direction dir,
                                   uint8_t protocol, uint16_t port) const {
    Evaluation ev;
    const IdentityInfo* me = identityOf(local);
    auto mode = me ? cp_.modes.find(me->id) : cp_.modes.end();
    if (mode == cp_.modes.end() || mode->second == WorkloadMode::Unmanaged) {
        ev.pass = true;
        ev.reason = EvalReason::NotManaged;
        return ev;
    }
    const bool audit = mode->second == WorkloadMode::Audit;
    const IdentityInfo* other = identityOf(peer);
    std::set<uint32_t> allows, denies;
    if (other) {
        for (const Rule& r : cp_.rules) {
            bool port_ok = r.ports.isAny() || (protocolHasPorts(protocol) &&
                                               port >= r.ports.first && port <= r.ports.last);
            if (r.local == me->id && r.direction == dir &&
                (r.peer == kAnyIdentity || r.peer == other->id) &&
                (r.protocol == kAnyProtocol || r.protocol == protocol) && port_ok) {
                (r.action == Action::Deny ? denies : allows).insert(r.rule_id);
            }
        }
    }
    const std::set<uint32_t>* deciding = nullptr;
    if (!other) {
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
        ev.rules.assign(deciding->begin(), deciding->end());
    }
    ev.pass = ev.reason == EvalReason::Allowed || audit;
    ev.would_drop = audit && ev.reason != EvalReason::Allowed;
    return ev;
}

std::string CompiledJudge::ruleRef(uint32_t id) const {
    const RuleSource* s = cp_.source(id);
    if (!s) {
        return "rule " + std::to_string(id);
    }
    return ruleRefText(id, s->policy, s->loc);
}

Explanation explainCompiled(const CompiledPolicy& cp, const std::string& from,
                            const std::string& to, const std::string& service,
                            const std::vector<FailsafeRule>& failsafe) {
    CompiledJudge judge(cp);
    auto [proto, port] = parseService(service);
    Party src = judge.resolve(from), dst = judge.resolve(to);
    Explanation out = explainSides(judge, src, dst, proto, port, service);
    applyFailsafe(out, src, dst, proto, port, failsafe);
    if (out.sides.empty()) {
        throw Error("neither '" + from + "' nor '" + to +
                    "' is a workload: ztseg judges flows at workloads");
    }
    return out;
}

}  // namespace ztseg::policy
