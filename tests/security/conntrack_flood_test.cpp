// Finding 5: conntrack exhaustion. The conntrack map is one LRU shared by
// everything: a flood of new flows evicts the entries of established, idle
// connections, whose next packet from the workload is then judged as a new
// egress flow (default deny). And unlabeled flows to an audit-mode workload
// each create an entry, so anyone can fill the map.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "security/attack_lab.hpp"

namespace ztseg::test {
namespace {

constexpr uint32_t kCapacity = 1024;

class ConntrackFlood : public ::testing::TestWithParam<int> {
  protected:
    void SetUp() override {
        DatapathOptions o;
        o.conntrack_capacity = kCapacity;
        lab_ = std::make_unique<AttackLab>(o);
        lab_->attachHooks();
        lab_->attachXdp();
    }
    int f() const { return GetParam(); }
    // SYNs (or UDP datagrams) from `src`, one per source port, to db:port.
    std::vector<std::vector<uint8_t>> flood(const std::string& src, uint16_t first_sport, int n,
                                            bool udp = false) const {
        std::vector<std::vector<uint8_t>> pkts;
        const std::string db = lab_->addr(Role::Db, f());
        for (int i = 0; i < n; ++i) {
            PacketBuilder b = packetFor(f(), src, db);
            udp ? b.udp(uint16_t(first_sport + i), kDbPort)
                : b.tcp(uint16_t(first_sport + i), kDbPort, kTcpSyn);
            pkts.push_back(b.buildL3());
        }
        return pkts;
    }
    std::unique_ptr<AttackLab> lab_;
};

// Exit codes of the web client.
constexpr int kNoPushFromDb = 10, kNoEchoOfWeb = 11, kSetupFailed = 12;

TEST_P(ConntrackFlood, EstablishedConnectionSurvivesConntrackFlood) {
    lab_->apply(lab_->policy(1));
    Gate push, flooded;
    auto server = std::make_unique<Child>(&lab_->host(), &lab_->db(), [&](Child::Ready& r) {
        UniqueFd l = tcpListen("::", kDbPort);
        r.signal();
        pollfd p{l.get(), POLLIN, 0};
        if (poll(&p, 1, 5000) != 1) {
            return 2;
        }
        UniqueFd c(accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
        std::string got;
        if (!c || recvExactly(c.get(), 5, 3s, got) != 0 || send(c.get(), "hello", 5, 0) != 5) {
            return 3;
        }
        if (!push.wait(60s) || send(c.get(), "from-db", 7, MSG_NOSIGNAL) != 7) {
            return 4;  // the send is queued even when its packets are dropped
        }
        if (recvExactly(c.get(), 8, 10s, got) == 0) {
            send(c.get(), got.data(), got.size(), MSG_NOSIGNAL);
        }
        recvExactly(c.get(), 1, 5s, got);  // until the client closes
        return 0;
    });
    server->waitReady(5s);

    const std::string web = lab_->addr(Role::Web, f()), db = lab_->addr(Role::Db, f());
    auto client = std::make_unique<Child>(&lab_->peer(), &lab_->tools(), [&](Child::Ready& r) {
        std::string got;
        UniqueFd c = tcpConnected(web, db, kDbPort, 2s);
        if (send(c.get(), "hello", 5, 0) != 5 || recvExactly(c.get(), 5, 2s, got) != 0) {
            return kSetupFailed;
        }
        r.signal();  // established and idle
        if (!flooded.wait(60s)) {
            return kSetupFailed;
        }
        if (recvExactly(c.get(), 7, 3s, got) != 0 || got != "from-db") {
            return kNoPushFromDb;
        }
        if (send(c.get(), "from-web", 8, 0) != 8 || recvExactly(c.get(), 8, 3s, got) != 0) {
            return kNoEchoOfWeb;
        }
        return 0;
    });
    client->waitReady(5s);
    const uint32_t before = lab_->dp().conntrackEntries();

    lab_->snapshot();
    // 4 x capacity labeled SYNs (web, spoofed ports: admitted, tracked) and 1 x capacity
    // unlabeled ones (intruder), in chunks sent from every CPU in turn: the conntrack LRU keeps
    // per-CPU lists, and an entry parked in an idle CPU's list would outlive a one-CPU flood.
    auto labeled = flood(web, 10000, 4 * kCapacity);
    auto unlabeled = flood(lab_->addr(Role::Intruder, f()), 10000, kCapacity);
    const int cpus = int(sysconf(_SC_NPROCESSORS_ONLN));
    constexpr size_t kChunk = 256;
    for (size_t i = 0; i * kChunk < labeled.size(); ++i) {
        std::vector<std::vector<uint8_t>> chunk(
            labeled.begin() + i * kChunk,
            labeled.begin() + std::min(labeled.size(), (i + 1) * kChunk));
        const size_t u = i * kChunk / 4;
        chunk.insert(chunk.end(), unlabeled.begin() + std::min(u, unlabeled.size()),
                     unlabeled.begin() + std::min(u + kChunk / 4, unlabeled.size()));
        lab_->inject(chunk, int(i % cpus));
    }
    const uint32_t after = lab_->dp().conntrackEntries();
    const std::string ingress = lab_->moved(ZTSEG_HOOK_CGROUP_INGRESS);
    const std::string xdp = lab_->moved(ZTSEG_HOOK_XDP);

    lab_->snapshot();
    push.open();
    flooded.open();
    const int status = client->wait(30s);
    EXPECT_EQ(status, 0) << (status == kNoPushFromDb  ? "db's data on the established connection "
                                                        "never reached web after the flood"
                             : status == kNoEchoOfWeb ? "web's data was not echoed after the flood"
                                                      : "client failed")
                         << " (status " << status << "); conntrack entries " << before
                         << " before the flood, " << after << " after (capacity " << kCapacity
                         << "); during the flood xdp counted: " << xdp
                         << "; cgroup ingress: " << ingress
                         << "; afterwards cgroup egress counted: "
                         << lab_->moved(ZTSEG_HOOK_CGROUP_EGRESS);
}

TEST_P(ConntrackFlood, UnlabeledFlowsToAuditWorkloadCreateNoConntrack) {
    lab_->apply(lab_->policy(1, WorkloadMode::Audit));
    auto tcp = lab_->serveInHost(&lab_->db(), kDbPort);
    auto udp = lab_->serveInHost(&lab_->db(), kDbPort, /*udp=*/true);
    const std::string intruder = lab_->addr(Role::Intruder, f());
    const uint32_t before = lab_->dp().conntrackEntries();
    lab_->snapshot();
    constexpr int kFlows = 256;
    auto pkts = flood(intruder, 20000, kFlows);
    auto dgrams = flood(intruder, 20000, kFlows, /*udp=*/true);
    pkts.insert(pkts.end(), dgrams.begin(), dgrams.end());
    lab_->inject(pkts);
    const uint32_t after = lab_->dp().conntrackEntries();

    ASSERT_GE(lab_->countedAll(ZTSEG_HOOK_CGROUP_INGRESS), uint64_t(2 * kFlows))
        << "setup: the flows must reach db's sockets; cgroup ingress counted: "
        << lab_->moved(ZTSEG_HOOK_CGROUP_INGRESS);
    EXPECT_EQ(after, before) << 2 * kFlows
                             << " unlabeled flows to audit-mode db created conntrack entries: "
                             << before << " before, " << after << " after; cgroup ingress counted: "
                             << lab_->moved(ZTSEG_HOOK_CGROUP_INGRESS);
}

INSTANTIATE_TEST_SUITE_P(Families, ConntrackFlood, ::testing::Values(4, 6), familyLabel);

}  // namespace
}  // namespace ztseg::test
