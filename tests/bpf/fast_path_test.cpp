// The XDP fast paths and how identities resolve: host addresses in the
// exact-match maps win over covering prefixes in the LPM tries; established
// flows are served from the per-CPU flow cache, which never outlives the
// generation that filled it; an unlabeled source is dropped before conntrack
// is probed, except for ICMP errors about tracked connections.
#include <bpf/bpf.h>
#include <sched.h>

#include <string>

#include "bpf/scenario.hpp"
#include "common/unique_fd.hpp"

namespace ztseg::test {
namespace {

class FastPath : public FamilyTest {
  protected:
    void SetUp() override {
        FamilyTest::SetUp();
        addHosts({{n_.web, kWeb}, {n_.db, kDb}});
        addWorkload(kWeb, WorkloadMode::Enforce);
        gen().modes[kDb] = WorkloadMode::Enforce;
    }
    // An address inside the lab's prefix (fd00:1::/64, 10.1.0.0/24) that is no host.
    std::string inPrefix() const { return n_.v6 ? "fd00:1::77" : "10.1.0.77"; }
    std::string prefix() const { return n_.v6 ? "fd00:1::/64" : "10.1.0.0/24"; }
    // Conntrack alone, without the flow cache (what an LRU eviction does).
    void forgetConntrackOnly() {
        for (const char* table : {"/maps/ztseg_ct", "/maps/ztseg_ct_new"}) {
            UniqueFd ct(bpf_obj_get((options().pin_dir + table).c_str()));
            ASSERT_TRUE(ct.valid());
            ztseg_ct_key k{};
            while (bpf_map_get_next_key(ct.get(), nullptr, &k) == 0) {
                ASSERT_EQ(bpf_map_delete_elem(ct.get(), &k), 0);
            }
        }
    }
    // The flow cache is per CPU: keep this thread on one for the test.
    void pinToOneCpu() {
        ASSERT_EQ(sched_getaffinity(0, sizeof(saved_), &saved_), 0);
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(sched_getcpu(), &set);
        ASSERT_EQ(sched_setaffinity(0, sizeof(set), &set), 0);
        pinned_ = true;
    }
    void TearDown() override {
        if (pinned_) {
            sched_setaffinity(0, sizeof(saved_), &saved_);
        }
        FamilyTest::TearDown();
    }
    std::vector<uint8_t> dbReply() const {
        return pkt(n_.db, n_.web).tcp(5432, 40000, kTcpSyn | kTcpAck).build();
    }
    // A whole handshake: the flow is assured (only those are cached by XDP).
    void establishWebToDb() {
        ASSERT_EQ(runCgroupEgress(pkt(n_.web, n_.db).tcp(40000, 5432).build()).retval, kSkbPass);
        ASSERT_EQ(runCgroupIngress(dbReply()).retval, kSkbPass);
        ASSERT_EQ(runCgroupEgress(pkt(n_.web, n_.db).tcp(40000, 5432, kTcpAck).seqAck(2, 2).build())
                      .retval,
                  kSkbPass);
        ASSERT_EQ(dp().conntrackUsage().assured, 1u);
    }

  private:
    cpu_set_t saved_{};
    bool pinned_ = false;
};

constexpr Rule kWebToDb{kWeb,          kDb, Direction::Egress, ZTSEG_PROTO_TCP, {5432, 5432},
                        Action::Allow, 8};
constexpr Rule kDbFromExt{kDb,           kExt, Direction::Ingress, ZTSEG_PROTO_TCP, {22, 22},
                          Action::Allow, 9};

TEST_P(FastPath, HostAddressWinsOverCoveringPrefix) {
    addIdentity(prefix(), kExt);  // the rest of the subnet is "ext"
    addRules({kDbFromExt});
    applyGen();
    // a host of the subnet that has its own identity: judged as web (no rule)
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 22).build(), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    // any other address of the subnet: ext, admitted
    expectXdp(pkt(inPrefix(), n_.db).tcp(40000, 22).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    // outside the subnet: nobody
    expectXdp(pkt(n_.stranger, n_.db).tcp(40000, 22).build(), kXdpDrop,
              ZTSEG_REASON_DROP_UNLABELED);
}

TEST_P(FastPath, WithoutPrefixesOnlyHostAddressesHaveIdentities) {
    addRules({kDbFromExt});
    applyGen();
    expectXdp(pkt(inPrefix(), n_.db).tcp(40000, 22).build(), kXdpDrop, ZTSEG_REASON_DROP_UNLABELED);
    expectXdp(pkt(n_.web, n_.db).tcp(40000, 22).build(), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

// The proof the cache is used: with conntrack forgotten behind its back, the
// cached flow still passes XDP (which only pre-filters), and cgroup ingress,
// which judges every packet that reaches a workload, refuses it.
TEST_P(FastPath, CachedEstablishedFlowSkipsConntrackAndCgroupStillJudges) {
    pinToOneCpu();
    addRules({kWebToDb});
    applyGen();
    establishWebToDb();
    expectXdp(dbReply(), kXdpPass, ZTSEG_REASON_ALLOW_CONNTRACK);  // tracked: cached
    forgetConntrackOnly();
    expectXdp(dbReply(), kXdpPass, ZTSEG_REASON_ALLOW_CONNTRACK);  // served from the cache
    expectIn(dbReply(), kSkbDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(FastPath, CachedFlowIsJudgedAgainUnderANewGeneration) {
    pinToOneCpu();
    addRules({kWebToDb});
    applyGen();
    establishWebToDb();
    expectXdp(dbReply(), kXdpPass, ZTSEG_REASON_ALLOW_CONNTRACK);
    expectXdp(dbReply(), kXdpPass, ZTSEG_REASON_ALLOW_CONNTRACK);
    gen().rules.clear();  // the rule is revoked
    applyGen();
    expectXdp(dbReply(), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(FastPath, FlushingConntrackEmptiesTheFlowCache) {
    pinToOneCpu();
    addRules({kWebToDb});
    applyGen();
    establishWebToDb();
    expectXdp(dbReply(), kXdpPass, ZTSEG_REASON_ALLOW_CONNTRACK);
    dp().flushConntrack();
    expectXdp(dbReply(), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
}

TEST_P(FastPath, UnlabeledSourceDroppedWithoutConntrackButRelatedErrorsPass) {
    addRules({kWebToDb});
    applyGen();
    auto out = pkt(n_.web, n_.db).tcp(40000, 5432);
    ASSERT_EQ(runCgroupEgress(out.build()).retval, kSkbPass);
    // A stranger sending to web: dropped as unlabeled (no conntrack probe needed).
    expectXdp(pkt(n_.stranger, n_.web).tcp(5432, 40000).build(), kXdpDrop,
              ZTSEG_REASON_DROP_UNLABELED);
    // A stranger's path-MTU error about web's tracked connection: related, passes.
    expectXdp(pathMtu(n_.stranger, n_.web, out), kXdpPass, ZTSEG_REASON_ALLOW_RELATED);
    // ... any other error from it is refused (a forged port-unreachable) ...
    expectXdp(unreachable(n_.stranger, n_.web, out), kXdpDrop, ZTSEG_REASON_DROP_UNLABELED);
    // ... and so is one about a connection nobody tracks.
    auto other = pkt(n_.web, n_.db).tcp(40001, 5432);
    expectXdp(pathMtu(n_.stranger, n_.web, other), kXdpDrop, ZTSEG_REASON_DROP_UNLABELED);
}

// XDP judges a SYN (a connection's first packet) by policy alone; packets of
// tracked connections are found in conntrack. On the same tuple as a tracked
// connection, a SYN from the peer is therefore judged as the new inbound
// connection it asks for, the SYN-ACK as the reply it is.
TEST_P(FastPath, SynJudgedByPolicyRepliesByConntrack) {
    addRules({kWebToDb});
    applyGen();
    establishWebToDb();
    expectXdp(pkt(n_.db, n_.web).tcp(5432, 40000, kTcpSyn).build(), kXdpDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
    expectXdp(dbReply(), kXdpPass, ZTSEG_REASON_ALLOW_CONNTRACK);
}

INSTANTIATE_TEST_SUITE_P(Families, FastPath, ::testing::Values(Family::V4, Family::V6), familyName);

}  // namespace
}  // namespace ztseg::test
