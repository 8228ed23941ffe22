#include "flows/filter.hpp"

#include <gtest/gtest.h>

#include "common/error.hpp"

namespace ztseg::flows {
namespace {

FlowRecord rec(const std::string& verdict, const std::string& src, const std::string& src_labels,
               const std::string& dst, const std::string& dst_labels, uint16_t dport,
               const std::string& proto = "tcp", Direction dir = Direction::Ingress) {
    FlowRecord r;
    r.verdict = verdict;
    r.src.ip = src;
    if (!src_labels.empty()) {
        r.src.labels = policy::parseLabels(src_labels);
    }
    r.dst.ip = dst;
    if (!dst_labels.empty()) {
        r.dst.labels = policy::parseLabels(dst_labels);
    }
    r.dst.port = dport;
    r.src.port = 40000;
    r.protocol_name = proto;
    r.direction = dir;
    r.family = src.find(':') == std::string::npos ? 4 : 6;
    return r;
}

const FlowRecord kWebToDb =
    rec("allowed", "10.0.0.1", "app=web,tier=front", "10.0.0.3", "app=db", 5432);
const FlowRecord kLedgerDrop =
    rec("dropped", "fd00::4", "app=ledger", "fd00::3", "app=db", 22, "tcp", Direction::Egress);
const FlowRecord kAuditUdp =
    rec("would-drop", "192.0.2.5", "", "10.0.0.4", "app=ledger", 53, "udp");

TEST(FlowFilter, EmptyMatchesEverything) {
    FlowFilter f;
    EXPECT_TRUE(f.empty());
    EXPECT_TRUE(f.matches(kWebToDb));
    EXPECT_TRUE(f.matches(kLedgerDrop));
    EXPECT_TRUE(FlowFilter::parse({}).empty());
}

TEST(FlowFilter, Verdicts) {
    FlowFilter f = FlowFilter::parse({"--verdict", "dropped", "--verdict=AUDIT"});
    EXPECT_EQ(f.verdicts, (std::set<std::string>{"dropped", "would-drop"}));
    EXPECT_FALSE(f.matches(kWebToDb));
    EXPECT_TRUE(f.matches(kLedgerDrop));
    EXPECT_TRUE(f.matches(kAuditUdp));
    EXPECT_EQ(FlowFilter::parseVerdict("FORWARDED"), "allowed");
}

TEST(FlowFilter, Labels) {
    FlowFilter from = FlowFilter::parse({"--from-label", "app=web"});
    EXPECT_TRUE(from.matches(kWebToDb));
    EXPECT_FALSE(from.matches(kLedgerDrop));
    EXPECT_FALSE(from.matches(kAuditUdp));  // unlabeled source
    FlowFilter to = FlowFilter::parse({"--to-label", "app=db"});
    EXPECT_TRUE(to.matches(kWebToDb));
    EXPECT_TRUE(to.matches(kLedgerDrop));
    EXPECT_FALSE(to.matches(kAuditUdp));
    // Every label of the selector must be present; several selectors are alternatives.
    EXPECT_FALSE(FlowFilter::parse({"--from-label", "app=web,tier=back"}).matches(kWebToDb));
    FlowFilter either =
        FlowFilter::parse({"--from-label", "app=ledger", "--from-label", "app=web"});
    EXPECT_TRUE(either.matches(kWebToDb));
    EXPECT_TRUE(either.matches(kLedgerDrop));
}

TEST(FlowFilter, IpPrefixes) {
    FlowFilter f = FlowFilter::parse({"--from-ip", "10.0.0.0/24"});
    EXPECT_TRUE(f.matches(kWebToDb));
    EXPECT_FALSE(f.matches(kLedgerDrop));  // IPv6 never inside an IPv4 prefix
    EXPECT_FALSE(f.matches(kAuditUdp));
    FlowFilter to6 = FlowFilter::parse({"--to-ip=fd00::/64"});
    EXPECT_TRUE(to6.matches(kLedgerDrop));
    EXPECT_FALSE(to6.matches(kWebToDb));
    FlowFilter host = FlowFilter::parse({"--to-ip", "10.0.0.4"});  // no length: host
    EXPECT_TRUE(host.matches(kAuditUdp));
    EXPECT_FALSE(host.matches(kWebToDb));
}

TEST(FlowFilter, PortProtocolDirection) {
    EXPECT_TRUE(FlowFilter::parse({"--port", "5432"}).matches(kWebToDb));
    EXPECT_FALSE(FlowFilter::parse({"--port", "40000"}).matches(kWebToDb));  // destination port
    EXPECT_TRUE(FlowFilter::parse({"--protocol", "UDP"}).matches(kAuditUdp));
    EXPECT_FALSE(FlowFilter::parse({"--protocol", "udp"}).matches(kWebToDb));
    EXPECT_TRUE(FlowFilter::parse({"--protocol", "6"}).matches(kWebToDb));
    EXPECT_TRUE(FlowFilter::parse({"--direction", "egress"}).matches(kLedgerDrop));
    EXPECT_FALSE(FlowFilter::parse({"--direction", "ingress"}).matches(kLedgerDrop));
    EXPECT_TRUE(FlowFilter::parse({"--traffic-direction", "Inbound"}).matches(kWebToDb));
}

TEST(FlowFilter, CombinationsMustAllHold) {
    FlowFilter f = FlowFilter::parse({"--verdict", "allowed", "--from-label", "app=web", "--to-ip",
                                      "10.0.0.0/8", "--port", "5432", "--protocol", "tcp",
                                      "--direction", "ingress"});
    EXPECT_FALSE(f.empty());
    EXPECT_TRUE(f.matches(kWebToDb));
    FlowRecord other = kWebToDb;
    other.dst.port = 5433;
    EXPECT_FALSE(f.matches(other));
    other = kWebToDb;
    other.verdict = "dropped";
    EXPECT_FALSE(f.matches(other));
    other = kWebToDb;
    other.dst.ip = "192.168.1.1";
    EXPECT_FALSE(f.matches(other));
    other = kWebToDb;
    other.src.labels = policy::parseLabels("app=api");
    EXPECT_FALSE(f.matches(other));
}

void expectError(const std::vector<std::string>& args, const std::string& needle) {
    try {
        FlowFilter::parse(args);
        ADD_FAILURE() << "no error for " << args.front();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

TEST(FlowFilter, BadInputIsAnErrorNamingTheOptionAndText) {
    expectError({"--verdict", "maybe"}, "--verdict 'maybe'");
    expectError({"--from-label", ""}, "label selector");
    expectError({"--to-label", "=oops"}, "'=oops'");
    expectError({"--from-ip", "10.0.0.0/33"}, "'10.0.0.0/33'");
    expectError({"--to-ip", "not-an-ip"}, "not-an-ip");
    expectError({"--port", "0"}, "--port '0'");
    expectError({"--port", "65536"}, "1 to 65535");
    expectError({"--port", "22x"}, "'22x'");
    expectError({"--protocol", "gre-ish"}, "--protocol 'gre-ish'");
    expectError({"--protocol", "300"}, "1 to 255");
    expectError({"--direction", "sideways"}, "ingress or egress");
    expectError({"--direction", "ingress", "--direction", "egress"}, "conflicting");
    expectError({"--verdict"}, "needs a value");
    expectError({"--colour", "red"}, "unknown option '--colour'");
}

}  // namespace
}  // namespace ztseg::flows
