#include "datapath/policy_entries.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <tuple>

namespace ztseg {
namespace {

bool ignoresPorts(uint8_t proto) {
    return proto == ZTSEG_PROTO_ICMP || proto == ZTSEG_PROTO_ICMPV6;
}

uint16_t prefixMask(uint8_t len) {
    return len == 0 ? 0 : static_cast<uint16_t>(0xffff0000u >> len);
}

// Keys compare by content so the map below is ordered and deterministic.
struct KeyLess {
    bool operator()(const ztseg_policy_key& a, const ztseg_policy_key& b) const {
        return std::memcmp(&a, &b, sizeof(a)) < 0;
    }
};
using EntryMap = std::map<ztseg_policy_key, ztseg_policy_value, KeyLess>;

ztseg_policy_key makeKey(IdentityId local, IdentityId peer, uint8_t dir, uint8_t proto,
                         PortPrefix port) {
    ztseg_policy_key k;
    std::memset(&k, 0, sizeof(k));
    k.local_id = local;
    k.peer_id = peer;
    k.direction = dir;
    k.proto = proto;
    k.port = port.value;
    k.port_plen = port.length;
    return k;
}

// Deny beats allow for the same key; otherwise the lowest rule id is kept.
void merge(EntryMap& m, const ztseg_policy_key& k, uint8_t action, uint32_t rule_id) {
    auto [it, inserted] = m.try_emplace(k, ztseg_policy_value{});
    ztseg_policy_value& v = it->second;
    bool replace = inserted || (action == ZTSEG_ACTION_DENY && v.action != ZTSEG_ACTION_DENY) ||
                   (action == v.action && rule_id < v.rule_id);
    if (replace) {
        std::memset(&v, 0, sizeof(v));
        v.action = action;
        v.rule_id = rule_id;
    }
}

// Intersection of two keys of the same (local, direction), if any.
bool intersect(const ztseg_policy_key& a, const ztseg_policy_key& b, ztseg_policy_key& out) {
    out = a;
    if (a.peer_id != b.peer_id) {
        if (a.peer_id != ZTSEG_ID_ANY && b.peer_id != ZTSEG_ID_ANY) {
            return false;
        }
        out.peer_id = a.peer_id == ZTSEG_ID_ANY ? b.peer_id : a.peer_id;
    }
    if (a.proto != b.proto) {
        if (a.proto != ZTSEG_PROTO_ANY && b.proto != ZTSEG_PROTO_ANY) {
            return false;
        }
        out.proto = a.proto == ZTSEG_PROTO_ANY ? b.proto : a.proto;
    }
    // Port prefixes either nest or are disjoint.
    uint8_t shorter = std::min(a.port_plen, b.port_plen);
    if ((a.port & prefixMask(shorter)) != (b.port & prefixMask(shorter))) {
        return false;
    }
    const ztseg_policy_key& longer = a.port_plen >= b.port_plen ? a : b;
    out.port = longer.port;
    out.port_plen = longer.port_plen;
    return true;
}

}  // namespace

std::vector<PortPrefix> portRangeToPrefixes(uint16_t first, uint16_t last) {
    std::vector<PortPrefix> out;
    uint32_t lo = first;
    const uint32_t hi = last;
    while (lo <= hi) {
        // Largest aligned block starting at lo that does not pass hi.
        uint8_t len = 16;
        while (len > 0) {
            uint32_t size = 1u << (16 - (len - 1));
            if ((lo & (size - 1)) != 0 || lo + size - 1 > hi) {
                break;
            }
            --len;
        }
        out.push_back({static_cast<uint16_t>(lo), len});
        lo += 1u << (16 - len);
    }
    return out;
}

PolicyEntries compilePolicyEntries(const std::vector<Rule>& rules) {
    EntryMap m;
    for (const Rule& r : rules) {
        auto dir = static_cast<uint8_t>(r.direction);
        auto action = static_cast<uint8_t>(r.action);
        std::vector<PortPrefix> ports = ignoresPorts(r.protocol) || r.ports.isAny()
                                            ? std::vector<PortPrefix>{{0, 0}}
                                            : portRangeToPrefixes(r.ports.first, r.ports.last);
        for (const PortPrefix& p : ports) {
            merge(m, makeKey(r.local, r.peer, dir, r.protocol, p), action, r.rule_id);
        }
    }

    // Deny closure, per (local, direction) group.
    std::map<std::pair<uint32_t, uint8_t>, std::vector<ztseg_policy_key>> denies, allows;
    for (const auto& [k, v] : m) {
        auto group = std::make_pair(k.local_id, k.direction);
        (v.action == ZTSEG_ACTION_DENY ? denies : allows)[group].push_back(k);
    }
    for (const auto& [group, deny_keys] : denies) {
        auto it = allows.find(group);
        if (it == allows.end()) {
            continue;
        }
        for (const ztseg_policy_key& d : deny_keys) {
            uint32_t deny_rule = m.at(d).rule_id;
            for (const ztseg_policy_key& a : it->second) {
                ztseg_policy_key i;
                if (intersect(d, a, i)) {
                    merge(m, i, ZTSEG_ACTION_DENY, deny_rule);
                }
            }
        }
    }

    PolicyEntries out;
    out.entries.reserve(m.size());
    for (const auto& [k, v] : m) {
        out.entries.push_back({k, v});
        out.probe_masks[size_t(probeCombo(k))] |= 1u << k.port_plen;
    }
    return out;
}

int probeCombo(const ztseg_policy_key& k) {
    return (k.peer_id == ZTSEG_ID_ANY ? 2 : 0) | (k.proto == ZTSEG_PROTO_ANY ? 1 : 0);
}

}  // namespace ztseg
