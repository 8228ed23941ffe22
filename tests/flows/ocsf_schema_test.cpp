// Flow events against OCSF 1.3.0 Network Activity as data
// (tests/flows/data/ocsf-1.3.0-network-activity.json): every attribute known
// to the schema, of its type, required ones present, enum values valid and
// their captions right. Both writers (toOcsf, and the line the flow log
// writes from the event) are checked on the same records, and must agree.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "flow_fixture.hpp"
#include "flows/enrich.hpp"
#include "flows/ocsf.hpp"
#include "flows/ocsf_reader.hpp"

namespace ztseg::flows {
namespace {

using json = nlohmann::json;
using namespace testing;

const json& schema() {
    static const json s = [] {
        std::ifstream in(ZTSEG_SOURCE_DIR "/tests/flows/data/ocsf-1.3.0-network-activity.json");
        EXPECT_TRUE(in.good()) << "schema data file missing";
        return json::parse(in);
    }();
    return s;
}

bool hasType(const json& v, const std::string& type) {
    if (type == "string")
        return v.is_string();
    if (type == "integer")
        return v.is_number_integer();
    if (type == "boolean")
        return v.is_boolean();
    if (type == "object")
        return v.is_object();
    if (type == "array")
        return v.is_array();
    ADD_FAILURE() << "schema data: unknown type " << type;
    return false;
}

// Appends one line per way `obj` (an instance of `object` at `path`) breaks the schema.
void check(const json& obj, const std::string& object, const std::string& path,
           std::vector<std::string>& out) {
    const json& def = schema().at("objects").at(object);
    const json& attrs = def.at("attributes");
    for (const auto& [name, a] : attrs.items()) {
        if (a.at("requirement") == "required" && !obj.contains(name)) {
            out.push_back(path + name + ": required, missing");
        }
    }
    for (const auto& [name, v] : obj.items()) {
        const std::string at = path + name;
        if (!attrs.contains(name)) {
            out.push_back(at + ": not an attribute of " + object);
            continue;
        }
        const json& a = attrs.at(name);
        const std::string type = a.at("type");
        if (!hasType(v, type)) {
            out.push_back(at + ": not of type " + type);
            continue;
        }
        if (type == "array" && a.contains("items")) {
            for (const json& item : v) {
                if (!hasType(item, a.at("items"))) {
                    out.push_back(at + ": element not of type " + a.at("items").get<std::string>());
                }
            }
        }
        if (a.contains("enum")) {
            const json& values = schema().at("enums").at(a.at("enum").get<std::string>());
            const std::string key = v.dump();
            if (!values.contains(key)) {
                out.push_back(at + ": " + key + " is not a value of " +
                              a.at("enum").get<std::string>());
            } else if (a.contains("sibling") && obj.contains(a.at("sibling"))) {
                const json& caption = obj.at(a.at("sibling").get<std::string>());
                if (caption != values.at(key)) {
                    out.push_back(path + a.at("sibling").get<std::string>() + ": " +
                                  caption.dump() + " is not the caption of " + key + " (" +
                                  values.at(key).dump() + ")");
                }
            }
        }
        if (type == "object" && a.contains("object")) {
            check(v, a.at("object"), at + ".", out);
        }
    }
    if (def.contains("at_least_one")) {
        bool any = false;
        for (const json& name : def.at("at_least_one")) {
            any = any || obj.contains(name.get<std::string>());
        }
        if (!any) {
            out.push_back(path + ": none of " + def.at("at_least_one").dump());
        }
    }
}

std::vector<std::string> violations(const json& event) {
    std::vector<std::string> out;
    check(event, schema().at("event"), "", out);
    return out;
}

// ztseg's own rules on top of the schema: no placeholder for what is not
// known, no workload names where OCSF means DNS names.
std::vector<std::string> placeholders(const json& event) {
    std::vector<std::string> out;
    for (const char* side : {"src_endpoint", "dst_endpoint"}) {
        if (!event.contains(side)) {
            continue;
        }
        const json& e = event.at(side);
        const std::string at = std::string(side) + ".";
        if (e.contains("ip") && (e.at("ip") == "0.0.0.0" || e.at("ip") == "::")) {
            out.push_back(at + "ip: unknown address written as " + e.at("ip").dump());
        }
        if (e.contains("port") && e.at("port") == 0) {
            out.push_back(at + "port: unknown port written as 0");
        }
        if (e.contains("hostname")) {
            out.push_back(at + "hostname: holds an inventory name, not a DNS name");
        }
        if (e.contains("name") &&
            (e.at("name") == "unlabeled" || e.at("name") == "world" || e.at("name") == "host")) {
            out.push_back(at + "name: reserved identity name " + e.at("name").dump());
        }
    }
    return out;
}

std::string lines(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& l : v) {
        s += "  " + l + "\n";
    }
    return s;
}

struct Case {
    const char* name;
    const char* src;
    uint16_t sport;
    const char* src_party;  // a workload's or external's name; "": unlabeled
    const char* dst;
    uint16_t dport;
    const char* dst_party;
    uint8_t verdict, reason, hook, direction;
    // What the event must say.
    int activity_id, action_id, disposition_id, severity_id, direction_id;
    const char* ztseg_direction;
};

const policy::CompiledPolicy& lab() {
    static const policy::CompiledPolicy p = compilePolicy();
    return p;
}

// The identity of a workload or external by name; "" is unlabeled.
IdentityId partyId(const std::string& name) {
    if (name.empty()) {
        return kUnlabeled;
    }
    for (const auto& info : lab().identities) {
        for (const auto& n : info.names) {
            if (n == name) {
                return info.id;
            }
        }
    }
    ADD_FAILURE() << "no workload or external " << name;
    return kUnlabeled;
}

ztseg_flow_event eventOf(const Case& c) {
    ztseg_flow_event ev =
        makeEvent(c.src, c.sport, c.dst, c.dport, ZTSEG_PROTO_TCP, c.verdict, c.reason);
    ev.src_identity = partyId(c.src_party);
    ev.dst_identity = partyId(c.dst_party);
    ev.hook = c.hook;
    ev.direction = c.direction;
    return ev;
}

const Case kCases[] = {
    // partner (an external) -> db, allowed: Open, Allowed, Informational, Inbound.
    {"Allowed", "192.0.2.7", 40000, "partner", "10.0.0.3", 5432, "db", ZTSEG_VERDICT_ALLOWED,
     ZTSEG_REASON_ALLOW_POLICY, ZTSEG_HOOK_CGROUP_INGRESS, ZTSEG_DIR_INGRESS, 1, 1, 1, 1, 1,
     "ingress"},
    // web -> ledger in audit mode: let through, so Allowed, but Detected and Low.
    {"WouldDrop", "10.0.0.1", 40001, "web", "10.0.0.4", 9999, "ledger", ZTSEG_VERDICT_WOULD_DROP,
     ZTSEG_REASON_DROP_DEFAULT_DENY, ZTSEG_HOOK_CGROUP_INGRESS, ZTSEG_DIR_INGRESS, 1, 1, 15, 2, 3,
     "ingress"},
    // web's connect() to db refused before the socket had an address.
    {"DroppedAtConnect", "0.0.0.0", 0, "web", "10.0.0.3", 5432, "db", ZTSEG_VERDICT_DROPPED,
     ZTSEG_REASON_DROP_DEFAULT_DENY, ZTSEG_HOOK_SOCK_CONNECT, ZTSEG_DIR_EGRESS, 5, 2, 2, 3, 3,
     "egress"},
    {"DroppedAtConnectIpv6", "::", 0, "web", "fd00::3", 5432, "db", ZTSEG_VERDICT_DROPPED,
     ZTSEG_REASON_DROP_DEFAULT_DENY, ZTSEG_HOOK_SOCK_CONNECT, ZTSEG_DIR_EGRESS, 5, 2, 2, 3, 3,
     "egress"},
    // web -> db allowed: both ends are workloads.
    {"Lateral", "10.0.0.1", 40002, "web", "10.0.0.3", 5432, "db", ZTSEG_VERDICT_ALLOWED,
     ZTSEG_REASON_ALLOW_POLICY, ZTSEG_HOOK_CGROUP_EGRESS, ZTSEG_DIR_EGRESS, 1, 1, 1, 1, 3,
     "egress"},
    // An address no inventory knows, dropped at XDP: no name, reserved uid 0.
    {"UnlabeledSource", "203.0.113.9", 53098, "", "10.0.0.3", 5432, "db", ZTSEG_VERDICT_DROPPED,
     ZTSEG_REASON_DROP_UNLABELED, ZTSEG_HOOK_XDP, ZTSEG_DIR_INGRESS, 5, 2, 2, 3, 1, "ingress"},
};

class OcsfSchema : public ::testing::TestWithParam<Case> {
  protected:
    ztseg_flow_event event() const { return eventOf(GetParam()); }
};

TEST_P(OcsfSchema, BothWritersAgreeAndConform) {
    const Case& c = GetParam();
    Enricher en(lab(), "node-1");
    auto view = en.view();
    EventClock clock;
    ztseg_flow_event ev = event();
    FlowRecord r = view->enrich(ev, clock);

    TextBuffer fast;
    view->appendOcsfLine(ev, clock, fast);
    const std::string reference = toOcsf(r).dump();
    EXPECT_EQ(std::string(fast.view()), reference) << "the flow log's writer and toOcsf differ";
    EXPECT_EQ(toOcsfLine(r), reference);

    for (const json& j : {toOcsf(r), json::parse(fast.view())}) {
        EXPECT_EQ(violations(j), std::vector<std::string>{}) << lines(violations(j)) << j.dump();
        EXPECT_EQ(placeholders(j), std::vector<std::string>{}) << lines(placeholders(j));
        EXPECT_EQ(j.at("activity_id"), c.activity_id);
        EXPECT_EQ(j.at("action_id"), c.action_id);
        EXPECT_EQ(j.at("disposition_id"), c.disposition_id);
        EXPECT_EQ(j.at("severity_id"), c.severity_id);
        EXPECT_EQ(j.at("connection_info").at("direction_id"), c.direction_id);
        EXPECT_EQ(j.at("unmapped").at("ztseg").at("direction"), c.ztseg_direction);
        EXPECT_EQ(j.at("device").at("hostname"), "node-1");
    }
}

TEST_P(OcsfSchema, ReadsBackAsTheRecord) {
    Enricher en(lab(), "node-1");
    FlowRecord r = en.enrich(event());
    FlowRecord back = parseOcsfLine(toOcsfLine(r));
    for (auto [a, b] : {std::pair{&r.src, &back.src}, std::pair{&r.dst, &back.dst}}) {
        EXPECT_EQ(b->ip, a->ip);
        EXPECT_EQ(b->port, a->port);
        EXPECT_EQ(b->identity, a->identity);
        EXPECT_EQ(b->name, a->name);
        EXPECT_EQ(b->labels, a->labels);
    }
    // Only Lateral says both ends are workloads.
    const bool lateral = r.src.workload && r.dst.workload;
    EXPECT_EQ(back.src.workload && back.dst.workload, lateral);
    EXPECT_EQ(toOcsfLine(back), toOcsfLine(r));
    EXPECT_EQ(back.direction, r.direction);
    EXPECT_EQ(back.verdict, r.verdict);
    EXPECT_EQ(back.reason, r.reason);
    EXPECT_EQ(back.hook, r.hook);
    EXPECT_EQ(back.workload, r.workload);
}

INSTANTIATE_TEST_SUITE_P(Flows, OcsfSchema, ::testing::ValuesIn(kCases),
                         [](const auto& c) { return std::string(c.param.name); });

// A summary of one source's drops beyond its budget (issue 15): count is the
// drops, unmapped.ztseg.summary says how many ports and since when.
// A peer proven on the wire (docs/datapath.md#proven-identity): the event's
// flag is unmapped.ztseg.proven in both writers, conforms, and reads back;
// an address-derived peer has no such field.
TEST(OcsfSchemaEvents, ProvenPeerIsSaidAndReadsBack) {
    ztseg_flow_event ev = eventOf(kCases[0]);  // Allowed
    Enricher en(lab(), "node-1");
    EventClock clock;
    for (bool proven : {true, false}) {
        ev.flags = proven ? ZTSEG_EVF_PROVEN : 0;
        FlowRecord r = en.view()->enrich(ev, clock);
        EXPECT_EQ(r.proven, proven);
        TextBuffer fast;
        en.view()->appendOcsfLine(ev, clock, fast);
        EXPECT_EQ(std::string(fast.view()), toOcsf(r).dump());
        const json j = json::parse(fast.view());
        EXPECT_EQ(violations(j), std::vector<std::string>{}) << lines(violations(j));
        const json& z = j.at("unmapped").at("ztseg");
        EXPECT_EQ(z.contains("proven"), proven);
        if (proven) {
            EXPECT_EQ(z.at("proven"), true);
        }
        EXPECT_EQ(parseOcsfLine(toOcsfLine(r)).proven, proven);
    }
}

TEST(OcsfSchemaEvents, SummaryConformsAndReadsBack) {
    ztseg_flow_event ev = eventOf(kCases[5]);  // UnlabeledSource
    ev.kind = ZTSEG_EVENT_SUMMARY;
    ev.suppressed = 4992;
    ev.port_bits = 180;
    ev.window_start_ns = ev.ts_ns - 3'000'000'000;
    ev.sport = ev.dport = 0;
    std::memset(ev.daddr, 0, sizeof(ev.daddr));
    Enricher en(lab(), "node-1");
    EventClock clock;
    FlowRecord r = en.view()->enrich(ev, clock);
    TextBuffer fast;
    en.view()->appendOcsfLine(ev, clock, fast);
    EXPECT_EQ(std::string(fast.view()), toOcsf(r).dump());
    const json j = json::parse(fast.view());
    EXPECT_EQ(violations(j), std::vector<std::string>{}) << lines(violations(j));
    EXPECT_EQ(j.at("count"), 4992);
    const json& s = j.at("unmapped").at("ztseg").at("summary");
    EXPECT_EQ(s.at("drops"), 4992);
    EXPECT_EQ(s.at("distinct_dst_ports"), summaryPorts(180));
    EXPECT_EQ(s.at("ports_estimated_by"), "linear-counting-256");
    EXPECT_EQ(j.at("time").get<int64_t>() - s.at("window_start_time").get<int64_t>(), 3000);
    FlowRecord back = parseOcsfLine(toOcsfLine(r));
    EXPECT_TRUE(back.summary);
    EXPECT_EQ(back.suppressed, 4992u);
    EXPECT_EQ(back.distinct_dst_ports, r.distinct_dst_ports);
    EXPECT_EQ(toOcsfLine(back), toOcsfLine(r));
}

TEST(OcsfSchemaEvents, SummaryPortsAreALinearCountingEstimate) {
    EXPECT_EQ(summaryPorts(0), 0u);
    EXPECT_EQ(summaryPorts(1), 1u);
    EXPECT_EQ(summaryPorts(128), 177u);   // -256 ln(1/2)
    EXPECT_EQ(summaryPorts(256), 1420u);  // saturated: at least 256 ln 256
}

TEST(OcsfSchemaEvents, DroppedAtConnectLeavesOutTheUnknownSourceAddress) {
    Enricher en(lab(), "node-1");
    ztseg_flow_event ev = eventOf(kCases[2]);
    json j = toOcsf(en.enrich(ev));
    const json& src = j.at("src_endpoint");
    EXPECT_FALSE(src.contains("ip"));
    EXPECT_FALSE(src.contains("port"));
    EXPECT_FALSE(src.contains("hostname"));
    EXPECT_EQ(src.at("name"), "web");  // the workload whose connect() was refused
    EXPECT_EQ(src.at("uid"), std::to_string(workloadId(lab(), "web")));
    EXPECT_EQ(j.at("dst_endpoint").at("ip"), "10.0.0.3");
    EXPECT_EQ(j.at("dst_endpoint").at("port"), 5432);
}

TEST(OcsfSchemaEvents, UnlabeledSourceHasNoName) {
    Enricher en(lab(), "node-1");
    json j = toOcsf(en.enrich(eventOf(kCases[5])));
    EXPECT_EQ(j.at("src_endpoint"), json({{"ip", "203.0.113.9"}, {"port", 53098}, {"uid", "0"}}));
    EXPECT_EQ(j.at("dst_endpoint").at("name"), "db");
    EXPECT_FALSE(j.at("dst_endpoint").contains("hostname"));
}

// Lines as ztseg wrote them before issue 14 (tests/cli/data, a real demo run).
std::vector<std::string> recordedLines(const char* file) {
    std::ifstream in(std::string(ZTSEG_SOURCE_DIR "/tests/cli/data/") + file);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) {
        out.push_back(l);
    }
    EXPECT_FALSE(out.empty()) << file;
    return out;
}

json recordedWhere(const char* file, const std::string& verdict, const std::string& hook) {
    for (const std::string& l : recordedLines(file)) {
        json j = json::parse(l);
        if (j["unmapped"]["ztseg"]["verdict"] == verdict &&
            j["unmapped"]["ztseg"]["hook"] == hook) {
            return j;
        }
    }
    ADD_FAILURE() << "no " << verdict << " at " << hook << " in " << file;
    return json::object();
}

bool mentions(const std::vector<std::string>& found, const std::string& what) {
    for (const auto& f : found) {
        if (f.find(what) != std::string::npos) {
            return true;
        }
    }
    return false;
}

// What this test finds in the old mapping's output: why the mapping changed.
TEST(OcsfSchemaEvents, TheOldMappingFails) {
    json would_drop = recordedWhere("audit.jsonl", "would-drop", "cgroup-ingress");
    std::vector<std::string> v = violations(would_drop);
    EXPECT_TRUE(mentions(v, "action_id: 3 is not a value of action_id")) << lines(v);
    EXPECT_TRUE(mentions(v, "is_alert: not an attribute of network_activity")) << lines(v);
    EXPECT_TRUE(mentions(placeholders(would_drop), "src_endpoint.hostname")) << lines(v);

    json at_connect = recordedWhere("enforce.jsonl", "dropped", "sock-connect");
    std::vector<std::string> p = placeholders(at_connect);
    EXPECT_TRUE(mentions(p, "src_endpoint.ip: unknown address written as \"0.0.0.0\"")) << lines(p);
    EXPECT_TRUE(mentions(p, "src_endpoint.port: unknown port written as 0")) << lines(p);

    json xdp = recordedWhere("enforce.jsonl", "dropped", "xdp");
    EXPECT_TRUE(mentions(placeholders(xdp), "src_endpoint.name: reserved identity name"));
    EXPECT_EQ(xdp.at("severity_id"), 1);  // a drop said Informational
}

// Flow files recorded before issue 14 keep working: every line reads, and
// the new writer's line for it reads back as the same flow.
TEST(OcsfReaderCompat, OldLinesReadAndRewriteToTheSameFlow) {
    for (const char* file : {"audit.jsonl", "enforce.jsonl"}) {
        for (const std::string& line : recordedLines(file)) {
            FlowRecord old = parseOcsfLine(line);
            json j = json::parse(line);
            if (j["src_endpoint"].contains("hostname")) {
                EXPECT_EQ(old.src.name, j["src_endpoint"]["hostname"]) << line;
            }
            FlowRecord now = parseOcsfLine(toOcsfLine(old));
            EXPECT_EQ(now.src.ip, old.src.ip) << line;
            EXPECT_EQ(now.src.port, old.src.port);
            EXPECT_EQ(now.src.name, old.src.name);
            EXPECT_EQ(now.dst.name, old.dst.name);
            EXPECT_EQ(now.dst.ip, old.dst.ip);
            EXPECT_EQ(now.verdict, old.verdict);
            EXPECT_EQ(now.direction, old.direction);
            EXPECT_EQ(violations(json::parse(toOcsfLine(old))), std::vector<std::string>{});
        }
    }
}

TEST(OcsfReaderCompat, OldLineWithoutZtsegFieldsStillSaysWouldDrop) {
    json j = recordedWhere("audit.jsonl", "would-drop", "cgroup-ingress");
    j["unmapped"]["ztseg"].erase("verdict");
    j["src_endpoint"].erase("name");  // the old line's hostname still names it
    FlowRecord r = parseOcsfLine(j.dump());
    EXPECT_EQ(r.verdict, "would-drop");  // action_id 3 "Observed"
    EXPECT_EQ(r.src.name, j["src_endpoint"]["hostname"]);
    EXPECT_EQ(r.direction, Direction::Ingress);
}

TEST(OcsfReaderCompat, NewLineWithoutZtsegFieldsStillSaysWouldDropAndDirection) {
    Enricher en(lab(), "node-1");
    ztseg_flow_event ev = eventOf(kCases[1]);  // would-drop, lateral
    ev.direction = ZTSEG_DIR_EGRESS;
    json j = toOcsf(en.enrich(ev));
    EXPECT_EQ(j["connection_info"]["direction_id"], 3);
    FlowRecord r = parseOcsfLine(j.dump());
    EXPECT_EQ(r.direction, Direction::Egress);  // from unmapped.ztseg.direction
    j["unmapped"]["ztseg"].erase("verdict");
    EXPECT_EQ(parseOcsfLine(j.dump()).verdict, "would-drop");  // disposition 15 Detected
}

TEST(OcsfReaderCompat, BadZtsegDirectionIsAnError) {
    Enricher en(lab(), "node-1");
    json j = toOcsf(en.enrich(eventOf(kCases[4])));
    j["unmapped"]["ztseg"]["direction"] = "sideways";
    EXPECT_THROW(parseOcsfLine(j.dump()), Error);
}

}  // namespace
}  // namespace ztseg::flows
