// Rules -> policy map entries: port prefix expansion and deny closure.
#include "datapath/policy_entries.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace ztseg {
namespace {

// Reference: does a port prefix cover port p?
bool covers(PortPrefix pp, uint16_t p) {
    uint16_t mask = pp.length == 0 ? 0 : uint16_t(0xffff0000u >> pp.length);
    return (p & mask) == pp.value;
}

TEST(PortRangeToPrefixes, SinglePortIsExact) {
    auto v = portRangeToPrefixes(443, 443);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0], (PortPrefix{443, 16}));
}

TEST(PortRangeToPrefixes, FullRangeIsOnePrefixOfLengthZero) {
    auto v = portRangeToPrefixes(0, 65535);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0], (PortPrefix{0, 0}));
}

TEST(PortRangeToPrefixes, AlignedBlock) {
    auto v = portRangeToPrefixes(8000, 8191);  // 8000 is not 256-aligned
    std::set<uint32_t> seen;
    for (auto pp : v) {
        for (uint32_t p = 0; p < 65536; ++p) {
            if (covers(pp, uint16_t(p))) {
                EXPECT_TRUE(seen.insert(p).second) << "port " << p << " covered twice";
            }
        }
    }
    EXPECT_EQ(seen.size(), 192u);
    EXPECT_EQ(*seen.begin(), 8000u);
    EXPECT_EQ(*seen.rbegin(), 8191u);
}

TEST(PortRangeToPrefixes, RandomRangesCoverExactly) {
    std::mt19937 rng(7);
    for (int i = 0; i < 200; ++i) {
        uint16_t a = uint16_t(rng()), b = uint16_t(rng());
        if (a > b)
            std::swap(a, b);
        auto v = portRangeToPrefixes(a, b);
        EXPECT_LE(v.size(), 30u);  // at most 2*16-2 prefixes
        for (uint32_t p = 0; p < 65536; p += 97) {
            int n = 0;
            for (auto pp : v) n += covers(pp, uint16_t(p));
            EXPECT_EQ(n, (p >= a && p <= b) ? 1 : 0) << "range " << a << "-" << b << " port " << p;
        }
    }
}

// The datapath's lookup, replayed in C++: first hit in the fixed order, only
// the shapes (combination, prefix length) the entries have.
const ztseg_policy_value* firstHit(const PolicyEntries& pe, uint32_t local, uint32_t peer,
                                   uint8_t dir, uint8_t proto, uint16_t port) {
    for (int i = 0; i < 4; ++i) {
        uint32_t kp = (i & 2) ? ZTSEG_ID_ANY : peer;
        uint8_t kproto = (i & 1) ? 0 : proto;
        if ((i & 1) && proto == 0)
            continue;
        for (int plen = 16; plen >= 0; --plen) {
            if (!(pe.probe_masks[size_t(i)] & (1u << plen)))
                continue;
            uint16_t kport = plen ? uint16_t(port & (0xffff0000u >> plen)) : 0;
            for (const auto& e : pe.entries) {
                const auto& k = e.key;
                if (k.local_id == local && k.peer_id == kp && k.direction == dir &&
                    k.proto == kproto && k.port_plen == plen && k.port == kport)
                    return &e.value;
            }
        }
    }
    return nullptr;
}

Rule rule(uint32_t local, uint32_t peer, uint8_t proto, PortRange ports, Action a, uint32_t id) {
    return Rule{local, peer, Direction::Ingress, proto, ports, a, id};
}

TEST(DenyClosure, NarrowDenyInsideBroadAllowWins) {
    auto pe = compilePolicyEntries({rule(300, kAnyIdentity, 6, {0, 65535}, Action::Allow, 1),
                                    rule(300, 400, 6, {22, 22}, Action::Deny, 2)});
    auto* v = firstHit(pe, 300, 400, ZTSEG_DIR_INGRESS, 6, 22);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->action, ZTSEG_ACTION_DENY);
    EXPECT_EQ(v->rule_id, 2u);
    v = firstHit(pe, 300, 400, ZTSEG_DIR_INGRESS, 6, 80);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->action, ZTSEG_ACTION_ALLOW);
}

TEST(DenyClosure, BroadDenyOverridesNarrowAllowAcrossDimensions) {
    // deny peer 400 on anything; allow anyone on tcp/80: 400->80 must be denied.
    auto pe = compilePolicyEntries({rule(300, kAnyIdentity, 6, {80, 80}, Action::Allow, 1),
                                    rule(300, 400, 0, {0, 65535}, Action::Deny, 2)});
    auto* v = firstHit(pe, 300, 400, ZTSEG_DIR_INGRESS, 6, 80);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->action, ZTSEG_ACTION_DENY);
    v = firstHit(pe, 300, 401, ZTSEG_DIR_INGRESS, 6, 80);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->action, ZTSEG_ACTION_ALLOW);
}

TEST(DenyClosure, IcmpIgnoresPorts) {
    auto pe = compilePolicyEntries({rule(300, 400, 1, {5, 5}, Action::Allow, 1)});
    ASSERT_EQ(pe.entries.size(), 1u);
    EXPECT_EQ(pe.entries[0].key.port_plen, 0);
}

TEST(DenyClosure, OutputIsDeterministic) {
    std::vector<Rule> rules = {rule(300, 400, 6, {1000, 2000}, Action::Allow, 1),
                               rule(300, kAnyIdentity, 17, {53, 53}, Action::Allow, 2),
                               rule(300, 400, 0, {1500, 1600}, Action::Deny, 3)};
    auto a = compilePolicyEntries(rules);
    std::reverse(rules.begin(), rules.end());
    auto b = compilePolicyEntries(rules);
    ASSERT_EQ(a.entries.size(), b.entries.size());
    for (size_t i = 0; i < a.entries.size(); ++i) {
        EXPECT_EQ(0, memcmp(&a.entries[i], &b.entries[i], sizeof(PolicyMapEntry)));
    }
}

// Property: for random rule sets and flows, the first hit agrees with the
// plain semantics "deny if any matching deny, else allow if any matching allow".
TEST(DenyClosure, FirstHitEqualsDenyBeatsAllowSemantics) {
    std::mt19937 rng(12345);
    const uint32_t peers[] = {400, 401, 402, kAnyIdentity};
    const uint8_t protos[] = {6, 17, 0};
    for (int round = 0; round < 200; ++round) {
        std::vector<Rule> rules;
        int n = 1 + int(rng() % 8);
        for (int i = 0; i < n; ++i) {
            uint16_t a = uint16_t(rng() % 200), b = uint16_t(a + rng() % 60);
            if (rng() % 4 == 0) {
                a = 0;
                b = 65535;
            }
            rules.push_back(rule(300, peers[rng() % 4], protos[rng() % 3], {a, b},
                                 rng() % 3 == 0 ? Action::Deny : Action::Allow, uint32_t(i + 1)));
        }
        auto pe = compilePolicyEntries(rules);
        for (int f = 0; f < 100; ++f) {
            uint32_t peer = 400 + rng() % 3;
            uint8_t proto = rng() % 2 ? 6 : 17;
            uint16_t port = uint16_t(rng() % 270);
            bool any_deny = false, any_allow = false;
            for (const Rule& r : rules) {
                bool m = (r.peer == kAnyIdentity || r.peer == peer) &&
                         (r.protocol == 0 || r.protocol == proto) && port >= r.ports.first &&
                         port <= r.ports.last;
                if (m)
                    (r.action == Action::Deny ? any_deny : any_allow) = true;
            }
            auto* v = firstHit(pe, 300, peer, ZTSEG_DIR_INGRESS, proto, port);
            int got = v ? v->action : 0;
            int want = any_deny ? ZTSEG_ACTION_DENY : any_allow ? ZTSEG_ACTION_ALLOW : 0;
            ASSERT_EQ(got, want) << "round " << round << " peer " << peer << " proto " << int(proto)
                                 << " port " << port;
        }
    }
}

}  // namespace
}  // namespace ztseg
