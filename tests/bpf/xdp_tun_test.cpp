// XDP on real devices without an Ethernet header, in a private network
// namespace: tun devices in IFF_TUN mode (ARPHRD_NONE), and tun devices
// switched with TUNSETLINK to the link types of ipip, ip6tnl, sit, gre and raw
// IP (this kernel's tun driver stands in for them: IP-first frames with that
// link type). The datapath attaches ztseg_xdp_l3 there, ztseg_xdp on Ethernet
// (tap) devices, and refuses every other link type and loopback.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <thread>

#include "bpf/datapath_fixture.hpp"
#include "common/error.hpp"
#include "common/lab.hpp"
#include "common/packet_builder.hpp"
#include "common/tun.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace ztseg::test {
namespace {

constexpr IdentityId kFriend = 300;
constexpr uint16_t kArphrdIp6Gre = 823;

struct Tcp {
    uint16_t sport, dport;
    uint8_t flags;
};

// The TCP header of an IPv4/IPv6 packet the stack sent, if it is one.
std::optional<Tcp> tcpOf(const std::vector<uint8_t>& p) {
    size_t off;
    if (p.size() >= 20 && (p[0] >> 4) == 4 && p[9] == 6) {
        off = size_t(p[0] & 0xf) * 4;
    } else if (p.size() >= 40 && (p[0] >> 4) == 6 && p[6] == 6) {
        off = 40;
    } else {
        return std::nullopt;
    }
    if (p.size() < off + 14) {
        return std::nullopt;
    }
    return Tcp{uint16_t(p[off] << 8 | p[off + 1]), uint16_t(p[off + 2] << 8 | p[off + 3]),
               p[off + 13]};
}

// A private datapath and a network namespace the test thread works in.
class XdpOnTun : public DatapathTest {
  protected:
    void SetUp() override {
        DatapathTest::SetUp();
        ns_.emplace();
        in_.emplace(*ns_);
        ns_->exec("ip link set lo up");
    }
    void TearDown() override {
        in_.reset();
        ns_.reset();
        DatapathTest::TearDown();
    }

    // A tun device (IFF_TUN, no packet information) up with 10.77.0.1/24 and fd00:77::1/64.
    TunDevice upTun() {
        TunDevice t(uniqueName("ztun"), IFF_TUN | IFF_NO_PI);
        ns_->exec("ip link set " + t.name() + " up");
        ns_->exec("ip addr add 10.77.0.1/24 dev " + t.name());
        ns_->exec("ip -6 addr add fd00:77::1/64 dev " + t.name() + " nodad");
        return t;
    }

    // The ztseg program attached to `ifname` ("(none)" if ztseg is not attached).
    std::string programOn(const std::string& ifname) {
        for (const auto& a : dp().xdpAttachments()) {
            if (a.ifname == ifname) {
                return a.program;
            }
        }
        return "(none)";
    }
    // Whether any XDP program (ztseg's or not) is attached to the device.
    static bool anyXdpOn(int ifindex) {
        LIBBPF_OPTS(bpf_xdp_query_opts, q);
        if (bpf_xdp_query(ifindex, 0, &q) != 0) {
            throw Error("bpf_xdp_query failed");
        }
        return q.prog_id != 0 || q.skb_prog_id != 0 || q.drv_prog_id != 0;
    }
    // attachXdp's error for `ifname` ("" if it attached).
    std::string attachError(const std::string& ifname) {
        try {
            dp().attachXdp(ifname, XdpRequest::Generic);
        } catch (const Error& e) {
            return e.what();
        }
        return "";
    }
    // Waits (a guard against hangs, 10 s) until `done` holds.
    static void waitFor(const std::function<bool()>& done) {
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!done() && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(5ms);
        }
    }
    static uint32_t progId(int fd) {
        bpf_prog_info info{};
        uint32_t len = sizeof(info);
        return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
    }

    std::optional<NetNs> ns_;
    std::optional<NetnsScope> in_;
};

// ---- traffic: an unlabeled SYN to a local listener through a tun device

struct TunCase {
    bool v6;
    XdpRequest mode;  // Generic, or Auto (what ztsegd asks for by default)
};

class XdpOnTunTraffic : public XdpOnTun, public ::testing::WithParamInterface<TunCase> {};

TEST_P(XdpOnTunTraffic, UnlabeledSynDroppedLabeledSynAnswered) {
    const bool v6 = GetParam().v6;
    const std::string local = v6 ? "fd00:77::1" : "10.77.0.1";
    const std::string stranger = v6 ? "fd00:77::66" : "10.77.0.66";
    const std::string friendly = v6 ? "fd00:77::9" : "10.77.0.9";
    addIdentity(friendly + (v6 ? "/128" : "/32"), kFriend);
    applyGen();

    TunDevice tun = upTun();
    XdpMode mode = dp().attachXdp(tun.name(), GetParam().mode);
    if (GetParam().mode == XdpRequest::Generic) {
        EXPECT_EQ(mode, XdpMode::Generic);
        EXPECT_EQ(programOn(tun.name()), "ztseg_xdp_l3");
    } else {  // auto on a virtual device: tc at tcx ingress, the same verdicts
        EXPECT_EQ(mode, XdpMode::Tcx);
        EXPECT_EQ(programOn(tun.name()), "ztseg_tcx_l3");
        EXPECT_FALSE(anyXdpOn(tun.ifindex()));
    }
    UniqueFd listener = tcpListen(local, 0);
    const uint16_t port = localPort(listener.get());
    auto syn = [&](const std::string& src, uint16_t sport) {
        auto b = v6 ? PacketBuilder::ipv6(src, local) : PacketBuilder::ipv4(src, local);
        return b.tcp(sport, port).buildL3();
    };

    snapshotCounters();
    tun.write(syn(stranger, 40001));
    tun.write(syn(friendly, 40002));
    waitFor([&] { return countedAll(ZTSEG_HOOK_XDP) >= 2; });
    EXPECT_EQ(counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_UNLABELED), 1u) << moved(ZTSEG_HOOK_XDP);
    EXPECT_EQ(counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_PASS_TO_STACK), 1u) << moved(ZTSEG_HOOK_XDP);
    EXPECT_EQ(countedAll(ZTSEG_HOOK_XDP), 2u) << moved(ZTSEG_HOOK_XDP);

    // The labeled SYN reached the listener: its SYN-ACK leaves through the tun
    // device. The unlabeled one never reached the stack: no answer for it.
    bool answered = false;
    int answered_stranger = 0;
    for (int i = 0; i < 64 && !answered; ++i) {
        auto out = tun.read(10s);
        if (!out) {
            break;
        }
        if (auto t = tcpOf(*out); t && t->sport == port && (t->flags & 0x12) == 0x12) {
            answered = answered || t->dport == 40002;
            answered_stranger += t->dport == 40001;
        }
    }
    EXPECT_TRUE(answered) << "no SYN-ACK for the labeled source";
    EXPECT_EQ(answered_stranger, 0) << "the unlabeled SYN was answered";

    bool event = false;
    for (const auto& e : takeEvents()) {
        event = event || (e.reason == ZTSEG_REASON_DROP_UNLABELED && e.sport == 40001 &&
                          e.dport == port && e.ifindex == uint32_t(tun.ifindex()));
    }
    EXPECT_TRUE(event) << "no unlabeled drop event for the stranger's SYN on " << tun.name();
}

INSTANTIATE_TEST_SUITE_P(Tun, XdpOnTunTraffic,
                         ::testing::Values(TunCase{false, XdpRequest::Generic},
                                           TunCase{true, XdpRequest::Generic},
                                           TunCase{false, XdpRequest::Auto},
                                           TunCase{true, XdpRequest::Auto}),
                         [](const ::testing::TestParamInfo<TunCase>& i) {
                             return std::string(i.param.v6 ? "IPv6" : "IPv4") +
                                    (i.param.mode == XdpRequest::Generic ? "Generic" : "Auto");
                         });

// ---- which program for which link type

TEST_F(XdpOnTun, ProgramFollowsLinkType) {
    std::vector<TunDevice> devices;
    for (uint16_t type : {uint16_t(ARPHRD_NONE), uint16_t(ARPHRD_TUNNEL), uint16_t(ARPHRD_TUNNEL6),
                          uint16_t(ARPHRD_SIT), uint16_t(ARPHRD_IPGRE), uint16_t(ARPHRD_RAWIP)}) {
        TunDevice t(uniqueName("ztl"), IFF_TUN | IFF_NO_PI);
        if (type != ARPHRD_NONE) {
            t.setLinkType(type);
        }
        dp().attachXdp(t.name(), XdpRequest::Generic);
        EXPECT_EQ(programOn(t.name()), "ztseg_xdp_l3") << "link type " << type;
        devices.push_back(std::move(t));
    }
    TunDevice tap(uniqueName("ztap"), IFF_TAP | IFF_NO_PI);  // ARPHRD_ETHER
    dp().attachXdp(tap.name(), XdpRequest::Generic);
    EXPECT_EQ(programOn(tap.name()), "ztseg_xdp");
}

TEST_F(XdpOnTun, OtherLinkTypesAndLoopbackRefused) {
    struct {
        uint16_t type;
        std::string name;
    } refused[] = {{ARPHRD_INFINIBAND, "infiniband (32)"},
                   {kArphrdIp6Gre, "gre6 (823)"},
                   {ARPHRD_PPP, "ppp (512)"},
                   {ARPHRD_VOID, "void (65535)"}};
    for (const auto& r : refused) {
        TunDevice t(uniqueName("ztr"), IFF_TUN | IFF_NO_PI);
        t.setLinkType(r.type);
        std::string err = attachError(t.name());
        EXPECT_EQ(
            err.rfind("attach XDP to " + t.name() + ": link type " + r.name + " is not supported",
                      0),
            0u)
            << err;
        EXPECT_FALSE(anyXdpOn(t.ifindex())) << t.name();
        EXPECT_FALSE(fs::exists(options().pin_dir + "/links/xdp-" + t.name()));
    }
    std::string err = attachError("lo");
    EXPECT_EQ(
        err.rfind("attach XDP to lo: it is the loopback device (link type loopback (772))", 0), 0u)
        << err;
    EXPECT_FALSE(anyXdpOn(1));
}

// ---- pin, adopt, uninstall: the second program like the first

TEST_F(XdpOnTun, AdoptingDatapathFindsBothPrograms) {
    TunDevice tun(uniqueName("ztun"), IFF_TUN | IFF_NO_PI);
    TunDevice tap(uniqueName("ztap"), IFF_TAP | IFF_NO_PI);
    dp().attachXdp(tun.name(), XdpRequest::Generic);
    dp().attachXdp(tap.name(), XdpRequest::Generic);
    EXPECT_TRUE(fs::exists(options().pin_dir + "/progs/ztseg_xdp_l3"));

    Datapath adopted = Datapath::adopt(options());
    EXPECT_EQ(progId(adopted.programFd("ztseg_xdp_l3")), progId(dp().programFd("ztseg_xdp_l3")));
    EXPECT_EQ(progId(adopted.programFd("ztseg_xdp")), progId(dp().programFd("ztseg_xdp")));
    for (const auto& a : adopted.xdpAttachments()) {
        EXPECT_EQ(a.program, a.ifname == tun.name() ? "ztseg_xdp_l3" : "ztseg_xdp") << a.ifname;
    }
    // what the adopting process attaches is the pinned program
    TunDevice later(uniqueName("ztun"), IFF_TUN | IFF_NO_PI);
    adopted.attachXdp(later.name(), XdpRequest::Generic);
    EXPECT_EQ(programOn(later.name()), "ztseg_xdp_l3");
}

TEST_F(XdpOnTun, UninstallDetachesBothPrograms) {
    TunDevice tun(uniqueName("ztun"), IFF_TUN | IFF_NO_PI);
    TunDevice tap(uniqueName("ztap"), IFF_TAP | IFF_NO_PI);
    dp().attachXdp(tun.name(), XdpRequest::Generic);
    dp().attachXdp(tap.name(), XdpRequest::Generic);
    Datapath::uninstall(options().pin_dir);
    EXPECT_FALSE(anyXdpOn(tun.ifindex()));
    EXPECT_FALSE(anyXdpOn(tap.ifindex()));
    EXPECT_FALSE(fs::exists(options().pin_dir));
}

// State pinned by a build without ztseg_xdp_l3 is refused with a clear error.
TEST_F(XdpOnTun, AdoptRefusesStateWithoutTheL3Program) {
    fs::remove(options().pin_dir + "/progs/ztseg_xdp_l3");
    try {
        Datapath::adopt(options());
        FAIL() << "adopted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("lacks program ztseg_xdp_l3"), std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace ztseg::test
