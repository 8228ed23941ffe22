// Failsafe rules (docs/ztsegd.md#failsafe-rules): flows of the host that no
// host policy and no unlabeled-source check refuses: SSH from the management
// ranges, the controller or etcd link, DNS, NTP, DHCP. They come from
// ztsegd.yaml, not from the bundle; the datapath holds them in one map
// (abi.h ztseg_failsafe) and explain names the rule that decided a flow.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/ip_prefix.hpp"
#include "model/types.hpp"

namespace ztseg {

struct FailsafeRule {
    std::string name;    // "ssh", "controller", "dns", ... or the config's own name
    std::string origin;  // where it comes from: "ztsegd.yaml:14:15" or "built-in (dhcp)"
    Direction direction = Direction::Ingress;  // of the flow's first packet, seen from the host
    uint8_t protocol = ZTSEG_PROTO_TCP;        // TCP or UDP
    uint16_t port = 0;  // service port: the host's (ingress) or the server's (egress)
    IpPrefix peer;      // length 0: any address of the family
    bool operator==(const FailsafeRule&) const = default;

    // "ingress tcp/22 from 10.0.0.0/8", "egress udp/53 to 10.0.0.2/32"
    std::string flowText() const;
};

// The rule that admits the host's flow whose first packet goes in `direction`
// with `protocol` to service `port`, with the peer at `peer` (an address:
// family + bytes, IPv4 in the first four): the longest peer prefix wins, the
// first listed among equals, as in the datapath. nullptr if none.
const FailsafeRule* matchFailsafe(const std::vector<FailsafeRule>& rules, Direction direction,
                                  uint8_t protocol, uint16_t port, int family, const uint8_t* peer);

}  // namespace ztseg
