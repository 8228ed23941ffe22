// Proven identity on the wire with real connections: the sock_ops program on
// a workload's cgroup writes the proof into the SYN the kernel sends, and the
// receiving side (tc at tcx ingress on a veth in another network namespace,
// then cgroup ingress of the server's workload) judges the connection on the
// identity it proves. Two workloads
// behind one address get their own verdicts; a socket without the proof (a
// process outside the workload cgroups forging the same source address) is
// refused as unproven.
#include <chrono>
#include <string>
#include <vector>

#include "bpf/scenario.hpp"
#include "common/lab.hpp"
#include "datapath/wire_proof.hpp"

namespace ztseg::test {
namespace {

using namespace std::chrono_literals;

class WireProofTraffic : public DatapathTest, public ::testing::WithParamInterface<Family> {
  protected:
    // Flow events of the interface ingress stage since the last call (the
    // client's cgroup hooks report its egress too).
    std::vector<ztseg_flow_event> ingressStageEvents() {
        std::vector<ztseg_flow_event> out;
        for (const auto& e : takeEvents()) {
            if (e.hook == ZTSEG_HOOK_XDP)
                out.push_back(e);
        }
        return out;
    }
};

TEST_P(WireProofTraffic, AWorkloadsConnectionIsJudgedOnTheIdentityItProves) {
    const bool v6 = GetParam() == Family::V6;
    const std::string a = v6 ? "fd00:218::1" : "10.218.0.1";
    const std::string b = v6 ? "fd00:218::2" : "10.218.0.2";
    const std::string hostlen = v6 ? "/128" : "/32";
    NetNs nsa, nsb;
    VethPair veth(uniqueName("zwa"), &nsa, uniqueName("zwb"), &nsb);
    veth.addAddress(0, a + (v6 ? "/64" : "/24"));
    veth.addAddress(1, b + (v6 ? "/64" : "/24"));
    Cgroup2 api_cg, web_cg, plain_cg, db_cg;

    // host A's address (a) is labeled web; its workloads api and web both use it
    addIdentity(a + hostlen, kWeb);
    addIdentity(b + hostlen, kDb);
    for (IdentityId id : {kApi, kWeb, kDb}) gen().modes[id] = WorkloadMode::Enforce;
    gen().endpoints.push_back({api_cg.id(), kApi});
    gen().endpoints.push_back({web_cg.id(), kWeb});
    gen().endpoints.push_back({db_cg.id(), kDb});
    addRules({{kDb, kApi, Direction::Ingress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 1},
              {kApi, kDb, Direction::Egress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 2},
              {kWeb, kDb, Direction::Egress, ZTSEG_PROTO_TCP, {5432, 5432}, Action::Allow, 3}});
    applyGen();
    WireKey k;
    k.id = 5;
    for (size_t i = 0; i < k.key.size(); ++i) k.key[i] = static_cast<uint8_t>(0xa0 + i);
    k.send = k.accept = true;
    // one datapath plays both hosts: a is the peer's address to the receiver
    // (its SYNs must be proven), b the peer's address to the sender (its
    // SYNs to b get a proof); one key, as two hosts share it
    WireProofConfig c;
    c.peers.push_back({1,
                       "host-a",
                       {IpPrefix::parse(a + hostlen), IpPrefix::parse(b + hostlen)},
                       {k},
                       {kApi, kWeb}});
    dp().setWireProof(c);
    dp().attachCgroup(api_cg.path());
    dp().attachCgroup(web_cg.path());
    dp().attachCgroup(db_cg.path());
    {
        NetnsScope in(nsb);
        ASSERT_EQ(dp().attachXdp(veth.nameB(), XdpRequest::Tcx), XdpMode::Tcx);
    }

    Child server(&nsb, &db_cg, [&](Child::Ready& ready) {
        UniqueFd l = tcpListen(b, 5432);
        ready.signal();
        tcpEchoServeConcurrently(l.get(), 30s);
        return 0;
    });
    server.waitReady(5s);
    auto connectFrom = [&](Cgroup2& cg) {
        Child client(&nsa, &cg, [&] { return tcpEchoRoundTrip(b, 5432, "proof", 1500ms); });
        return client.wait(10s);
    };

    takeEvents();
    snapshotCounters();
    EXPECT_EQ(connectFrom(api_cg), 0) << "api's proven connection is refused";
    EXPECT_GE(counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_ALLOW_POLICY), 1u) << moved(ZTSEG_HOOK_XDP);
    EXPECT_EQ(counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_UNPROVEN), 0u) << moved(ZTSEG_HOOK_XDP);
    for (const auto& e : takeEvents()) {
        EXPECT_NE(e.hook, ZTSEG_HOOK_XDP) << "the ingress stage reports only what it refuses";
    }

    snapshotCounters();
    EXPECT_NE(connectFrom(web_cg), 0) << "web, behind the same address, is let in";
    EXPECT_GE(counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_DEFAULT_DENY), 1u) << moved(ZTSEG_HOOK_XDP);
    auto events = ingressStageEvents();
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events[0].reason, ZTSEG_REASON_DROP_DEFAULT_DENY);
    EXPECT_EQ(events[0].src_identity, kWeb);
    EXPECT_EQ(events[0].flags & ZTSEG_EVF_PROVEN, ZTSEG_EVF_PROVEN);

    // a process of host A outside the workload cgroups: no sock_ops, no
    // proof; to the receiver, a forged source address
    snapshotCounters();
    EXPECT_NE(connectFrom(plain_cg), 0) << "a SYN without proof is let in";
    EXPECT_GE(counted(ZTSEG_HOOK_XDP, ZTSEG_REASON_DROP_UNPROVEN), 1u) << moved(ZTSEG_HOOK_XDP);
    events = ingressStageEvents();
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events[0].reason, ZTSEG_REASON_DROP_UNPROVEN);
    EXPECT_EQ(events[0].src_identity, kWeb);

    {
        NetnsScope in(nsb);
        dp().detachXdp(veth.nameB());
    }
    dp().detachCgroup(api_cg.path());
    dp().detachCgroup(web_cg.path());
    dp().detachCgroup(db_cg.path());
}

INSTANTIATE_TEST_SUITE_P(Families, WireProofTraffic, ::testing::Values(Family::V4, Family::V6),
                         familyName);

}  // namespace
}  // namespace ztseg::test
