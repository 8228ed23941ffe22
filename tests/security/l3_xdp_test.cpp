// Finding 3: XDP parses every frame as Ethernet. On an L3 device (tun in
// IFF_TUN mode: packets start at the IP header) an IPv4/IPv6 packet's bytes
// 12-13 (inside the source address) are read as the EtherType, so the packet is
// "not IP", counted not-subject and passed. Fixed behaviour: L3 devices get an
// XDP program that parses from the IP header; unknown link types are refused
// with a clear error.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "model/names.hpp"
#include "security/attack_lab.hpp"

namespace ztseg::test {
namespace {

// A tun device (IFF_TUN, down) in its own namespace and a private datapath.
class TunLab : public ::testing::Test {
  protected:
    void SetUp() override {
        static std::atomic<int> seq{0};
        const int n = seq++;
        net_ = (getpid() + n) % 200 + 20;
        ns_ = std::make_unique<NetNs>(uniqueName("zstun"));
        ns_->exec("ip link set lo up");
        name_ = uniqueName("zstun");
        {
            NetnsScope in(*ns_);
            tun_.reset(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
            ASSERT_TRUE(tun_) << "open /dev/net/tun: " << errName(errno);
            ifreq ifr{};
            ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
            std::strncpy(ifr.ifr_name, name_.c_str(), IFNAMSIZ - 1);
            ASSERT_EQ(ioctl(tun_.get(), TUNSETIFF, &ifr), 0) << "TUNSETIFF: " << errName(errno);
        }

        opts_.pin_dir =
            "/sys/fs/bpf/ztseg-sec-tun-" + std::to_string(getpid()) + "-" + std::to_string(n);
        opts_.policy_capacity = 1 << 12;
        opts_.identity_capacity = 1 << 12;
        opts_.ringbuf_bytes = 1 << 16;
        dp_.emplace(Datapath::create(opts_));
        Generation g;  // a labeled neighbour; the sender below is not in it
        g.number = 1;
        g.identities.push_back({IpPrefix::parse(labeled(4)), kWebId});
        g.identities.push_back({IpPrefix::parse(labeled(6)), kWebId});
        dp_->apply(g);
    }
    void up() {
        ns_->exec("ip link set " + name_ + " up");
        ns_->exec("ip addr add " + local(4) + "/24 dev " + name_);
        ns_->exec("ip addr add " + local(6) + "/64 dev " + name_ + " nodad");
    }
    void TearDown() override {
        dp_.reset();
        if (!opts_.pin_dir.empty()) {
            Datapath::uninstall(opts_.pin_dir);
        }
        tun_.reset();  // a non-persistent tun device disappears with its fd
        ns_.reset();
    }
    std::string addr(int family, int host) const {
        return family == 4 ? "10.215." + std::to_string(net_) + "." + std::to_string(host)
                           : "fd00:215:" + std::to_string(net_) + "::" + std::to_string(host);
    }
    std::string local(int f) const { return addr(f, 1); }
    std::string labeled(int f) const { return addr(f, 2); }
    std::string unlabeled(int f) const { return addr(f, 9); }

    // Reads packets the kernel sends out of the tun device until a TCP SYN-ACK from
    // local:port to unlabeled:sport shows up or `timeout` passes.
    bool synAckSeen(int f, uint16_t port, uint16_t sport, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        const size_t ip_len = f == 4 ? 20 : 40;
        const size_t l4 = f == 4 ? 9 : 6;  // offset of the protocol / next header byte
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{tun_.get(), POLLIN, 0};
            if (poll(&p, 1, 50) <= 0) {
                continue;
            }
            uint8_t buf[2048];
            ssize_t n = read(tun_.get(), buf, sizeof(buf));
            if (n < ssize_t(ip_len + 14) || (buf[0] >> 4) != f || buf[l4] != 6) {
                continue;
            }
            const uint8_t* tcp = buf + ip_len;
            if (((tcp[0] << 8) | tcp[1]) == port && ((tcp[2] << 8) | tcp[3]) == sport &&
                (tcp[13] & (kTcpSyn | kTcpAck)) == (kTcpSyn | kTcpAck)) {
                return true;
            }
        }
        return false;
    }

    int net_ = 0;
    std::unique_ptr<NetNs> ns_;
    std::string name_;
    UniqueFd tun_;
    DatapathOptions opts_;
    std::optional<Datapath> dp_;
};

class L3Xdp : public TunLab, public ::testing::WithParamInterface<int> {};

TEST_P(L3Xdp, XdpOnTunDeviceParsesFromIpHeader) {
    const int f = GetParam();
    up();
    constexpr uint16_t kPort = 7000, kSport = 40000;
    UniqueFd listener;
    {
        NetnsScope in(*ns_);
        listener = tcpListen(local(f), kPort);
        dp_->attachXdp(name_);
    }
    const Counters before = dp_->counters();
    const std::vector<uint8_t> syn =
        packetFor(f, unlabeled(f), local(f)).tcp(kSport, kPort, kTcpSyn).buildL3();
    ASSERT_EQ(write(tun_.get(), syn.data(), syn.size()), ssize_t(syn.size()))
        << "write SYN into tun: " << errName(errno);
    const bool answered = synAckSeen(f, kPort, kSport, 500ms);

    const Counters after = dp_->counters();
    std::string moved;
    for (uint32_t r = 0; r < ZTSEG_REASON_MAX; ++r) {
        uint64_t d = after.at(ZTSEG_HOOK_XDP, r).packets - before.at(ZTSEG_HOOK_XDP, r).packets;
        if (d) {
            moved += std::string(moved.empty() ? "" : " ") + std::string(reasonName(r)) + "=" +
                     std::to_string(d);
        }
    }
    const uint64_t unlabeled_drops = after.at(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_UNLABELED).packets -
                                     before.at(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_UNLABELED).packets;
    EXPECT_FALSE(answered) << "bypass: an unlabeled SYN written into tun device " << name_
                           << " was answered with a SYN-ACK; xdp counted: "
                           << (moved.empty() ? "nothing" : moved);
    EXPECT_EQ(unlabeled_drops, 1u) << "XDP on the L3 device must drop the unlabeled SYN as "
                                      "`unlabeled`; xdp counted: "
                                   << (moved.empty() ? "nothing" : moved);
}

// A link type that is neither Ethernet nor raw IP (here a tun device retyped to CAN) cannot be
// parsed at all: attaching must fail with an error naming the interface, not silently pass
// every frame.
TEST_F(TunLab, XdpRefusesUnknownLinkType) {
    ASSERT_EQ(ioctl(tun_.get(), TUNSETLINK, static_cast<unsigned long>(ARPHRD_CAN)), 0)
        << "TUNSETLINK: " << errName(errno);
    up();
    NetnsScope in(*ns_);
    try {
        dp_->attachXdp(name_);
        ADD_FAILURE() << "XDP attached to " << name_
                      << " (link type CAN): an unknown link type must be refused";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find(name_), std::string::npos)
            << "the error must name the interface: " << e.what();
    }
}

INSTANTIATE_TEST_SUITE_P(Families, L3Xdp, ::testing::Values(4, 6), familyLabel);

}  // namespace
}  // namespace ztseg::test
