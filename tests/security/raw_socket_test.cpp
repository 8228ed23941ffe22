// Finding 7: packet and raw IP sockets bypass the cgroup hooks (AF_PACKET
// frames never pass cgroup_skb egress, raw sockets choose their own headers).
// Fixed behaviour: an enforced workload gets EPERM from socket() for
// AF_PACKET and raw IP sockets (BPF LSM socket_create, reason raw-socket),
// unless its policy grants raw sockets; other cgroups are unaffected, and ICMP
// "ping" datagram sockets keep working. On kernels that do not run BPF LSM
// programs (this VM's), the fallback refuses raw IP sockets with EPERM
// (cgroup/sock_create) and kills the task that asks for a packet socket
// (kprobe or syscall tracepoint + SIGKILL): it never gets the socket.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>

#include "security/attack_lab.hpp"

namespace ztseg::test {
namespace {

struct Kind {
    const char* name;
    int domain, type, protocol;
};

// The sockets an enforced workload must not get, for one family.
std::vector<Kind> rawKinds(int f) {
    std::vector<Kind> k = {
        {"socket(AF_PACKET, SOCK_RAW, ETH_P_ALL)", AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)},
        {"socket(AF_PACKET, SOCK_DGRAM, ETH_P_ALL)", AF_PACKET, SOCK_DGRAM, htons(ETH_P_ALL)},
    };
    if (f == 4) {
        k.push_back({"socket(AF_INET, SOCK_RAW, IPPROTO_UDP)", AF_INET, SOCK_RAW, IPPROTO_UDP});
        k.push_back({"socket(AF_INET, SOCK_RAW, IPPROTO_RAW)", AF_INET, SOCK_RAW, IPPROTO_RAW});
    } else {
        k.push_back({"socket(AF_INET6, SOCK_RAW, IPPROTO_UDP)", AF_INET6, SOCK_RAW, IPPROTO_UDP});
        k.push_back(
            {"socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)", AF_INET6, SOCK_RAW, IPPROTO_ICMPV6});
    }
    return k;
}

// A task the fallback guard killed for asking for a packet socket (Child's exit status).
constexpr int kKilled = 128 + SIGKILL;

// Each socket() call in a process of its own in `cg` of the host namespace:
// 0 created, the errno, or kKilled.
std::vector<int> tryCreate(AttackLab& lab, Cgroup2& cg, const std::vector<Kind>& kinds) {
    std::vector<int> out;
    for (const Kind& k : kinds) {
        out.push_back(lab.inHost(&cg, [k] {
            int fd = socket(k.domain, k.type | SOCK_CLOEXEC, k.protocol);
            if (fd < 0) {
                return errno;
            }
            close(fd);
            return 0;
        }));
    }
    return out;
}

// One echo over an ICMP datagram ("ping") socket: 0 on a reply, else errno / ETIMEDOUT.
int datagramPing(const std::string& dst) {
    const SockAddress to = sockAddress(dst, 0);
    const bool v6 = to.family() == AF_INET6;
    UniqueFd fd(socket(to.family(), SOCK_DGRAM | SOCK_CLOEXEC,
                       v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP}));
    if (!fd) {
        return errno;
    }
    uint8_t req[16] = {uint8_t(v6 ? 128 : 8), 0, 0, 0, 0, 0, 0, 1, 'z', 't', 's', 'e', 'g'};
    if (sendto(fd.get(), req, sizeof(req), 0, to.sa(), to.len) < 0) {
        return errno;
    }
    pollfd p{fd.get(), POLLIN, 0};
    uint8_t reply[64];
    if (poll(&p, 1, 2000) != 1) {
        return ETIMEDOUT;
    }
    if (recv(fd.get(), reply, sizeof(reply), 0) < 8) {
        return errno ? errno : EBADMSG;
    }
    return reply[0] == (v6 ? 129 : 0) ? 0 : EBADMSG;
}

class RawSockets : public ::testing::TestWithParam<int> {
  protected:
    void SetUp() override {
        lab_ = std::make_unique<AttackLab>();
        lab_->apply(lab_->policy(1));
        lab_->attachHooks();
        AttackLab::sysctl(lab_->host(), "net.ipv4.ping_group_range", "0 2147483647");
    }
    std::unique_ptr<AttackLab> lab_;
};

TEST_P(RawSockets, RawAndPacketSocketsAreRefusedToEnforcedWorkload) {
    ASSERT_TRUE(lab_->dp().rawSocketGuard()) << lab_->dp().rawSocketGuardProblem();
    const bool fallback = lab_->dp().rawSocketGuardKind() == RawGuardKind::Fallback;
    const int f = GetParam();
    const auto kinds = rawKinds(f);

    // Today's bypass: db sends a UDP datagram to web:9999 (refused by its policy) as a
    // ready-made frame through an AF_PACKET socket on the host's veth end.
    UniqueFd rx;
    {
        NetnsScope in(lab_->peer());
        rx = udpBind(lab_->addr(Role::Web, f), kOtherPort);
    }
    const std::string veth = lab_->veth().nameA();
    const std::string peer_mac = macOf(lab_->peer(), lab_->veth().nameB());
    const auto frame = packetFor(f, lab_->addr(Role::Db, f), lab_->addr(Role::Web, f))
                           .udp(40000, kOtherPort)
                           .payload(8)
                           .buildL3();
    Shared<int> packet_errno;
    lab_->inHost(&lab_->db(), [&] {
        UniqueFd fd(socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        if (!fd) {
            *packet_errno = errno;
            return 0;
        }
        *packet_errno = sendL3(fd.get(), veth, peer_mac, frame);
        return 0;
    });
    const int arrived = countDatagrams(rx.get(), 300ms);
    EXPECT_EQ(arrived, 0) << "bypass: a frame db sent through an AF_PACKET socket reached "
                             "web:9999, which db's policy refuses (AF_PACKET socket/sendto: "
                          << errName(*packet_errno) << ")";

    const auto in_db = tryCreate(*lab_, lab_->db(), kinds);
    const auto elsewhere = tryCreate(*lab_, lab_->other(), kinds);
    for (size_t i = 0; i < kinds.size(); ++i) {
        const int refused = fallback && kinds[i].domain == AF_PACKET ? kKilled : EPERM;
        EXPECT_EQ(in_db[i], refused)
            << kinds[i].name << " in enforced workload db gave "
            << (in_db[i] == kKilled ? "SIGKILL" : errName(in_db[i])) << " under the "
            << lab_->dp().rawSocketGuardMode() << " guard";
        EXPECT_EQ(elsewhere[i], 0)
            << kinds[i].name << " in non-workload cgroup P/other gave " << errName(elsewhere[i]);
    }
    const std::string loop = f == 6 ? "::1" : "127.0.0.1";
    EXPECT_EQ(lab_->inHost(&lab_->db(), [=] { return datagramPing(loop); }), 0)
        << "an ICMP datagram (ping) socket must keep working in db";
}

INSTANTIATE_TEST_SUITE_P(Families, RawSockets, ::testing::Values(4, 6), familyLabel);

}  // namespace
}  // namespace ztseg::test
