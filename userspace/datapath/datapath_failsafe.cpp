// The failsafe map (abi.h ztseg_failsafe): ztsegd.yaml's failsafe rules as
// the datapath's LPM keys.
#include <arpa/inet.h>

#include <cstring>
#include <vector>

#include "common/error.hpp"
#include "datapath/datapath.hpp"

namespace ztseg {
namespace {

ztseg_failsafe_key failsafeKey(const FailsafeRule& r) {
    ztseg_failsafe_key k{};
    k.direction = static_cast<uint8_t>(r.direction);
    k.proto = r.protocol;
    k.port = htons(r.port);
    if (r.peer.family == 4) {
        // IPv4-mapped IPv6: one trie for both families
        k.addr[2] = htonl(0xffff);
        std::memcpy(&k.addr[3], r.peer.addr.data(), 4);
        k.prefixlen = 32 + 96 + r.peer.length;
    } else {
        std::memcpy(k.addr, r.peer.addr.data(), 16);
        k.prefixlen = 32 + r.peer.length;
    }
    return k;
}

bool sameKey(const ztseg_failsafe_key& a, const ztseg_failsafe_key& b) {
    return std::memcmp(&a, &b, sizeof(a)) == 0;
}

}  // namespace

void Datapath::setFailsafe(const std::vector<FailsafeRule>& rules) {
    if (rules.size() > ZTSEG_FAILSAFE_CAPACITY) {
        throw Error("failsafe: " + std::to_string(rules.size()) + " rules, the datapath holds " +
                    std::to_string(ZTSEG_FAILSAFE_CAPACITY));
    }
    std::vector<ztseg_failsafe_key> wanted;
    for (size_t i = 0; i < rules.size(); ++i) {
        const FailsafeRule& r = rules[i];
        if (r.protocol != ZTSEG_PROTO_TCP && r.protocol != ZTSEG_PROTO_UDP) {
            throw Error("failsafe rule '" + r.name + "' (" + r.origin +
                        "): only tcp and udp rules are supported");
        }
        ztseg_failsafe_key k = failsafeKey(r);
        bool taken = false;
        for (const auto& w : wanted) taken = taken || sameKey(w, k);
        if (taken) {
            continue;  // the first rule with this key holds it
        }
        ztseg_failsafe_value v{};
        v.rule = static_cast<uint32_t>(i + 1);
        v.flags = r.peer.length == 0 ? ZTSEG_FSF_STATELESS : 0;
        failsafe_.update(&k, &v);
        wanted.push_back(k);
    }
    // then drop what no rule asks for any more
    std::vector<ztseg_failsafe_key> stale;
    ztseg_failsafe_key cur{}, next{};
    for (bool more = failsafe_.nextKey(nullptr, &next); more;
         more = failsafe_.nextKey(&cur, &next)) {
        cur = next;
        bool keep = false;
        for (const auto& w : wanted) keep = keep || sameKey(w, cur);
        if (!keep) {
            stale.push_back(cur);
        }
    }
    for (const auto& k : stale) failsafe_.erase(&k);
}

}  // namespace ztseg
