// Finding 2: the loopback exemption goes by address (127.0.0.0/8, ::1), not
// by device. With route_localnet=1 the kernel routes 127.0.0.1 over a real
// interface, and such packets skip every check. Fixed behaviour: only packets
// that really travel over lo are exempt; XDP drops packets arriving on another
// device with a loopback source or destination (reason `martian`).
//
// IPv4 only: the IPv6 stack itself drops ::1 on any device but lo (RFC 4291),
// so there is no IPv6 bypass to reproduce.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "security/attack_lab.hpp"

namespace ztseg::test {
namespace {

constexpr uint16_t kLoopSshPort = kSshPort;  // web -> db tcp 22 is explicitly denied

class LoopbackBypass : public ::testing::Test {
  protected:
    void SetUp() override {
        lab_ = std::make_unique<AttackLab>();
        // Host: 127.0.0.0/8 routable over the veth, the configuration the attack needs.
        for (const std::string& dev : {std::string("all"), lab_->veth().nameA()}) {
            AttackLab::sysctl(lab_->host(), "net.ipv4.conf." + dev + ".route_localnet", "1");
            AttackLab::sysctl(lab_->host(), "net.ipv4.conf." + dev + ".rp_filter", "0");
        }
        // Peer (the attacker's side): 127.0.0.1 is not its own and is routed to the host, so
        // its stack talks to the host's 127.0.0.1 like to any other address.
        NetNs& p = lab_->peer();
        for (const std::string& dev : {std::string("all"), lab_->veth().nameB()}) {
            AttackLab::sysctl(p, "net.ipv4.conf." + dev + ".route_localnet", "1");
            AttackLab::sysctl(p, "net.ipv4.conf." + dev + ".rp_filter", "0");
        }
        p.exec("ip addr del 127.0.0.1/8 dev lo");
        p.exec("ip route add 127.0.0.1/32 via " + lab_->addr(Role::Db, 4) + " dev " +
               lab_->veth().nameB() + " src " + lab_->addr(Role::Web, 4));
    }
    void enforce() {
        lab_->apply(lab_->policy(1));
        lab_->attachHooks();
        lab_->attachXdp();
        lab_->snapshot();
    }
    int webConnectsToLoopback() {
        const std::string web = lab_->addr(Role::Web, 4);
        return lab_->inPeer([=] { return connectFrom(web, "127.0.0.1", kLoopSshPort, 1s); });
    }
    std::unique_ptr<AttackLab> lab_;
};

// (i) web -> 127.0.0.1:22 of the host, delivered over the veth to db's sshd on 127.0.0.1.
TEST_F(LoopbackBypass, LoopbackDestinationArrivingOnVethIsNotExempt) {
    auto sshd = std::make_unique<Child>(&lab_->host(), &lab_->db(), [](Child::Ready& r) {
        UniqueFd fd = tcpListen("127.0.0.1", kLoopSshPort);
        r.signal();
        tcpEchoServe(fd.get(), 1 << 20, 30s);
        return 0;
    });
    sshd->waitReady(5s);
    ASSERT_EQ(webConnectsToLoopback(), 0)
        << "setup: without ztseg the peer must reach 127.0.0.1:22 over the veth";

    enforce();
    const int e = webConnectsToLoopback();
    EXPECT_NE(e, 0) << "bypass: web (denied tcp/22 by db's policy) connected to db's listener on "
                       "127.0.0.1:22 through the veth: "
                    << errName(e) << "; xdp counted: " << lab_->moved(ZTSEG_HOOK_XDP)
                    << "; cgroup ingress counted: " << lab_->moved(ZTSEG_HOOK_CGROUP_INGRESS);
    EXPECT_GE(lab_->counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_MARTIAN), 1u)
        << "a packet to 127.0.0.1 arriving on " << lab_->veth().nameA()
        << " must be dropped at XDP as martian; xdp counted: " << lab_->moved(ZTSEG_HOOK_XDP);
}

// (ii) db sends from 127.0.0.1 to web:9999 (db's policy refuses it) out of the veth.
TEST_F(LoopbackBypass, LoopbackSourceLeavingOnVethIsNotExempt) {
    UniqueFd rx;
    {
        NetnsScope in(lab_->peer());
        rx = udpBind(lab_->addr(Role::Web, 4), kOtherPort);
    }
    const std::string web = lab_->addr(Role::Web, 4);
    auto sendFromLoopback = [&] {
        return lab_->inHost(&lab_->db(), [=] {
            // Nobody answers: ETIMEDOUT means sent; anything else is the sendto errno.
            int r = udpRoundTrip(web, kOtherPort, "from-127.0.0.1", 1ms, "127.0.0.1");
            return r == ETIMEDOUT ? 0 : r;
        });
    };
    ASSERT_EQ(sendFromLoopback(), 0) << "setup: without ztseg the datagram must be sent";
    ASSERT_EQ(countDatagrams(rx.get(), 300ms), 1)
        << "setup: without ztseg a datagram from 127.0.0.1 must reach web over the veth";

    enforce();
    const int send_status = sendFromLoopback();
    const int got = countDatagrams(rx.get(), 300ms);
    EXPECT_EQ(got, 0) << "bypass: db's datagram from 127.0.0.1 to web:9999 (refused by db's "
                         "policy) arrived ("
                      << "sendto: " << errName(send_status)
                      << "); sendmsg hook counted: " << lab_->moved(ZTSEG_HOOK_SOCK_SENDMSG)
                      << "; cgroup egress counted: " << lab_->moved(ZTSEG_HOOK_CGROUP_EGRESS);
}

}  // namespace
}  // namespace ztseg::test
