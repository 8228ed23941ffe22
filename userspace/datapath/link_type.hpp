// Which XDP program a network device needs: where its frames start when XDP
// sees them follows from its link type (ARPHRD_*). Ethernet devices get
// ztseg_xdp; devices without a link-layer header (tun in IFF_TUN mode, ipip,
// sit, ip6tnl, point-to-point gre, ARPHRD_NONE, raw IP) get ztseg_xdp_l3,
// which parses from the IP header. Every other link type, and loopback, is
// refused: a program reading a header that is not there would misjudge
// every packet.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ztseg {

enum class XdpProgram { Ethernet, L3 };

inline constexpr const char* kXdpEthernetProg = "ztseg_xdp";
inline constexpr const char* kXdpL3Prog = "ztseg_xdp_l3";
// The same ingress stage as tc programs for tcx ingress (virtual devices).
inline constexpr const char* kTcxEthernetProg = "ztseg_tcx";
inline constexpr const char* kTcxL3Prog = "ztseg_tcx_l3";
std::string_view xdpProgramName(XdpProgram p);
std::string_view tcxProgramName(XdpProgram p);

struct LinkFacts {
    std::string ifname;
    uint16_t type = 0;     // ARPHRD_*
    uint32_t flags = 0;    // IFF_*
    std::string driver;    // ethtool driver name ("veth", "mlx5_core"), "" if none
    std::string bus_info;  // ethtool bus address ("0000:03:00.0"), "" / "N/A" if none
};

// A device with no hardware behind it (veth, tun, bridge, vxlan, tunnels,
// ...): ztseg attaches tc at tcx ingress there rather than XDP, which such
// devices run only in generic mode (a private copy of every cloned or
// non-linear skb) or, on a veth, natively at the cost of its peer's
// segmentation offload. Physical = its driver reports a bus address (PCI,
// USB, platform device), read in the caller's network namespace.
bool isVirtualDevice(const LinkFacts& link);

// The link type and flags of an interface of the caller's network namespace.
// Throws Error naming the interface if it cannot be read.
LinkFacts linkFactsOf(const std::string& ifname);

// "ether", "none", "gre", ... as iproute2 names them; "unknown" otherwise.
std::string_view linkTypeName(uint16_t type);

// The program for this link, or Error naming the interface and the link type,
// e.g. "attach XDP to ib0: link type infiniband (32) is not supported".
XdpProgram xdpProgramFor(const LinkFacts& link);

}  // namespace ztseg
