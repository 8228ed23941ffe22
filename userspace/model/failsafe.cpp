#include "model/failsafe.hpp"

#include "model/names.hpp"

namespace ztseg {

std::string FailsafeRule::flowText() const {
    const bool in = direction == Direction::Ingress;
    return std::string(in ? "ingress " : "egress ") + protocolName(protocol) + "/" +
           std::to_string(port) + (in ? " from " : " to ") + peer.str();
}

const FailsafeRule* matchFailsafe(const std::vector<FailsafeRule>& rules, Direction direction,
                                  uint8_t protocol, uint16_t port, int family,
                                  const uint8_t* peer) {
    const FailsafeRule* best = nullptr;
    for (const FailsafeRule& r : rules) {
        if (r.direction != direction || r.protocol != protocol || r.port != port) {
            continue;
        }
        // An IPv6 ::/0 covers IPv4 peers too (the datapath keys IPv4 as
        // IPv4-mapped IPv6): "any address".
        const bool any6 = r.peer.family == 6 && r.peer.length == 0;
        if (!any6 && !r.peer.containsAddress(family, peer)) {
            continue;
        }
        auto weight = [](const FailsafeRule& x) {
            return x.peer.family == 4 ? 96 + x.peer.length : x.peer.length;
        };
        if (best == nullptr || weight(r) > weight(*best)) {
            best = &r;
        }
    }
    return best;
}

}  // namespace ztseg
