// Real traffic through a namespace lab: what docs/design.md#policy-model promises,
// observed on the wire, with counters showing which hook decided.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <thread>

#include "integration/lab_fixture.hpp"

using namespace std::chrono_literals;

namespace ztseg::test {
namespace {

class Enforcement : public LabTest, public ::testing::WithParamInterface<int> {
  protected:
    int family() const { return GetParam(); }
    void SetUp() override {
        LabTest::SetUp();
        apply(1);
        attachAll();
    }
};

TEST_P(Enforcement, UnlabeledSourceDroppedAtXdp) {
    auto server = startDbServer(kDbPort);
    Counters before = counters();
    std::string dst = dbAddr(family()), src = intruderAddr(family());
    int err = inPeer([&] { return tcpConnect(dst, kDbPort, 400ms, src).err; });
    EXPECT_EQ(err, ETIMEDOUT);
    Counters after = counters();
    EXPECT_GT(after.at(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_UNLABELED).packets,
              before.at(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_UNLABELED).packets);
    // Dropped before the stack: the cgroup stage never saw it.
    EXPECT_EQ(after.at(ZTSEG_HOOK_CGROUP_INGRESS, ZTSEG_REASON_DROP_UNLABELED).packets, 0u);
    auto ev = takeEvents();
    ASSERT_FALSE(ev.empty());
    EXPECT_EQ(ev[0].hook, ZTSEG_HOOK_XDP);
    EXPECT_EQ(ev[0].verdict, ZTSEG_VERDICT_DROPPED);
    EXPECT_EQ(ev[0].reason, ZTSEG_REASON_DROP_UNLABELED);
}

TEST_P(Enforcement, AllowedTcpFlowWorksBothWays) {
    auto server = startDbServer(kDbPort);
    std::string dst = dbAddr(family()), src = webAddr(family());
    Counters before = counters();
    EXPECT_EQ(inPeer([&] { return tcpEchoRoundTrip(dst, kDbPort, "hello db", 2s, src); }), 0);
    Counters after = counters();
    auto delta = [&](uint32_t hook, uint32_t reason) {
        return after.at(hook, reason).packets - before.at(hook, reason).packets;
    };
    EXPECT_EQ(delta(ZTSEG_HOOK_CGROUP_INGRESS, ZTSEG_REASON_ALLOW_POLICY), 1u);    // the SYN
    EXPECT_GT(delta(ZTSEG_HOOK_CGROUP_EGRESS, ZTSEG_REASON_ALLOW_CONNTRACK), 0u);  // replies
    EXPECT_GT(delta(ZTSEG_HOOK_XDP, ZTSEG_REASON_ALLOW_CONNTRACK), 0u);            // later packets
    auto ev = takeEvents();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].verdict, ZTSEG_VERDICT_ALLOWED);
    EXPECT_EQ(ev[0].src_identity, kWebId);
    EXPECT_EQ(ev[0].dst_identity, kDbId);
    EXPECT_EQ(ev[0].dport, kDbPort);
    EXPECT_EQ(ev[0].rule_id, 1u);
}

TEST_P(Enforcement, AllowedUdpAndPingWork) {
    auto server = startDbServer(kDbPort, /*udp=*/true);
    std::string dst = dbAddr(family()), src = webAddr(family());
    EXPECT_EQ(inPeer([&] { return udpRoundTrip(dst, kDbPort, "q", 2s, src); }), 0);
    EXPECT_EQ(inPeer([&] { return ping(dst, 2s, src); }), 0);
}

// A UDP server bound to its own address answers with sendto(): the sendmsg
// hook finds the tracked flow instead of judging the reply as new egress.
TEST_P(Enforcement, UdpServerBoundToItsAddressCanReply) {
    std::string dst = dbAddr(family()), src = webAddr(family());
    auto server = std::make_unique<Child>(&lab_->host(), &lab_->dbCgroup(), [&](Child::Ready& r) {
        UniqueFd fd = udpBind(dst, kDbPort);
        r.signal();
        udpEchoServe(fd.get(), 1 << 30, 60s);
        return 0;
    });
    server->waitReady(5s);
    Counters before = counters();
    EXPECT_EQ(inPeer([&] { return udpRoundTrip(dst, kDbPort, "q", 2s, src); }), 0);
    EXPECT_GT(counters().at(ZTSEG_HOOK_SOCK_SENDMSG, ZTSEG_REASON_ALLOW_CONNTRACK).packets,
              before.at(ZTSEG_HOOK_SOCK_SENDMSG, ZTSEG_REASON_ALLOW_CONNTRACK).packets);
}

TEST_P(Enforcement, ExplicitDenyDropsLabeledPeer) {
    auto server = startDbServer(kSshPort);
    std::string dst = dbAddr(family()), src = webAddr(family());
    Counters before = counters();
    EXPECT_EQ(inPeer([&] { return tcpConnect(dst, kSshPort, 400ms, src).err; }), ETIMEDOUT);
    EXPECT_GT(counters().at(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_POLICY_DENY).packets,
              before.at(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_POLICY_DENY).packets);
}

TEST_P(Enforcement, WorkloadEgressAllowedAndRepliesPassXdp) {
    auto web = startWebServer(kWebPort);
    std::string dst = webAddr(family());
    Counters before = counters();
    EXPECT_EQ(inDb([&] { return tcpEchoRoundTrip(dst, kWebPort, "hi web", 2s); }), 0);
    EXPECT_GT(counters().at(ZTSEG_HOOK_XDP, ZTSEG_REASON_ALLOW_CONNTRACK).packets,
              before.at(ZTSEG_HOOK_XDP, ZTSEG_REASON_ALLOW_CONNTRACK).packets);
}

TEST_P(Enforcement, DeniedEgressConnectFailsWithEpermAtOnce) {
    auto web = startWebServer(kOtherPort);
    std::string dst = webAddr(family());
    int err = inDb([&] {
        ConnectResult r = tcpConnect(dst, kOtherPort, 2s);
        return r.err == EPERM && r.elapsed < 100ms ? EPERM : (r.err ? r.err : 255);
    });
    EXPECT_EQ(err, EPERM) << "connect must fail immediately with EPERM";
    EXPECT_GT(counters().at(ZTSEG_HOOK_SOCK_CONNECT, ZTSEG_REASON_DROP_DEFAULT_DENY).packets, 0u);
    auto ev = takeEvents();
    ASSERT_FALSE(ev.empty());
    EXPECT_EQ(ev.back().hook, ZTSEG_HOOK_SOCK_CONNECT);
    EXPECT_EQ(ev.back().reason, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(Enforcement, DeniedUdpSendFailsWithEperm) {
    std::string dst = webAddr(family());
    EXPECT_EQ(inDb([&] { return udpRoundTrip(dst, kOtherPort, "x", 500ms); }), EPERM);
}

INSTANTIATE_TEST_SUITE_P(Families, Enforcement, ::testing::Values(4, 6),
                         [](const auto& i) { return "IPv" + std::to_string(i.param); });

class Audit : public LabTest {};

TEST_F(Audit, AuditModePassesEverythingAndReportsWouldDrop) {
    // A peer without identity is never tracked, so its would-drops are
    // rate-limited per flow (both directions, every hook) like drops.
    dp_->setDropEventInterval(1'000'000'000);
    apply(1, WorkloadMode::Audit);
    attachAll();
    auto server = startDbServer(kDbPort);
    auto ssh = startDbServer(kSshPort);
    std::string dst = dbAddr(4);
    std::string intruder = intruderAddr(4), web = webAddr(4);
    EXPECT_EQ(inPeer([&] { return tcpEchoRoundTrip(dst, kDbPort, "x", 2s, intruder); }), 0);
    EXPECT_EQ(inPeer([&] { return tcpEchoRoundTrip(dst, kSshPort, "x", 2s, web); }), 0);
    auto ev = takeEvents();
    int unlabeled = 0, denied = 0;
    for (const auto& e : ev) {
        EXPECT_NE(e.verdict, ZTSEG_VERDICT_DROPPED);
        if (e.verdict == ZTSEG_VERDICT_WOULD_DROP) {
            unlabeled += e.reason == ZTSEG_REASON_DROP_UNLABELED;
            denied += e.reason == ZTSEG_REASON_DROP_POLICY_DENY;
        }
    }
    EXPECT_EQ(unlabeled, 1) << "one would-drop event per flow, not per packet";
    EXPECT_EQ(denied, 1);
    Counters c = counters();
    for (uint32_t h = 0; h < ZTSEG_HOOK_MAX; ++h) {
        for (uint32_t r = ZTSEG_REASON_FIRST_DROP; r < ZTSEG_REASON_MAX; ++r) {
            EXPECT_EQ(c.at(h, r).packets, 0u) << "hook " << h << " reason " << r;
        }
    }
}

class PolicySwap : public LabTest {};

// One long-lived TCP connection exchanging messages until `duration` ends;
// returns the number of failed exchanges (capped for an exit status).
int persistentEchoFailures(const std::string& dst, uint16_t port, const std::string& src,
                           std::chrono::milliseconds duration) {
    sockaddr_in d{}, s{};
    d.sin_family = s.sin_family = AF_INET;
    d.sin_port = htons(port);
    inet_pton(AF_INET, dst.c_str(), &d.sin_addr);
    inet_pton(AF_INET, src.c_str(), &s.sin_addr);
    UniqueFd fd(socket(AF_INET, SOCK_STREAM, 0));
    timeval tv{2, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&s), sizeof(s)) != 0 ||
        connect(fd.get(), reinterpret_cast<sockaddr*>(&d), sizeof(d)) != 0) {
        return 250;
    }
    int fails = 0;
    auto end = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < end && fails < 250) {
        char buf[8] = "ping123";
        if (send(fd.get(), buf, sizeof(buf), 0) != ssize_t(sizeof(buf)) ||
            recv(fd.get(), buf, sizeof(buf), MSG_WAITALL) != ssize_t(sizeof(buf))) {
            ++fails;
        }
        std::this_thread::sleep_for(2ms);
    }
    return fails;
}

// Two generations that agree on these flows, swapped continuously while
// traffic runs: no allowed connection may fail, no denied one may succeed.
TEST_F(PolicySwap, SwapUnderContinuousTrafficShowsNoMisverdict) {
    apply(1);
    attachAll();
    auto server = startDbServer(kDbPort);
    auto server2 = startDbServer(kDbPort2);  // echo servers take one connection at a time
    auto ssh = startDbServer(kSshPort);
    std::string dst = dbAddr(4), web = webAddr(4);
    std::atomic<bool> stop{false};
    std::atomic<int> swaps{0};
    std::thread swapper([&] {
        uint64_t n = 2;
        while (!stop) {
            Generation g = policy(n, WorkloadMode::Enforce);
            if (n % 2 == 0) {
                // Same verdicts, different shape: explicit deny dropped (default deny
                // still refuses 22), an unrelated rule added.
                g.rules.erase(g.rules.begin() + 4);
                g.rules.push_back({kDbId,
                                   kWebId,
                                   Direction::Ingress,
                                   ZTSEG_PROTO_TCP,
                                   {7000, 7999},
                                   Action::Allow,
                                   9});
            }
            dp_->apply(g);
            ++n;
            ++swaps;
            std::this_thread::sleep_for(5ms);
        }
    });
    // Allowed: one established connection throughout (re-judged on every
    // generation change), new TCP connections back to back; denied: attempts on 22.
    Child established(&lab_->peer(), nullptr,
                      [&] { return persistentEchoFailures(dst, kDbPort2, web, 3s); });
    int allowed_fail = inPeer([&] {
        int fails = 0;
        auto end = std::chrono::steady_clock::now() + 3s;
        while (std::chrono::steady_clock::now() < end) {
            fails += tcpEchoRoundTrip(dst, kDbPort, "swap", 2s, web) != 0;
        }
        return std::min(fails, 250);
    });
    int denied_pass = inPeer([&] {
        int passes = 0;
        for (int i = 0; i < 20; ++i) {
            passes += tcpConnect(dst, kSshPort, 50ms, web).err == 0;
        }
        return passes;
    });
    int established_fail = established.wait(30s);
    stop = true;
    swapper.join();
    EXPECT_GT(swaps.load(), 20);
    EXPECT_EQ(established_fail, 0);
    // Each allowed connection's SYN is one allow-policy verdict at cgroup ingress.
    EXPECT_GT(counters().at(ZTSEG_HOOK_CGROUP_INGRESS, ZTSEG_REASON_ALLOW_POLICY).packets, 100u);
    EXPECT_EQ(allowed_fail, 0);
    EXPECT_EQ(denied_pass, 0);
}

}  // namespace
}  // namespace ztseg::test
