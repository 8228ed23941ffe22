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
    EXPECT_TRUE(FlowFilter::parse({"--to-port", "5432"}).matches(kWebToDb));
    EXPECT_FALSE(FlowFilter::parse({"--to-port", "40000"}).matches(kWebToDb));
    EXPECT_TRUE(FlowFilter::parse({"--from-port", "40000"}).matches(kWebToDb));
    EXPECT_FALSE(FlowFilter::parse({"--from-port", "5432"}).matches(kWebToDb));
    // --port is either side, as in hubble observe.
    EXPECT_TRUE(FlowFilter::parse({"--port", "5432"}).matches(kWebToDb));
    EXPECT_TRUE(FlowFilter::parse({"--port", "40000"}).matches(kWebToDb));
    EXPECT_FALSE(FlowFilter::parse({"--port", "22"}).matches(kWebToDb));
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

TEST(FlowFilter, EitherSideAddressesAndLabels) {
    FlowFilter ip = FlowFilter::parse({"--ip", "10.0.0.3"});
    EXPECT_TRUE(ip.matches(kWebToDb)) << "destination";
    EXPECT_TRUE(FlowFilter::parse({"--ip", "10.0.0.1"}).matches(kWebToDb)) << "source";
    EXPECT_FALSE(ip.matches(kLedgerDrop));
    EXPECT_TRUE(FlowFilter::parse({"--ip", "fd00::/64"}).matches(kLedgerDrop));
    FlowFilter label = FlowFilter::parse({"--label", "app=ledger"});
    EXPECT_TRUE(label.matches(kLedgerDrop)) << "source";
    EXPECT_TRUE(label.matches(kAuditUdp)) << "destination";
    EXPECT_FALSE(label.matches(kWebToDb));
}

TEST(FlowFilter, AKeyAloneAsksOnlyThatTheLabelExists) {
    EXPECT_TRUE(FlowFilter::parse({"--from-label", "tier"}).matches(kWebToDb));
    EXPECT_FALSE(FlowFilter::parse({"--from-label", "tier"}).matches(kLedgerDrop));
    EXPECT_TRUE(FlowFilter::parse({"--from-label", "app=web,tier"}).matches(kWebToDb));
    EXPECT_FALSE(FlowFilter::parse({"--from-label", "app=db,tier"}).matches(kWebToDb));
    EXPECT_FALSE(FlowFilter::parse({"--from-label", "app"}).matches(kAuditUdp)) << "unlabeled";
    EXPECT_EQ(selectorText(FlowFilter::parseSelector("tier,app=web")), "app=web,tier");
    EXPECT_TRUE(FlowFilter::parseSelector(selectorText(FlowFilter::parseSelector("app=web,tier")))
                    .matches(kWebToDb.src.labels));
}

TEST(FlowFilter, PartiesAndNodes) {
    FlowRecord r = kWebToDb;
    r.src.name = "web";
    r.src.identity = IdentityId(7);
    r.dst.name = "db,db-replica";  // a shared identity
    r.host = "node-a";
    EXPECT_TRUE(FlowFilter::parse({"--from", "web"}).matches(r));
    EXPECT_TRUE(FlowFilter::parse({"--to", "db-replica"}).matches(r));
    EXPECT_FALSE(FlowFilter::parse({"--to", "db-repl"}).matches(r));
    EXPECT_TRUE(FlowFilter::parse({"--from", "7"}).matches(r));
    EXPECT_FALSE(FlowFilter::parse({"--from", "8"}).matches(r));
    EXPECT_TRUE(FlowFilter::parse({"--from", "10.0.0.0/24"}).matches(r));
    EXPECT_TRUE(FlowFilter::parse({"--from", "app=web"}).matches(r));
    EXPECT_TRUE(FlowFilter::parse({"--node", "node-a"}).matches(r));
    EXPECT_FALSE(FlowFilter::parse({"--node", "node-b"}).matches(r));
}

TEST(FlowSelection, NotNegatesTheNextFilterOnly) {
    std::vector<FlowRecord> all = {kWebToDb, kLedgerDrop, kAuditUdp};
    auto picked = [&](const std::vector<std::string>& args) {
        FlowSelection s = FlowSelection::parse(args);
        std::vector<std::string> out;
        for (const auto& r : all) {
            if (s.matches(r)) {
                out.push_back(r.verdict);
            }
        }
        return out;
    };
    using V = std::vector<std::string>;
    EXPECT_EQ(picked({"--not", "--verdict", "allowed"}), (V{"dropped", "would-drop"}));
    EXPECT_EQ(picked({"--not", "--verdict", "allowed", "--not", "--protocol", "udp"}),
              (V{"dropped"}));
    // The filter after the negated one is a normal filter again.
    EXPECT_EQ(picked({"--not", "--verdict", "allowed", "--to-label", "app=db"}), (V{"dropped"}));
    EXPECT_EQ(picked({"--not", "--ip", "10.0.0.0/8"}), (V{"dropped"}));
}

TEST(FlowSelection, NotWithoutAFilterIsAnError) {
    EXPECT_THROW(FlowSelection::parse({"--not"}), Error);
    EXPECT_THROW(FlowSelection::parse({"--verdict", "allowed", "--not"}), Error);
    EXPECT_THROW(FlowSelection::parse({"--not", "--not", "--verdict", "allowed"}), Error);
    EXPECT_THROW(FlowFilter::parse({"--not", "--verdict", "allowed"}), Error)
        << "a plain filter has no negation";
    EXPECT_TRUE(FlowSelection::parse({}).empty());
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
    expectError({"--from-label", "app=web,=x"}, "label selector");
    expectError({"--label", "bad key!"}, "label selector");
    expectError({"--from-port", "0"}, "'0'");
    expectError({"--node", ""}, "--node");
    expectError({"--from", "4294967296"}, "identity");
}

}  // namespace
}  // namespace ztseg::flows
