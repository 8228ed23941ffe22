// Host policies with real traffic: the lab's host namespace is "the host"
// (its netns cookie is the datapath's host_netns_cookie), a process there
// outside every workload cgroup is a host process. A host service is
// reachable only from the bastion (web), host egress is restricted to one
// service, the kernel's own answers (RST, echo reply) to refused peers are
// refused too, and audit mode reports would-drops without dropping.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>

#include "datapath/event_reader.hpp"
#include "integration/lab_topology.hpp"

namespace ztseg::test {
namespace {

using namespace std::chrono_literals;

constexpr IdentityId kIntruderId = 302;  // labeled, but not the bastion
constexpr uint16_t kHostSsh = 2222;      // the host's "sshd": only from web (the bastion)

uint64_t netnsCookie(const NetNs& ns) {
    NetnsScope in(ns);
    UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    uint64_t cookie = 0;
    socklen_t len = sizeof(cookie);
    EXPECT_EQ(::getsockopt(s.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len), 0);
    return cookie;
}

class HostPolicyLab : public ::testing::Test {
  protected:
    void SetUp() override {
        static std::atomic<int> seq{0};
        lab_ = std::make_unique<DbLab>();
        host_cg_ = std::make_unique<Cgroup2>(uniqueName("zthost"));
        opts_.pin_dir =
            "/sys/fs/bpf/ztseg-hp-" + std::to_string(getpid()) + "-" + std::to_string(seq++);
        opts_.drop_event_interval_ns = 0;
        opts_.host_netns_cookie = netnsCookie(lab_->host());
        dp_.emplace(Datapath::create(opts_));
        reader_ = std::make_unique<EventReader>(
            dp_->eventsFd(), [this](const ztseg_flow_event& e) { events_.push_back(e); });
        {
            NetnsScope in(lab_->host());
            dp_->attachXdp(lab_->veth().nameA());
        }
        // the host's processes: cgroup hooks over their cgroup (ztsegd: the cgroup2 root)
        dp_->attachCgroup(host_cg_->path());
    }
    void TearDown() override {
        reader_.reset();
        dp_.reset();
        Datapath::uninstall(opts_.pin_dir);
        host_cg_.reset();
        lab_.reset();
    }

    // web is the bastion, the intruder a labeled peer; the host's address
    // (the lab's "db" address) is declared; the host is in `mode`.
    void apply(uint64_t number, WorkloadMode mode) {
        Generation g;
        g.number = number;
        for (int f : {4, 6}) {
            g.identities.push_back({IpPrefix::parse(lab_->dbAddr(f)), kHostIdentity});
            g.identities.push_back({IpPrefix::parse(lab_->webAddr(f)), kWebId});
            g.identities.push_back({IpPrefix::parse(lab_->intruderAddr(f)), kIntruderId});
        }
        g.modes[kHostIdentity] = mode;
        g.rules = {
            {kHostIdentity,
             kWebId,
             Direction::Ingress,
             ZTSEG_PROTO_TCP,
             {kHostSsh, kHostSsh},
             Action::Allow,
             1},
            {kHostIdentity,
             kWebId,
             Direction::Egress,
             ZTSEG_PROTO_TCP,
             {kWebPort, kWebPort},
             Action::Allow,
             2},
        };
        dp_->apply(g);
    }

    // Connect from the peer namespace with source `src` to the host's address.
    int connectToHost(const std::string& src, uint16_t port) {
        std::string dst = lab_->dbAddr(4);
        return lab_->inPeer([&] { return tcpConnect(dst, port, 500ms, src).err; });
    }
    int hostToWeb(uint16_t port) { return lab_->hostToWeb(*host_cg_, port); }
    std::vector<ztseg_flow_event> takeEvents() {
        reader_->drain();
        return std::exchange(events_, {});
    }
    static bool has(const std::vector<ztseg_flow_event>& ev, uint8_t verdict, uint8_t reason,
                    uint32_t src, uint32_t dst) {
        return std::any_of(ev.begin(), ev.end(), [&](const ztseg_flow_event& e) {
            return e.verdict == verdict && e.reason == reason && e.src_identity == src &&
                   e.dst_identity == dst;
        });
    }

    std::unique_ptr<DbLab> lab_;
    std::unique_ptr<Cgroup2> host_cg_;
    DatapathOptions opts_;
    std::optional<Datapath> dp_;
    std::unique_ptr<EventReader> reader_;
    std::vector<ztseg_flow_event> events_;
};

TEST_F(HostPolicyLab, AHostServiceIsReachableOnlyFromTheBastion) {
    auto sshd = lab_->startServerIn(*host_cg_, kHostSsh);
    auto other = lab_->startServerIn(*host_cg_, kHostSsh + 1);
    apply(1, WorkloadMode::Enforce);
    EXPECT_EQ(connectToHost(lab_->webAddr(4), kHostSsh), 0);
    EXPECT_NE(connectToHost(lab_->intruderAddr(4), kHostSsh), 0);
    EXPECT_NE(connectToHost(lab_->webAddr(4), kHostSsh + 1), 0);
    auto ev = takeEvents();
    // refused at the interface ingress stage, before the host's stack answers
    EXPECT_TRUE(
        has(ev, ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_DEFAULT_DENY, kIntruderId, kHostIdentity));
    EXPECT_TRUE(has(ev, ZTSEG_VERDICT_ALLOWED, ZTSEG_REASON_ALLOW_POLICY, kWebId, kHostIdentity));
}

TEST_F(HostPolicyLab, WithoutAHostPolicyTheHostIsNotJudged) {
    auto sshd = lab_->startServerIn(*host_cg_, kHostSsh + 1);
    Generation g;
    g.number = 1;
    for (int f : {4, 6}) {
        g.identities.push_back({IpPrefix::parse(lab_->dbAddr(f)), kHostIdentity});
        g.identities.push_back({IpPrefix::parse(lab_->intruderAddr(f)), kIntruderId});
    }
    dp_->apply(g);
    EXPECT_EQ(connectToHost(lab_->intruderAddr(4), kHostSsh + 1), 0);
}

TEST_F(HostPolicyLab, HostEgressIsRestricted) {
    auto allowed = lab_->startWebServer(kWebPort);
    auto refused = lab_->startWebServer(kOtherPort);
    apply(1, WorkloadMode::Enforce);
    EXPECT_EQ(hostToWeb(kWebPort), 0);  // request and replies, both ways
    EXPECT_NE(hostToWeb(kOtherPort), 0);
    auto ev = takeEvents();
    EXPECT_TRUE(
        has(ev, ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_DEFAULT_DENY, kHostIdentity, kWebId));
}

TEST_F(HostPolicyLab, TheKernelDoesNotAnswerRefusedPeersForTheHost) {
    apply(1, WorkloadMode::Enforce);
    // no listener on the port: the kernel would answer with a RST. From the
    // bastion on a refused port and from the intruder: no answer at all
    // (timeout), where an unjudged host answers at once (ECONNREFUSED).
    EXPECT_EQ(connectToHost(lab_->webAddr(4), kHostSsh + 7), ETIMEDOUT);
    EXPECT_EQ(connectToHost(lab_->intruderAddr(4), kHostSsh + 7), ETIMEDOUT);
    // the bastion's allowed port, nothing listening: refused by the kernel, as it should be
    EXPECT_EQ(connectToHost(lab_->webAddr(4), kHostSsh), ECONNREFUSED);
    std::string dst = lab_->dbAddr(4), intruder = lab_->intruderAddr(4);
    EXPECT_NE(lab_->inPeer([&] { return ping(dst, 500ms, intruder); }), 0);
}

TEST_F(HostPolicyLab, AuditModeReportsWouldDropsAndDropsNothing) {
    auto sshd = lab_->startServerIn(*host_cg_, kHostSsh);
    auto refused = lab_->startWebServer(kOtherPort);
    apply(1, WorkloadMode::Audit);
    EXPECT_EQ(connectToHost(lab_->intruderAddr(4), kHostSsh), 0);
    EXPECT_EQ(hostToWeb(kOtherPort), 0);
    auto ev = takeEvents();
    EXPECT_TRUE(has(ev, ZTSEG_VERDICT_WOULD_DROP, ZTSEG_REASON_DROP_DEFAULT_DENY, kIntruderId,
                    kHostIdentity));
    EXPECT_TRUE(
        has(ev, ZTSEG_VERDICT_WOULD_DROP, ZTSEG_REASON_DROP_DEFAULT_DENY, kHostIdentity, kWebId));
    EXPECT_FALSE(std::any_of(ev.begin(), ev.end(), [](const ztseg_flow_event& e) {
        return e.verdict == ZTSEG_VERDICT_DROPPED;
    }));
}

}  // namespace
}  // namespace ztseg::test
