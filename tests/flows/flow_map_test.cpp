// ztsegctl map's graph: nodes per workload (or --group-by value), one
// unlabeled node, each connection counted once, edges coloured by verdict.
#include "flows/flow_map.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "flows/ocsf_reader.hpp"

namespace ztseg::flows {
namespace {

FlowEndpoint workload(const std::string& name, IdentityId id, const std::string& ip,
                      const std::string& labels, uint16_t port = 0) {
    FlowEndpoint e;
    e.name = name;
    e.identity = id;
    e.ip = ip;
    e.port = port;
    e.workload = true;
    e.labels = policy::parseLabels(labels);
    return e;
}

FlowEndpoint unlabeled(const std::string& ip, uint16_t port) {
    FlowEndpoint e;
    e.name = "unlabeled";
    e.identity = kUnlabeled;
    e.ip = ip;
    e.port = port;
    return e;
}

const FlowEndpoint kWeb = workload("web", 1001, "10.0.0.1", "app=web,tier=frontend");
const FlowEndpoint kShop = workload("shop", 1004, "10.0.0.4", "app=shop,tier=frontend");
const FlowEndpoint kApi = workload("api", 1002, "10.0.0.2", "app=api,tier=backend");
const FlowEndpoint kDb = workload("db", 1003, "10.0.0.3", "app=db");

FlowRecord flow(FlowEndpoint src, uint16_t sport, FlowEndpoint dst, uint16_t dport,
                const std::string& verdict, Direction dir = Direction::Egress) {
    FlowRecord r;
    r.src = std::move(src);
    r.src.port = sport;
    r.dst = std::move(dst);
    r.dst.port = dport;
    r.verdict = verdict;
    r.direction = dir;
    r.protocol = 6;
    r.protocol_name = "tcp";
    return r;
}

const MapEdge* findEdge(const FlowMap& m, const std::string& src, const std::string& dst,
                        const std::string& verdict) {
    for (const auto& e : m.edges) {
        if (e.src == src && e.dst == dst && e.verdict == verdict) {
            return &e;
        }
    }
    return nullptr;
}

std::vector<std::string> nodeIds(const FlowMap& m) {
    std::vector<std::string> ids;
    for (const auto& n : m.nodes) ids.push_back(n.id);
    return ids;
}

TEST(FlowMap, ConnectionSeenAtBothEndsCountsOnce) {
    FlowMap m = buildFlowMap({flow(kWeb, 40000, kApi, 8080, "allowed", Direction::Egress),
                              flow(kWeb, 40000, kApi, 8080, "allowed", Direction::Ingress),
                              flow(kWeb, 40001, kApi, 8080, "allowed", Direction::Egress)});
    ASSERT_EQ(m.edges.size(), 1u);
    EXPECT_EQ(m.edges[0].connections, 2u);
    EXPECT_EQ(m.edges[0].service(), "tcp/8080");
    EXPECT_EQ(m.events, 3u);
    EXPECT_EQ(m.connections, 2u);
}

TEST(FlowMap, ConnectionTakesItsMostSevereVerdict) {
    // Allowed out of web, dropped at api's ingress: it did not get through.
    FlowMap m = buildFlowMap({flow(kWeb, 40000, kApi, 8080, "allowed", Direction::Egress),
                              flow(kWeb, 40000, kApi, 8080, "dropped", Direction::Ingress)});
    ASSERT_EQ(m.edges.size(), 1u);
    EXPECT_EQ(m.edges[0].verdict, "dropped");
}

TEST(FlowMap, ReplyDirectionIsTheSameConnection) {
    // Audit mode: the intruder's SYN would be dropped at db, and db's answer
    // to the intruder's port too. One connection, to db's port.
    FlowRecord syn = flow(unlabeled("10.9.0.1", 0), 57060, kDb, 5432, "would-drop");
    syn.time = std::chrono::system_clock::time_point(std::chrono::seconds(10));
    FlowRecord reply = flow(kDb, 5432, unlabeled("10.9.0.1", 0), 57060, "would-drop");
    reply.time = syn.time + std::chrono::milliseconds(1);
    for (const auto& rs :
         {std::vector<FlowRecord>{syn, reply}, std::vector<FlowRecord>{reply, syn}}) {
        FlowMap m = buildFlowMap(rs);
        ASSERT_EQ(m.edges.size(), 1u);
        EXPECT_EQ(m.edges[0].src, "unlabeled");
        EXPECT_EQ(m.edges[0].service(), "tcp/5432");
        EXPECT_EQ(m.connections, 1u);
    }
    // Reported in the same millisecond: the direction to the lower port is the request.
    reply.time = syn.time;
    FlowMap m = buildFlowMap({reply, syn});
    ASSERT_EQ(m.edges.size(), 1u);
    EXPECT_EQ(m.edges[0].service(), "tcp/5432");
}

TEST(FlowMap, EventsWithoutSourcePortCountOneEach) {
    // connect() refused twice before the socket had an address.
    FlowRecord r = flow(kWeb, 0, kDb, 5432, "dropped");
    r.src.ip = "0.0.0.0";
    FlowMap m = buildFlowMap({r, r});
    ASSERT_EQ(m.edges.size(), 1u);
    EXPECT_EQ(m.edges[0].connections, 2u);
}

TEST(FlowMap, UnlabeledSourcesAreOneNode) {
    FlowMap m = buildFlowMap({flow(unlabeled("10.9.0.1", 0), 50000, kDb, 5432, "dropped"),
                              flow(unlabeled("10.9.0.2", 0), 50001, kDb, 5432, "dropped"),
                              flow(unlabeled("10.9.0.2", 0), 50002, kDb, 22, "dropped")});
    EXPECT_EQ(nodeIds(m), (std::vector<std::string>{"db", "unlabeled"}));
    EXPECT_EQ(m.nodes[1].addresses.size(), 2u);
    ASSERT_EQ(m.edges.size(), 2u);
    EXPECT_EQ(m.edges[0].service(), "tcp/22");  // sorted by port
    EXPECT_EQ(m.edges[1].connections, 2u);
    EXPECT_NE(flowMapDot(m).find("\"unlabeled\\n2 addresses\""), std::string::npos);
}

TEST(FlowMap, GroupByLabelValueKeepsTheOthersApart) {
    FlowMapOptions by_tier{"tier"};
    FlowMap m = buildFlowMap(
        {flow(kWeb, 40000, kApi, 8080, "allowed"), flow(kShop, 40000, kApi, 8080, "allowed"),
         flow(kApi, 40002, kDb, 5432, "allowed")},
        by_tier);
    EXPECT_EQ(nodeIds(m), (std::vector<std::string>{"db", "tier=backend", "tier=frontend"}));
    const MapEdge* e = findEdge(m, "tier=frontend", "tier=backend", "allowed");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->connections, 2u);
    EXPECT_EQ(m.nodes[2].workloads, (std::set<std::string>{"shop", "web"}));
    EXPECT_NE(flowMapDot(m).find("\"tier=frontend\\nshop, web\""), std::string::npos);
}

TEST(FlowMap, OneEdgePerServiceAndVerdict) {
    FlowMap m = buildFlowMap(
        {flow(kWeb, 40000, kDb, 5432, "would-drop"), flow(kWeb, 40001, kDb, 5432, "dropped"),
         flow(kWeb, 40002, kDb, 5432, "allowed"), flow(kWeb, 40003, kDb, 22, "allowed")});
    ASSERT_EQ(m.edges.size(), 4u);
    std::vector<std::string> order;
    for (const auto& e : m.edges) order.push_back(e.service() + " " + e.verdict);
    EXPECT_EQ(order, (std::vector<std::string>{"tcp/22 allowed", "tcp/5432 allowed",
                                               "tcp/5432 would-drop", "tcp/5432 dropped"}));
}

TEST(FlowMap, DotColoursEdgesByVerdict) {
    FlowMap m = buildFlowMap({flow(kWeb, 40000, kApi, 8080, "allowed"),
                              flow(kWeb, 40001, kDb, 5432, "dropped"),
                              flow(kApi, 40002, kDb, 5432, "would-drop")});
    std::string dot = flowMapDot(m);
    EXPECT_NE(dot.find("\"web\" -> \"api\" [label=\"tcp/8080 ×1\", color=\"green4\""),
              std::string::npos)
        << dot;
    EXPECT_NE(dot.find("\"web\" -> \"db\" [label=\"tcp/5432 ×1\", color=\"red\""),
              std::string::npos)
        << dot;
    size_t wd = dot.find("\"api\" -> \"db\" [label=\"tcp/5432 ×1\", color=\"orange\"");
    ASSERT_NE(wd, std::string::npos) << dot;
    EXPECT_NE(dot.substr(wd, dot.find('\n', wd) - wd).find("style=dashed"), std::string::npos);
    EXPECT_NE(dot.find("digraph ztseg {"), std::string::npos);
    EXPECT_EQ(dot.back(), '\n');
}

TEST(FlowMap, AnyOrderGivesTheSameDot) {
    std::vector<FlowRecord> rs{flow(kWeb, 40000, kApi, 8080, "allowed"),
                               flow(kApi, 40001, kDb, 5432, "allowed"),
                               flow(unlabeled("10.9.0.1", 0), 50000, kDb, 5432, "dropped"),
                               flow(kWeb, 40000, kApi, 8080, "allowed", Direction::Ingress)};
    std::string a = flowMapDot(buildFlowMap(rs));
    std::reverse(rs.begin(), rs.end());
    EXPECT_EQ(flowMapDot(buildFlowMap(rs)), a);
}

TEST(FlowMap, NamesWithQuotesAreEscaped) {
    FlowMap m = buildFlowMap(
        {flow(workload("we\"b", 1001, "10.0.0.1", "app=web"), 40000, kDb, 5432, "allowed")});
    EXPECT_NE(flowMapDot(m).find("\"we\\\"b\" -> \"db\""), std::string::npos);
}

// The demo's recorded enforce phase: web -> api and api -> db allowed, the
// bastion's ssh allowed, web -> db and the intruder dropped.
TEST(FlowMap, RecordedDemoFlows) {
    FlowMap m = buildFlowMap(readFlowFile(ZTSEG_SOURCE_DIR "/tests/cli/data/enforce.jsonl"));
    const MapEdge* e = findEdge(m, "web", "api", "allowed");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->service(), "tcp/8080");
    EXPECT_EQ(e->connections, 1u);  // egress and ingress: one connection
    ASSERT_NE(findEdge(m, "unlabeled", "db", "dropped"), nullptr);
    EXPECT_EQ(findEdge(m, "unlabeled", "db", "dropped")->connections, 1u);  // SYN resent
    ASSERT_NE(findEdge(m, "web", "db", "dropped"), nullptr);
    ASSERT_NE(findEdge(m, "bastion", "db", "allowed"), nullptr);
    EXPECT_EQ(findEdge(m, "bastion", "db", "allowed")->service(), "tcp/22");
}

}  // namespace
}  // namespace ztseg::flows
