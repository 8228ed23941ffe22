// Which XDP program a link gets, from its type and flags (datapath/link_type):
// the decision alone; tests/bpf/xdp_tun_test.cpp attaches to real devices.
#include "datapath/link_type.hpp"

#include <gtest/gtest.h>
#include <net/if.h>
#include <net/if_arp.h>

#include "common/error.hpp"

namespace ztseg {
namespace {

std::string refusal(uint16_t type, uint32_t flags, const std::string& name = "dev0") {
    try {
        xdpProgramFor({name, type, flags});
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

constexpr uint32_t kPtp = IFF_UP | IFF_POINTOPOINT | IFF_NOARP;

TEST(LinkType, EthernetDevicesGetTheEthernetProgram) {
    EXPECT_EQ(xdpProgramFor({"eth0", ARPHRD_ETHER, IFF_UP | IFF_BROADCAST}), XdpProgram::Ethernet);
    EXPECT_EQ(xdpProgramName(XdpProgram::Ethernet), "ztseg_xdp");
}

TEST(LinkType, DevicesWithoutEthernetHeaderGetTheL3Program) {
    for (uint16_t t : {uint16_t(ARPHRD_NONE), uint16_t(ARPHRD_RAWIP), uint16_t(ARPHRD_TUNNEL),
                       uint16_t(ARPHRD_TUNNEL6), uint16_t(ARPHRD_SIT), uint16_t(ARPHRD_IPGRE)}) {
        EXPECT_EQ(xdpProgramFor({"tun0", t, kPtp}), XdpProgram::L3) << t;
    }
    EXPECT_EQ(xdpProgramFor({"tunl0", ARPHRD_TUNNEL, IFF_NOARP}), XdpProgram::L3);
    EXPECT_EQ(xdpProgramName(XdpProgram::L3), "ztseg_xdp_l3");
}

// Virtual devices get tc at tcx ingress under xdp_mode: auto; physical NICs
// (a driver with a bus address) native XDP.
TEST(LinkType, VirtualDevicesAreThoseWithoutHardwareBehindThem) {
    auto facts = [](const char* driver, const char* bus) {
        LinkFacts f{"dev0", ARPHRD_ETHER, IFF_UP};
        f.driver = driver;
        f.bus_info = bus;
        return f;
    };
    EXPECT_TRUE(isVirtualDevice(facts("veth", "")));
    EXPECT_TRUE(isVirtualDevice(facts("tun", "tap")));
    EXPECT_TRUE(isVirtualDevice(facts("bridge", "N/A")));
    EXPECT_TRUE(isVirtualDevice(facts("", "")));  // no ethtool driver info at all (vxlan, ...)
    EXPECT_TRUE(isVirtualDevice(facts("veth", "0000:00:00.0"))) << "a known virtual driver";
    EXPECT_FALSE(isVirtualDevice(facts("mlx5_core", "0000:03:00.0")));
    EXPECT_FALSE(isVirtualDevice(facts("virtio_net", "0000:00:03.0")));
    EXPECT_FALSE(isVirtualDevice(facts("r8152", "usb-0000:00:14.0-1")));
    EXPECT_FALSE(isVirtualDevice(facts("stmmaceth", "fe300000.ethernet")));
    EXPECT_EQ(tcxProgramName(XdpProgram::Ethernet), "ztseg_tcx");
    EXPECT_EQ(tcxProgramName(XdpProgram::L3), "ztseg_tcx_l3");
}

TEST(LinkType, UnsupportedLinkTypesNamedInTheError) {
    EXPECT_EQ(refusal(ARPHRD_INFINIBAND, IFF_UP, "ib0")
                  .rfind("attach XDP to ib0: link type infiniband (32) is not supported", 0),
              0u);
    EXPECT_EQ(
        refusal(823, kPtp).rfind("attach XDP to dev0: link type gre6 (823) is not supported", 0),
        0u);
    EXPECT_EQ(refusal(ARPHRD_PPP, kPtp).rfind("attach XDP to dev0: link type ppp (512)", 0), 0u);
    EXPECT_EQ(refusal(ARPHRD_CAN, 0).rfind("attach XDP to dev0: link type can (280)", 0), 0u);
    EXPECT_EQ(refusal(4242, 0).rfind("attach XDP to dev0: link type unknown (4242)", 0), 0u);
}

TEST(LinkType, LoopbackRefused) {
    EXPECT_EQ(
        refusal(ARPHRD_LOOPBACK, IFF_UP | IFF_LOOPBACK, "lo")
            .rfind("attach XDP to lo: it is the loopback device (link type loopback (772))", 0),
        0u);
    // by its flag, whatever type it reports
    EXPECT_NE(refusal(ARPHRD_ETHER, IFF_LOOPBACK).find("loopback device"), std::string::npos);
}

// NBMA GRE (no remote) and multicast GRE keep the outer IP header in front of
// the packet XDP sees: only a point-to-point GRE device is IP first.
TEST(LinkType, GreOnlyAsPointToPointTunnel) {
    EXPECT_EQ(xdpProgramFor({"gre1", ARPHRD_IPGRE, kPtp}), XdpProgram::L3);
    std::string nbma = refusal(ARPHRD_IPGRE, IFF_UP | IFF_NOARP, "gre0");
    EXPECT_EQ(nbma.rfind("attach XDP to gre0: link type gre (778) is supported only as a "
                         "point-to-point tunnel",
                         0),
              0u)
        << nbma;
    EXPECT_NE(refusal(ARPHRD_IPGRE, kPtp | IFF_BROADCAST).find("point-to-point"),
              std::string::npos);
}

}  // namespace
}  // namespace ztseg
