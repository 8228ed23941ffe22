#include "flows/enrich.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "flow_fixture.hpp"

namespace ztseg::flows {
namespace {

using namespace testing;
using std::chrono::system_clock;

TEST(FlowEnrich, AllowedIpv4ResolvesIdentitiesLabelsNamesAndRule) {
    policy::CompiledPolicy p = compilePolicy();
    Enricher en(p, "node-1", {{4242, "db"}});
    ztseg_flow_event ev = makeEvent("10.0.0.1", 40000, "10.0.0.3", 5432, ZTSEG_PROTO_TCP,
                                    ZTSEG_VERDICT_ALLOWED, ZTSEG_REASON_ALLOW_POLICY);
    ev.src_identity = workloadId(p, "web");
    ev.dst_identity = workloadId(p, "db");
    ev.rule_id = ruleOf(p, "db");
    ev.cgroup_id = 4242;
    ev.suppressed = 0;
    auto before = system_clock::now();
    FlowRecord r = en.enrich(ev);

    EXPECT_LT(std::chrono::abs(r.time - before), std::chrono::seconds(2));
    EXPECT_EQ(r.host, "node-1");
    EXPECT_EQ(r.verdict, "allowed");
    EXPECT_EQ(r.reason, "allow-policy");
    EXPECT_EQ(r.hook, "cgroup-ingress");
    EXPECT_EQ(r.direction, Direction::Ingress);
    EXPECT_EQ(r.family, 4);
    EXPECT_EQ(r.protocol, ZTSEG_PROTO_TCP);
    EXPECT_EQ(r.protocol_name, "tcp");
    EXPECT_EQ(r.src.ip, "10.0.0.1");
    EXPECT_EQ(r.src.port, 40000);
    EXPECT_EQ(r.src.identity, workloadId(p, "web"));
    EXPECT_EQ(r.src.labels, policy::parseLabels("app=web,tier=front"));
    EXPECT_EQ(r.src.name, "web");
    EXPECT_EQ(r.dst.ip, "10.0.0.3");
    EXPECT_EQ(r.dst.port, 5432);
    EXPECT_EQ(r.dst.labels, policy::parseLabels("app=db,tier=data"));
    EXPECT_EQ(r.dst.name, "db");
    EXPECT_EQ(r.rule_id, ruleOf(p, "db"));
    EXPECT_EQ(r.policy, "db");
    EXPECT_EQ(r.rule_location.rfind("flows.yaml:", 0), 0u) << r.rule_location;
    EXPECT_EQ(r.rule_description, "web reads db");
    EXPECT_EQ(r.workload, "db");
    EXPECT_EQ(r.cgroup_id, 4242u);
    EXPECT_EQ(r.generation, 7u);
    EXPECT_EQ(r.packets, 1u);
    EXPECT_EQ(r.bytes, 60u);
}

TEST(FlowEnrich, DroppedIpv6DefaultDenyHasNoRule) {
    policy::CompiledPolicy p = compilePolicy();
    Enricher en(p, "node-1");
    ztseg_flow_event ev = makeEvent("fd00::4", 5555, "fd00::3", 22, ZTSEG_PROTO_TCP,
                                    ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_DEFAULT_DENY);
    ev.src_identity = workloadId(p, "ledger");
    ev.dst_identity = workloadId(p, "db");
    ev.suppressed = 3;
    ev.cgroup_id = 99;  // not in the (empty) map: the local side's name is used
    FlowRecord r = en.enrich(ev);
    EXPECT_EQ(r.verdict, "dropped");
    EXPECT_EQ(r.reason, "default-deny");
    EXPECT_EQ(r.family, 6);
    EXPECT_EQ(r.src.ip, "fd00::4");
    EXPECT_EQ(r.dst.ip, "fd00::3");
    EXPECT_EQ(r.src.name, "ledger");
    EXPECT_EQ(r.rule_id, 0u);
    EXPECT_EQ(r.policy, "");
    EXPECT_EQ(r.rule_location, "");
    EXPECT_EQ(r.suppressed, 3u);
    EXPECT_EQ(r.workload, "db");
}

TEST(FlowEnrich, WouldDropEgressAndUnknownIdentities) {
    policy::CompiledPolicy p = compilePolicy();
    Enricher en(p, "node-2");
    ztseg_flow_event ev = makeEvent("10.0.0.4", 1234, "203.0.113.9", 443, ZTSEG_PROTO_TCP,
                                    ZTSEG_VERDICT_WOULD_DROP, ZTSEG_REASON_DROP_UNLABELED);
    ev.direction = ZTSEG_DIR_EGRESS;
    ev.hook = ZTSEG_HOOK_CGROUP_EGRESS;
    ev.src_identity = workloadId(p, "ledger");
    ev.dst_identity = kUnlabeled;
    FlowRecord r = en.enrich(ev);
    EXPECT_EQ(r.verdict, "would-drop");
    EXPECT_EQ(r.reason, "unlabeled");
    EXPECT_EQ(r.hook, "cgroup-egress");
    EXPECT_EQ(r.direction, Direction::Egress);
    EXPECT_EQ(r.workload, "ledger");
    EXPECT_EQ(r.dst.identity, kUnlabeled);
    EXPECT_TRUE(r.dst.labels.empty());

    ev.dst_identity = 0xdeadbeef;  // not in the policy
    ev.rule_id = 999999;           // not in the policy
    ev.hook = 200;
    ev.reason = 200;
    ev.verdict = 77;
    r = en.enrich(ev);
    EXPECT_EQ(r.dst.name, "");
    EXPECT_EQ(r.policy, "");
    EXPECT_EQ(r.hook, "unknown");
    EXPECT_EQ(r.reason, "unknown");
    EXPECT_EQ(r.verdict, "unknown");
}

TEST(FlowEnrich, ExternalAndIcmpHaveNoPorts) {
    policy::CompiledPolicy p = compilePolicy();
    Enricher en(p, "node-1");
    ztseg_flow_event ev = makeEvent("192.0.2.5", 77, "10.0.0.3", 0, ZTSEG_PROTO_ICMP,
                                    ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_DEFAULT_DENY);
    ev.icmp_type = 8;
    ev.icmp_code = 0;
    const policy::IdentityInfo* partner = nullptr;
    for (const auto& i : p.identities) {
        if (i.labels == policy::parseLabels("zone=partner")) {
            partner = &i;
        }
    }
    ASSERT_NE(partner, nullptr);
    ev.src_identity = partner->id;
    FlowRecord r = en.enrich(ev);
    EXPECT_EQ(r.protocol_name, "icmp");
    EXPECT_EQ(r.src.port, 0);  // echo id is not a port
    EXPECT_EQ(r.dst.port, 0);
    EXPECT_EQ(r.icmp_type, 8);
    EXPECT_EQ(r.src.name, "partner");
    EXPECT_EQ(r.src.labels, policy::parseLabels("zone=partner"));

    ztseg_flow_event ev6 = makeEvent("fd00::1", 9, "fd00::3", 0, ZTSEG_PROTO_ICMPV6,
                                     ZTSEG_VERDICT_ALLOWED, ZTSEG_REASON_ALLOW_RELATED);
    ev6.icmp_type = 1;
    ev6.icmp_code = 4;
    r = en.enrich(ev6);
    EXPECT_EQ(r.protocol_name, "icmpv6");
    EXPECT_EQ(r.src.port, 0);
    EXPECT_EQ(r.icmp_type, 1);
    EXPECT_EQ(r.icmp_code, 4);
}

TEST(FlowEnrich, PolicyAndWorkloadNamesSwapWhileEnriching) {
    auto p1 = std::make_shared<const policy::CompiledPolicy>(compilePolicy(1));
    Enricher en(p1, "node-1");
    ztseg_flow_event ev = makeEvent("10.0.0.1", 1, "10.0.0.3", 5432, ZTSEG_PROTO_TCP,
                                    ZTSEG_VERDICT_ALLOWED, ZTSEG_REASON_ALLOW_POLICY);
    ev.src_identity = workloadId(*p1, "web");
    ev.cgroup_id = 5;
    std::atomic<bool> stop{false};
    std::thread reader([&] {
        while (!stop) {
            FlowRecord r = en.enrich(ev);
            ASSERT_EQ(r.src.name, "web");
        }
    });
    for (int i = 0; i < 50; ++i) {
        en.setPolicy(std::make_shared<const policy::CompiledPolicy>(compilePolicy(uint64_t(i))));
        en.setWorkloadNames({{5, "w" + std::to_string(i)}});
    }
    stop = true;
    reader.join();
    EXPECT_EQ(en.policy()->generation, 49u);
    EXPECT_EQ(en.enrich(ev).workload, "w49");
    EXPECT_THROW(en.setPolicy(nullptr), Error);
}

}  // namespace
}  // namespace ztseg::flows
