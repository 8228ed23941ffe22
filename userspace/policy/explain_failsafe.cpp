// explain and the host's failsafe rules (model/failsafe.hpp): the datapath
// admits a failsafe flow before any host policy or the unlabeled-source
// check (bpf/include/verdict.h, ingress.h); explain says so.
#include <algorithm>

#include "policy/explain.hpp"

namespace ztseg::policy {
namespace {

// The host's side of the flow, decided by `rule`: replaces the side the
// policy gave (or adds it, when no policy selects the host).
void decideByRule(Explanation& ex, const Party& host, Direction dir, const FailsafeRule& rule) {
    ExplainSide s{dir, host.text, {}, ""};
    s.evaluation.pass = true;
    s.evaluation.reason = EvalReason::Allowed;
    s.because = "admitted by failsafe rule '" + rule.name + "' (" + rule.flowText() + ", " +
                rule.origin + "), whatever the host policy says";
    auto it = std::find_if(ex.sides.begin(), ex.sides.end(),
                           [&](const ExplainSide& x) { return x.direction == dir; });
    if (it != ex.sides.end()) {
        *it = std::move(s);
    } else if (dir == Direction::Egress) {
        ex.sides.insert(ex.sides.begin(), std::move(s));
    } else {
        ex.sides.push_back(std::move(s));
    }
}

}  // namespace

void applyFailsafe(Explanation& ex, const Party& src, const Party& dst, uint8_t protocol,
                   uint16_t port, const std::vector<FailsafeRule>& failsafe) {
    if (failsafe.empty()) {
        return;
    }
    auto match = [&](Direction dir, const Party& peer) -> const FailsafeRule* {
        if (!peer.address) {
            return nullptr;
        }
        return matchFailsafe(failsafe, dir, protocol, port, peer.address->family,
                             peer.address->addr.data());
    };
    bool changed = false;
    if (dst.is_host) {
        if (const FailsafeRule* r = match(Direction::Ingress, src)) {
            decideByRule(ex, dst, Direction::Ingress, *r);
            changed = true;
        }
    }
    if (src.is_host) {
        if (const FailsafeRule* r = match(Direction::Egress, dst)) {
            decideByRule(ex, src, Direction::Egress, *r);
            changed = true;
        }
    }
    if (!changed) {
        return;
    }
    ex.allowed = std::all_of(ex.sides.begin(), ex.sides.end(),
                             [](const ExplainSide& s) { return s.evaluation.pass; });
    ex.would_drop = std::any_of(ex.sides.begin(), ex.sides.end(),
                                [](const ExplainSide& s) { return s.evaluation.would_drop; });
}

}  // namespace ztseg::policy
