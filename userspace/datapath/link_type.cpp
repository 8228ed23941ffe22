#include "datapath/link_type.hpp"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace ztseg {
namespace {
constexpr uint16_t kArphrdIp6Gre = 823;  // ARPHRD_IP6GRE, not in glibc's <net/if_arp.h>
}  // namespace

std::string_view xdpProgramName(XdpProgram p) {
    return p == XdpProgram::L3 ? kXdpL3Prog : kXdpEthernetProg;
}

std::string_view tcxProgramName(XdpProgram p) {
    return p == XdpProgram::L3 ? kTcxL3Prog : kTcxEthernetProg;
}

bool isVirtualDevice(const LinkFacts& link) {
    static constexpr std::string_view kVirtualDrivers[] = {
        "veth",  "tun",       "bridge",     "vxlan",  "geneve", "macvlan", "ipvlan",
        "dummy", "wireguard", "vrf",        "netkit", "team",   "bonding", "ipip",
        "gre",   "sit",       "ip6_tunnel", "ip6gre", "nlmon"};
    for (std::string_view d : kVirtualDrivers) {
        if (link.driver == d) {
            return true;
        }
    }
    const std::string& bus = link.bus_info;
    bool address = !bus.empty() && bus != "N/A" && bus.find_first_of(":.-") != std::string::npos;
    return !address;
}

LinkFacts linkFactsOf(const std::string& ifname) {
    if (ifname.empty() || ifname.size() >= IFNAMSIZ) {
        throw Error("attach XDP: '" + ifname + "' is not an interface name");
    }
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock) {
        throwErrno("attach XDP to " + ifname + ": open socket to read its link type", errno);
    }
    LinkFacts f;
    f.ifname = ifname;
    ifreq req{};
    std::strncpy(req.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    if (::ioctl(sock.get(), SIOCGIFHWADDR, &req) != 0) {
        throwErrno("attach XDP to " + ifname + ": read link type", errno);
    }
    f.type = req.ifr_hwaddr.sa_family;
    req = {};
    std::strncpy(req.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    if (::ioctl(sock.get(), SIOCGIFFLAGS, &req) != 0) {
        throwErrno("attach XDP to " + ifname + ": read interface flags", errno);
    }
    f.flags = uint16_t(req.ifr_flags);
    ethtool_drvinfo info{};
    info.cmd = ETHTOOL_GDRVINFO;
    req = {};
    std::strncpy(req.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    req.ifr_data = reinterpret_cast<char*>(&info);
    if (::ioctl(sock.get(), SIOCETHTOOL, &req) == 0) {  // many virtual devices have none
        f.driver = std::string(info.driver, strnlen(info.driver, sizeof(info.driver)));
        f.bus_info = std::string(info.bus_info, strnlen(info.bus_info, sizeof(info.bus_info)));
    }
    return f;
}

std::string_view linkTypeName(uint16_t type) {
    switch (type) {
        case ARPHRD_ETHER:
            return "ether";
        case ARPHRD_INFINIBAND:
            return "infiniband";
        case ARPHRD_LOOPBACK:
            return "loopback";
        case ARPHRD_NONE:
            return "none";
        case ARPHRD_RAWIP:
            return "rawip";
        case ARPHRD_TUNNEL:
            return "ipip";
        case ARPHRD_TUNNEL6:
            return "tunnel6";
        case ARPHRD_SIT:
            return "sit";
        case ARPHRD_IPGRE:
            return "gre";
        case kArphrdIp6Gre:
            return "gre6";
        case ARPHRD_PPP:
            return "ppp";
        case ARPHRD_VOID:
            return "void";
        case ARPHRD_CAN:
            return "can";
        case ARPHRD_IEEE80211_RADIOTAP:
            return "ieee802.11/radiotap";
        case ARPHRD_IEEE802154:
            return "ieee802.15.4";
        default:
            return "unknown";
    }
}

XdpProgram xdpProgramFor(const LinkFacts& link) {
    std::string type =
        std::string(linkTypeName(link.type)) + " (" + std::to_string(link.type) + ")";
    std::string where = "attach XDP to " + link.ifname + ": ";
    if (link.type == ARPHRD_LOOPBACK || (link.flags & IFF_LOOPBACK)) {
        throw Error(where + "it is the loopback device (link type " + type +
                    "); ztseg never attaches XDP to loopback, where the host talks to itself");
    }
    switch (link.type) {
        case ARPHRD_ETHER:
            return XdpProgram::Ethernet;
        case ARPHRD_IPGRE:
            // Only a point-to-point GRE tunnel hands XDP the inner IP packet:
            // NBMA (no remote) and multicast GRE devices keep the outer IP
            // header in front of it for their header_ops, so XDP would judge
            // the tunnel endpoint instead of the sender.
            if (!(link.flags & IFF_POINTOPOINT) || (link.flags & IFF_BROADCAST)) {
                throw Error(where + "link type " + type +
                            " is supported only as a point-to-point tunnel with a unicast remote "
                            "(NBMA and multicast GRE devices hand XDP the outer IP header)");
            }
            return XdpProgram::L3;
        case ARPHRD_NONE:
        case ARPHRD_RAWIP:
        case ARPHRD_TUNNEL:
        case ARPHRD_TUNNEL6:
        case ARPHRD_SIT:
            return XdpProgram::L3;
        default:
            throw Error(
                where + "link type " + type +
                " is not supported (ztseg's XDP programs parse Ethernet devices and devices "
                "whose frames start at the IP header: none, rawip, ipip, tunnel6, sit, "
                "gre)");
    }
}

}  // namespace ztseg
