// FlowHub: bounded per-stream queues that drop the oldest and count it, the
// recent-history ring, and close() waking streams.
#include <gtest/gtest.h>

#include <vector>

#include "agent/api_server.hpp"
#include "flows/flow_fixture.hpp"
#include "flows/ocsf.hpp"
#include "shared/flow_stream.hpp"

using namespace std::chrono_literals;

namespace ztseg::agent {
namespace {

flows::FlowRecord flow(uint64_t n) {
    flows::FlowRecord r;
    r.packets = n;
    r.verdict = "allowed";
    return r;
}

TEST(FlowHub, FullQueueDropsOldestAndCountsLost) {
    FlowHub hub(/*queue_capacity=*/3, /*history=*/2);
    auto sub = hub.subscribe(/*with_history=*/false);
    for (uint64_t i = 1; i <= 5; ++i) hub.publish(flow(i));
    EXPECT_EQ(hub.lost(), 2u);
    for (uint64_t want : {3, 4, 5}) {
        auto r = hub.next(*sub, 10ms);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->packets, want);
    }
    EXPECT_FALSE(hub.next(*sub, 10ms));

    auto recent = hub.recent();
    ASSERT_EQ(recent.size(), 2u);
    EXPECT_EQ(recent[0].packets, 4u);
    EXPECT_EQ(recent[1].packets, 5u);
    auto late = hub.subscribe(/*with_history=*/true);
    EXPECT_EQ(hub.next(*late, 10ms)->packets, 4u);

    hub.unsubscribe(sub);
    hub.publish(flow(6));
    EXPECT_EQ(hub.lost(), 2u) << "an unsubscribed stream loses nothing";
    hub.close();
    EXPECT_TRUE(hub.closed());
    EXPECT_FALSE(hub.next(*late, 1s)) << "closed: no more events, no waiting";
}

// Events published in batches are enriched only when read, with the view
// they were published with, even after the enricher moved on.
TEST(FlowHub, BatchesKeepRawEventsAndEnrichThemOnRead) {
    policy::CompiledPolicy p = flows::testing::compilePolicy();
    flows::Enricher en(p, "node-1");
    auto view = en.view();
    EventClock clock;
    std::vector<ztseg_flow_event> batch;
    for (uint16_t port = 1; port <= 5; ++port) {
        ztseg_flow_event ev =
            flows::testing::makeEvent("10.0.0.1", port, "10.0.0.3", 5432, ZTSEG_PROTO_TCP,
                                      ZTSEG_VERDICT_ALLOWED, ZTSEG_REASON_ALLOW_POLICY);
        ev.src_identity = flows::testing::workloadId(p, "web");
        batch.push_back(ev);
    }
    FlowHub hub(/*queue_capacity=*/10, /*history=*/3);
    hub.publish(batch, view, clock);  // nobody listening: only the last 3 are kept
    en.setPolicy(std::make_shared<const policy::CompiledPolicy>());

    auto recent = hub.recent();
    ASSERT_EQ(recent.size(), 3u);
    for (size_t i = 0; i < recent.size(); ++i) {
        EXPECT_EQ(recent[i].src.port, 3 + i);
        EXPECT_EQ(recent[i].src.name, "web") << "enriched with the view of its batch";
        EXPECT_EQ(recent[i].time, clock.wallTime(batch[2 + i].ts_ns));
    }

    auto sub = hub.subscribe(/*with_history=*/false);
    hub.publish(std::span(batch).first(2), en.view(), clock);
    for (uint16_t want : {1, 2}) {
        auto r = hub.next(*sub, 10ms);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->src.port, want);
        EXPECT_EQ(r->src.name, "") << "the new policy knows no names";
    }
    recent = hub.recent();
    ASSERT_EQ(recent.size(), 3u);
    EXPECT_EQ(recent[0].src.port, 5);
    EXPECT_EQ(recent[1].src.port, 1);
    EXPECT_EQ(recent[2].src.port, 2);
    EXPECT_EQ(hub.lost(), 0u);
}

TEST(FlowHub, EventConvertsWithOcsfLine) {
    flows::FlowRecord r = flow(7);
    r.src.ip = "10.0.0.1";
    r.src.labels = {{"app", "web"}};
    r.dst.port = 5432;
    v1::FlowEvent e = toFlowEvent(r);
    EXPECT_EQ(e.packets(), 7u);
    EXPECT_EQ(e.src().ip(), "10.0.0.1");
    EXPECT_EQ(e.src().labels().at("app"), "web");
    EXPECT_EQ(e.dst().port(), 5432u);
    EXPECT_NE(e.ocsf_json().find("\"class_uid\":4001"), std::string::npos);
}

// ztsegctl and the controller read flows back from the API with the same
// conversion; a record survives the round trip.
TEST(FlowHub, EventConvertsBackToTheSameRecord) {
    flows::FlowRecord r = flow(7);
    r.family = 6;
    r.src.ip = "fd00::1";
    r.src.labels = {{"app", "web"}};
    r.dst.port = 5432;
    r.rule_location = "three-tier.yaml:29";
    r.src.workload = r.dst.workload = true;  // OCSF says Lateral
    flows::FlowRecord back = fromFlowEvent(toFlowEvent(r));
    EXPECT_TRUE(back.src.workload);
    EXPECT_TRUE(back.dst.workload);
    EXPECT_EQ(back.family, 6);
    EXPECT_EQ(back.src.ip, "fd00::1");
    EXPECT_EQ(back.src.labels, r.src.labels);
    EXPECT_EQ(back.dst.port, 5432);
    EXPECT_EQ(back.packets, 7u);
    EXPECT_EQ(back.rule_location, "three-tier.yaml:29");
    EXPECT_EQ(back.time, r.time);
    EXPECT_EQ(flows::toOcsfLine(back), flows::toOcsfLine(r));

    v1::FlowEvent no_family = toFlowEvent(r);
    no_family.clear_family();  // FlowRecord only holds 4 or 6
    EXPECT_EQ(fromFlowEvent(no_family).family, 4);
}

}  // namespace
}  // namespace ztseg::agent
