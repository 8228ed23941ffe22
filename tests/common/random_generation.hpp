// Random generations and small random edits of them, for tests of the
// incremental apply (planning in userspace, writes in the kernel).
#pragma once

#include <random>
#include <string>

#include "model/types.hpp"

namespace ztseg::test {

class RandomGenerations {
  public:
    explicit RandomGenerations(uint32_t seed) : rng_(seed) {}

    Rule rule() {
        Rule r;
        r.local = 256 + pick(4);
        r.peer = pick(5) == 0 ? kAnyIdentity : 256 + pick(8);
        r.direction = pick(2) ? Direction::Ingress : Direction::Egress;
        static const uint8_t protos[] = {0, ZTSEG_PROTO_TCP, ZTSEG_PROTO_UDP, ZTSEG_PROTO_ICMP};
        r.protocol = protos[pick(4)];
        uint16_t a = uint16_t(pick(2000)), b = uint16_t(a + pick(300));
        r.ports = pick(6) == 0 ? PortRange{} : PortRange{a, b};
        r.action = pick(4) == 0 ? Action::Deny : Action::Allow;
        r.rule_id = 1 + pick(50);
        return r;
    }
    IdentityPrefix prefix() {
        IdentityPrefix ip;
        if (pick(3) == 0) {
            ip.prefix = IpPrefix::parse("fd00:" + std::to_string(pick(40)) + "::/" +
                                        (pick(2) ? "32" : "128"));
        } else {
            ip.prefix = IpPrefix::parse("10.0." + std::to_string(pick(4)) + "." +
                                        std::to_string(pick(40)) + "/32");
        }
        ip.identity = 256 + pick(8);
        return ip;
    }
    Generation generation(uint64_t n) {
        Generation g;
        g.number = n;
        for (int i = 0, k = 5 + int(pick(40)); i < k; ++i) g.rules.push_back(rule());
        for (int i = 0, k = 1 + int(pick(30)); i < k; ++i) g.identities.push_back(prefix());
        for (IdentityId id = 256; id < 260; ++id) {
            if (pick(3))
                g.modes[id] = pick(2) ? WorkloadMode::Enforce : WorkloadMode::Audit;
            if (pick(4) == 0)
                g.raw_sockets.insert(id);
        }
        for (int i = 0, k = int(pick(5)); i < k; ++i)
            g.endpoints.push_back({100 + pick(6), 256 + pick(4)});
        return g;
    }
    // A small edit of g: one rule, prefix, mode, raw-socket grant or endpoint changes.
    Generation mutate(const Generation& g, uint64_t n) {
        Generation m = g;
        m.number = n;
        switch (pick(7)) {
            case 0:
                m.rules.push_back(rule());
                break;
            case 1:
                if (!m.rules.empty())
                    m.rules.erase(m.rules.begin() + pick(uint32_t(m.rules.size())));
                break;
            case 2:
                if (!m.rules.empty())
                    m.rules[pick(uint32_t(m.rules.size()))] = rule();
                break;
            case 3:
                m.identities.push_back(prefix());
                break;
            case 4:
                m.modes[256 + pick(4)] = pick(2) ? WorkloadMode::Enforce : WorkloadMode::Audit;
                break;
            case 5: {
                IdentityId id = 256 + pick(4);
                if (!m.raw_sockets.erase(id))
                    m.raw_sockets.insert(id);
                break;
            }
            default:
                m.endpoints.push_back({100 + pick(6), 256 + pick(4)});
                break;
        }
        return m;
    }

  private:
    uint32_t pick(uint32_t n) { return uint32_t(rng_() % n); }
    std::mt19937 rng_;
};

}  // namespace ztseg::test
