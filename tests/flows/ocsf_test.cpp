#include "flows/ocsf.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "flow_fixture.hpp"
#include "flows/enrich.hpp"

namespace ztseg::flows {
namespace {

using namespace testing;
using json = nlohmann::json;

FlowRecord record(uint8_t verdict, uint8_t reason, bool with_rule) {
    static const policy::CompiledPolicy p = compilePolicy();
    Enricher en(p, "node-1", {{42, "db"}});
    ztseg_flow_event ev =
        makeEvent("10.0.0.1", 40000, "10.0.0.3", 5432, ZTSEG_PROTO_TCP, verdict, reason);
    ev.src_identity = workloadId(p, "web");
    ev.dst_identity = workloadId(p, "db");
    ev.rule_id = with_rule ? ruleOf(p, "db") : 0;
    ev.cgroup_id = 42;
    return en.enrich(ev);
}

// Every field the contract requires, with its type, whatever the verdict.
void expectCommonShape(const json& j, const FlowRecord& r) {
    EXPECT_EQ(j.at("class_uid"), 4001);
    EXPECT_EQ(j.at("category_uid"), 4);
    EXPECT_EQ(j.at("class_name"), "Network Activity");
    ASSERT_TRUE(j.at("activity_id").is_number_integer());
    EXPECT_EQ(j.at("type_uid"), 400100 + j.at("activity_id").get<int>());
    EXPECT_TRUE(j.at("severity_id").is_number_integer());
    EXPECT_FALSE(j.contains("is_alert"));  // not in OCSF 1.3.0
    EXPECT_TRUE(j.at("status_id").is_number_integer());
    EXPECT_TRUE(j.at("status").is_string());
    ASSERT_TRUE(j.at("time").is_number_integer());
    int64_t ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(r.time.time_since_epoch()).count();
    EXPECT_EQ(j.at("time").get<int64_t>(), ms);
    EXPECT_GT(ms, int64_t(1'600'000'000'000));  // milliseconds, not seconds or ns
    EXPECT_LT(ms, int64_t(10'000'000'000'000));

    const json& md = j.at("metadata");
    EXPECT_EQ(md.at("version"), "1.3.0");
    EXPECT_EQ(md.at("product").at("name"), "ztseg");
    EXPECT_EQ(md.at("product").at("vendor_name"), "ztseg");
    EXPECT_TRUE(md.at("product").at("version").is_string());
    EXPECT_EQ(md.at("profiles"), json::array({"host", "security_control"}));

    const json& src = j.at("src_endpoint");
    EXPECT_EQ(src.at("ip"), "10.0.0.1");
    ASSERT_TRUE(src.at("port").is_number_integer());
    EXPECT_EQ(src.at("port"), 40000);
    EXPECT_EQ(src.at("name"), "web");
    EXPECT_FALSE(src.contains("hostname"));  // a DNS name, which ztseg does not know
    EXPECT_EQ(src.at("uid"), std::to_string(r.src.identity));
    const json& dst = j.at("dst_endpoint");
    EXPECT_EQ(dst.at("ip"), "10.0.0.3");
    EXPECT_EQ(dst.at("port"), 5432);
    EXPECT_EQ(dst.at("name"), "db");
    EXPECT_FALSE(dst.contains("hostname"));
    EXPECT_TRUE(dst.at("uid").is_string());

    const json& ci = j.at("connection_info");
    EXPECT_EQ(ci.at("protocol_num"), 6);
    EXPECT_EQ(ci.at("protocol_name"), "tcp");
    EXPECT_EQ(ci.at("direction_id"), 3);  // web -> db: both ends are workloads
    EXPECT_EQ(ci.at("direction"), "Lateral");

    EXPECT_EQ(j.at("traffic").at("packets"), 1);
    EXPECT_EQ(j.at("traffic").at("bytes"), 60);
    EXPECT_TRUE(j.at("traffic").at("bytes").is_number_unsigned());

    const json& z = j.at("unmapped").at("ztseg");
    EXPECT_EQ(z.at("verdict"), r.verdict);
    EXPECT_EQ(z.at("reason"), r.reason);
    EXPECT_EQ(z.at("hook"), "cgroup-ingress");
    EXPECT_EQ(z.at("direction"), "ingress");  // ztseg's own, which Lateral hides
    EXPECT_EQ(z.at("generation"), 7);
    EXPECT_EQ(z.at("workload"), "db");
    EXPECT_EQ(z.at("src_labels"), json({{"app", "web"}, {"tier", "front"}}));
    EXPECT_EQ(z.at("dst_labels"), json({{"app", "db"}, {"tier", "data"}}));
    EXPECT_EQ(j.at("device").at("hostname"), "node-1");
}

TEST(FlowOcsf, AllowedNewConnectionIsOpenAllowed) {
    FlowRecord r = record(ZTSEG_VERDICT_ALLOWED, ZTSEG_REASON_ALLOW_POLICY, true);
    json j = toOcsf(r);
    expectCommonShape(j, r);
    EXPECT_EQ(j.at("activity_id"), 1);
    EXPECT_EQ(j.at("activity_name"), "Open");
    EXPECT_EQ(j.at("type_uid"), 400101);
    EXPECT_EQ(j.at("action_id"), 1);
    EXPECT_EQ(j.at("action"), "Allowed");
    EXPECT_EQ(j.at("disposition_id"), 1);
    EXPECT_EQ(j.at("disposition"), "Allowed");
    EXPECT_EQ(j.at("severity_id"), 1);
    EXPECT_EQ(j.at("severity"), "Informational");
    EXPECT_EQ(j.at("unmapped").at("ztseg").at("audit"), false);
    const json& fr = j.at("firewall_rule");
    EXPECT_EQ(fr.at("uid"), std::to_string(r.rule_id));
    EXPECT_EQ(fr.at("name"), "db");
    EXPECT_EQ(fr.at("condition"), r.rule_location);
    EXPECT_EQ(fr.at("condition").get<std::string>().rfind("flows.yaml:", 0), 0u);
}

TEST(FlowOcsf, DroppedIsRefuseDeniedBlocked) {
    FlowRecord r = record(ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_DEFAULT_DENY, false);
    r.suppressed = 4;
    json j = toOcsf(r);
    expectCommonShape(j, r);
    EXPECT_EQ(j.at("activity_id"), 5);
    EXPECT_EQ(j.at("activity_name"), "Refuse");
    EXPECT_EQ(j.at("type_uid"), 400105);
    EXPECT_EQ(j.at("action_id"), 2);
    EXPECT_EQ(j.at("disposition_id"), 2);
    EXPECT_EQ(j.at("disposition"), "Blocked");
    EXPECT_EQ(j.at("severity_id"), 3);
    EXPECT_EQ(j.at("severity"), "Medium");
    EXPECT_EQ(j.at("status_id"), 2);
    EXPECT_FALSE(j.contains("firewall_rule"));  // default deny: no rule decided
    EXPECT_EQ(j.at("count"), 5);
    EXPECT_EQ(j.at("unmapped").at("ztseg").at("suppressed"), 4);
}

TEST(FlowOcsf, WouldDropIsAllowedDetectedLowAndMarkedAudit) {
    FlowRecord r = record(ZTSEG_VERDICT_WOULD_DROP, ZTSEG_REASON_DROP_POLICY_DENY, true);
    json j = toOcsf(r);
    expectCommonShape(j, r);
    EXPECT_EQ(j.at("activity_id"), 1);
    EXPECT_EQ(j.at("action_id"), 1);  // the packet went through
    EXPECT_EQ(j.at("action"), "Allowed");
    EXPECT_EQ(j.at("disposition_id"), 15);
    EXPECT_EQ(j.at("disposition"), "Detected");
    EXPECT_EQ(j.at("severity_id"), 2);
    EXPECT_EQ(j.at("severity"), "Low");
    EXPECT_EQ(j.at("status_id"), 1);
    EXPECT_EQ(j.at("unmapped").at("ztseg").at("audit"), true);
    EXPECT_EQ(j.at("unmapped").at("ztseg").at("would_drop_reason"), "policy-deny");
}

TEST(FlowOcsf, ConntrackTrafficEgressIpv6AndIcmp) {
    FlowRecord r = record(ZTSEG_VERDICT_ALLOWED, ZTSEG_REASON_ALLOW_CONNTRACK, false);
    r.direction = Direction::Egress;
    r.family = 6;
    r.protocol = 58;
    r.protocol_name = "icmpv6";
    r.icmp_type = 128;
    r.src.port = r.dst.port = 0;  // ICMP has none
    json j = toOcsf(r);
    EXPECT_EQ(j.at("activity_id"), 6);
    EXPECT_EQ(j.at("type_uid"), 400106);
    EXPECT_EQ(j.at("connection_info").at("direction_id"), 3);
    EXPECT_EQ(j.at("unmapped").at("ztseg").at("direction"), "egress");
    EXPECT_FALSE(j.at("src_endpoint").contains("port"));
    EXPECT_FALSE(j.at("dst_endpoint").contains("port"));
    r.dst.workload = false;  // not lateral: ztseg's direction
    j = toOcsf(r);
    EXPECT_EQ(j.at("connection_info").at("direction_id"), 2);
    EXPECT_EQ(j.at("connection_info").at("direction"), "Outbound");
    r.direction = Direction::Ingress;
    j = toOcsf(r);
    EXPECT_EQ(j.at("connection_info").at("direction_id"), 1);
    EXPECT_EQ(j.at("connection_info").at("direction"), "Inbound");
    EXPECT_EQ(j.at("unmapped").at("ztseg").at("direction"), "ingress");
    EXPECT_EQ(j.at("connection_info").at("protocol_ver_id"), 6);
    EXPECT_EQ(j.at("unmapped").at("ztseg").at("icmp").at("type"), 128);
}

TEST(FlowOcsf, ReservedAndUnknownValuesAreLeftOut) {
    FlowRecord r = record(ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_UNLABELED, false);
    r.src = {};  // what enrichment makes of an unlabeled source at connect time
    r.src.ip = "0.0.0.0";
    r.src.name = "unlabeled";
    EXPECT_EQ(toOcsf(r).at("src_endpoint"), json({{"uid", "0"}}));
    r.family = 6;
    r.src.ip = "::";
    r.src.identity = kWorldIdentity;
    r.src.name = "world";
    EXPECT_EQ(toOcsf(r).at("src_endpoint"), json({{"uid", "2"}}));
    EXPECT_EQ(toOcsf(r).at("connection_info").at("direction_id"), 1);  // world is no workload
}

TEST(FlowOcsf, LineIsOneLineWithoutNewlineAndParsesBack) {
    FlowRecord r = record(ZTSEG_VERDICT_DROPPED, ZTSEG_REASON_DROP_POLICY_DENY, true);
    r.src.name = "we\nird\xff";  // control character and invalid UTF-8
    std::string line = toOcsfLine(r);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    json back = json::parse(line);
    EXPECT_EQ(back.at("class_uid"), 4001);
    EXPECT_EQ(back.at("src_endpoint").at("name").get<std::string>().substr(0, 6), "we\nird");
}

}  // namespace
}  // namespace ztseg::flows
