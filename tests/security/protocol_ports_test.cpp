// Finding 9: ports are parsed for TCP, UDP and SCTP only. Every other
// protocol is judged with port 0, so UDP-Lite and DCCP slip past a
// `deny {port: N}` (protocol any), and a portless protocol such as GRE matches
// any rule whose port range contains 0. Fixed reference semantics: ports are
// parsed for TCP, UDP, UDP-Lite, SCTP and DCCP; for every other protocol a
// rule with a port restriction never matches.
//
// UDP-Lite runs as real traffic through the namespace lab. This kernel has no
// DCCP (and no GRE) sockets, so those packets go through BPF_PROG_TEST_RUN of
// the real XDP and cgroup_skb programs (tests/bpf fixture).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>

#include "bpf/scenario.hpp"
#include "security/attack_lab.hpp"

namespace ztseg::test {
namespace {

constexpr uint16_t kDeniedPort = 7000, kOpenPort = 7001;

// ---- UDP-Lite, real traffic ----

class UdpLite : public ::testing::TestWithParam<int> {
  protected:
    void SetUp() override {
        lab_ = std::make_unique<AttackLab>();
        Generation g;
        g.number = 1;
        for (int fam : {4, 6}) {
            g.identities.push_back({IpPrefix::parse(lab_->addr(Role::Db, fam)), kDbId});
            g.identities.push_back({IpPrefix::parse(lab_->addr(Role::Web, fam)), kWebId});
        }
        g.modes[kDbId] = WorkloadMode::Enforce;
        g.endpoints.push_back({lab_->db().id(), kDbId});
        g.rules = {
            {kDbId, kWebId, Direction::Ingress, kAnyProtocol, {}, Action::Allow, 1},
            {kDbId,
             kWebId,
             Direction::Ingress,
             kAnyProtocol,
             {kDeniedPort, kDeniedPort},
             Action::Deny,
             2},
        };
        lab_->apply(g);
        lab_->attachHooks();
        lab_->attachXdp();
    }
    std::unique_ptr<AttackLab> lab_;
};

UniqueFd boundDatagram(const std::string& addr, uint16_t port, int proto) {
    const SockAddress a = sockAddress(addr, port);
    UniqueFd fd(socket(a.family(), SOCK_DGRAM | SOCK_CLOEXEC, proto));
    if (!fd || bind(fd.get(), a.sa(), a.len) != 0) {
        throw std::runtime_error("bind " + addr + " port " + std::to_string(port) + " proto " +
                                 std::to_string(proto) + ": " + errName(errno));
    }
    return fd;
}

TEST_P(UdpLite, UdpLiteToDeniedPortIsDropped) {
    const int f = GetParam();
    const std::string db = lab_->addr(Role::Db, f), web = lab_->addr(Role::Web, f);
    // Receivers in db: plain UDP and UDP-Lite on the denied port, UDP-Lite on an open one (last:
    // today an admitted UDP-Lite flow's conntrack entry, ports 0, would admit the others).
    struct Probe {
        uint16_t port;
        int proto;
    };
    const std::array<Probe, 3> probes = {
        {{kDeniedPort, IPPROTO_UDP}, {kDeniedPort, IPPROTO_UDPLITE}, {kOpenPort, IPPROTO_UDPLITE}}};
    Shared<std::array<int, 3>> received;
    Gate sent;
    auto receiver = std::make_unique<Child>(&lab_->host(), &lab_->db(), [&](Child::Ready& r) {
        std::array<UniqueFd, 3> fds;
        for (size_t i = 0; i < probes.size(); ++i) {
            fds[i] = boundDatagram(db, probes[i].port, probes[i].proto);
        }
        r.signal();
        if (!sent.wait(30s)) {
            return 1;
        }
        for (size_t i = 0; i < probes.size(); ++i) {
            (*received)[i] = countDatagrams(fds[i].get(), 300ms);
        }
        return 0;
    });
    receiver->waitReady(5s);
    lab_->snapshot();
    ASSERT_EQ(lab_->inPeer([&] {
        for (const Probe& p : probes) {
            UniqueFd fd = boundDatagram(web, 0, p.proto);
            const SockAddress to = sockAddress(db, p.port);
            if (sendto(fd.get(), "lite", 4, 0, to.sa(), to.len) != 4) {
                return 1;
            }
        }
        return 0;
    }),
              0);
    sent.open();
    ASSERT_EQ(receiver->wait(10s), 0);
    const std::string counted =
        "xdp counted: " + lab_->moved(ZTSEG_HOOK_XDP) +
        "; cgroup ingress counted: " + lab_->moved(ZTSEG_HOOK_CGROUP_INGRESS);
    EXPECT_EQ((*received)[0], 0) << "control: UDP to denied port " << kDeniedPort << "; "
                                 << counted;
    EXPECT_EQ((*received)[1], 0) << "bypass: UDP-Lite from web reached db on port " << kDeniedPort
                                 << ", denied for every protocol; " << counted;
    EXPECT_EQ((*received)[2], 1) << "control: UDP-Lite to open port " << kOpenPort << "; "
                                 << counted;
}

INSTANTIATE_TEST_SUITE_P(Families, UdpLite, ::testing::Values(4, 6), familyLabel);

// ---- DCCP and GRE, BPF_PROG_TEST_RUN ----

class PortlessProtocols : public FamilyTest {
  protected:
    void SetUp() override {
        FamilyTest::SetUp();
        addHosts({{n_.web, kWeb}, {n_.db, kDb}});
        addWorkload(kDb, WorkloadMode::Enforce);  // this process's cgroup is db
    }
    // A DCCP-Request (generic header with extended sequence number, service code) from web to
    // db:dport, checksum over the whole packet (CsCov 0).
    std::vector<uint8_t> dccpRequest(uint16_t dport) const {
        constexpr size_t kLen = 20;
        std::vector<uint8_t> frame =
            pkt(n_.web, n_.db).protocol(ZTSEG_PROTO_DCCP).payload(kLen).build();
        const size_t l3 = 14, off = l3 + (n_.v6 ? 40 : 20);
        uint8_t* d = &frame[off];
        d[0] = 0xa0, d[1] = 0x00;  // source port 40960
        d[2] = uint8_t(dport >> 8), d[3] = uint8_t(dport);
        d[4] = kLen / 4;                                     // data offset, 32-bit words
        d[8] = 0x01;                                         // type 0 (Request), X = 1
        d[15] = 1;                                           // sequence number
        d[16] = 'z', d[17] = 't', d[18] = 's', d[19] = 'g';  // service code
        std::vector<uint8_t> sum;
        const size_t a = n_.v6 ? l3 + 8 : l3 + 12, alen = n_.v6 ? 32 : 8;
        sum.insert(sum.end(), frame.begin() + a, frame.begin() + a + alen);
        if (n_.v6) {
            sum.insert(sum.end(), {0, 0, 0, uint8_t(kLen), 0, 0, 0, ZTSEG_PROTO_DCCP});
        } else {
            sum.insert(sum.end(), {0, ZTSEG_PROTO_DCCP, 0, uint8_t(kLen)});
        }
        sum.insert(sum.end(), frame.begin() + off, frame.end());
        const uint16_t c = internetChecksum(sum);
        d[6] = uint8_t(c >> 8), d[7] = uint8_t(c);
        return frame;
    }
};

TEST_P(PortlessProtocols, DccpToDeniedPortIsDropped) {
    addRules({{kDb, kWeb, Direction::Ingress, kAnyProtocol, {}, Action::Allow, 1},
              {kDb,
               kWeb,
               Direction::Ingress,
               kAnyProtocol,
               {kDeniedPort, kDeniedPort},
               Action::Deny,
               2}});
    applyGen();
    {
        SCOPED_TRACE("DCCP-Request web -> db:7000; db denies port 7000 for every protocol");
        expectXdp(dccpRequest(kDeniedPort), kXdpDrop, ZTSEG_REASON_DROP_POLICY_DENY);
        expectIn(dccpRequest(kDeniedPort), kSkbDrop, ZTSEG_REASON_DROP_POLICY_DENY);
    }
    dp().flushConntrack();  // what an admitted packet above tracked must not decide the control
    expectIn(dccpRequest(kOpenPort), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);  // control
}

TEST_P(PortlessProtocols, PortlessProtocolNeverMatchesPortRestrictedRule) {
    addRule({kDb, kWeb, Direction::Ingress, kAnyProtocol, {0, 1023}, Action::Allow, 1});
    applyGen();
    expectIn(pkt(n_.web, n_.db).udp(40000, 53).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_POLICY);  // control: the rule admits a port in range
    SCOPED_TRACE("GRE web -> db; db allows web only on ports 0-1023 (protocol any)");
    const auto gre = pkt(n_.web, n_.db).protocol(47).payload(4).build();
    expectXdp(gre, kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectIn(gre, kSkbDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

INSTANTIATE_TEST_SUITE_P(Families, PortlessProtocols, ::testing::Values(Family::V4, Family::V6),
                         familyName);

}  // namespace
}  // namespace ztseg::test
