// The hand-written OCSF line writer against the nlohmann::json reference:
// the same bytes for JSON strings (escapes, invalid UTF-8), for any
// FlowRecord, and for the event pipeline's path (pre-escaped text per
// identity, rule and workload) against enrich() + toOcsf().dump().
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "flow_fixture.hpp"
#include "flows/enrich.hpp"
#include "flows/json_text.hpp"
#include "flows/ocsf.hpp"

namespace ztseg::flows {
namespace {

using json = nlohmann::json;

std::string reference(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string hex(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        static constexpr char kHex[] = "0123456789abcdef";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
        out += ' ';
    }
    return out;
}

// Strings that stress escaping: control characters, quotes, backslashes,
// DEL, valid and broken UTF-8 (overlong, surrogates, truncated, > U+10FFFF).
class Text {
  public:
    explicit Text(uint32_t seed) : rng_(seed) {}

    std::string any(size_t max_len = 24) {
        static const std::vector<std::string> pieces = {"a",
                                                        "Z",
                                                        "0",
                                                        " ",
                                                        "\"",
                                                        "\\",
                                                        "/",
                                                        "\x7f",
                                                        "\n",
                                                        "\t",
                                                        "\r",
                                                        "\b",
                                                        "\f",
                                                        std::string(1, '\0'),
                                                        "\x01",
                                                        "\x1f",
                                                        "é",
                                                        "€",
                                                        "😀",
                                                        "\xc3",
                                                        "\xe2\x82",
                                                        "\xf0\x9f",
                                                        "\x80",
                                                        "\xbf",
                                                        "\xc0\xaf",
                                                        "\xc1\xbf",
                                                        "\xe0\x80",
                                                        "\xe0\x9f\xbf",
                                                        "\xed\xa0",
                                                        "\xed\xbf\xbf",
                                                        "\xf4\x90\x80\x80",
                                                        "\xf5",
                                                        "\xff",
                                                        "\xfe",
                                                        "app=web",
                                                        "\xef\xbf\xbd",
                                                        "\xf0\x90\x80",
                                                        "\xf4\x8f\xbf\xbf",
                                                        "\xe1\x80\x80",
                                                        "\xdf\xbf"};
        std::string s;
        size_t n = std::uniform_int_distribution<size_t>(0, max_len)(rng_);
        for (size_t i = 0; i < n; ++i) {
            if (coin(3)) {
                s += char(std::uniform_int_distribution<int>(0, 255)(rng_));
            } else {
                s += pieces[std::uniform_int_distribution<size_t>(0, pieces.size() - 1)(rng_)];
            }
        }
        return s;
    }
    bool coin(int one_in) { return std::uniform_int_distribution<int>(0, one_in - 1)(rng_) == 0; }
    uint64_t number(uint64_t max) { return std::uniform_int_distribution<uint64_t>(0, max)(rng_); }
    std::mt19937& rng() { return rng_; }

  private:
    std::mt19937 rng_;
};

TEST(JsonText, EscapesEveryStringLikeNlohmann) {
    Text t(1);
    for (int i = 0; i < 200000; ++i) {
        std::string s = t.any();
        std::string mine;
        appendJsonString(mine, s);
        ASSERT_EQ(mine, reference(json(s))) << "input: " << hex(s);
    }
}

TEST(JsonText, EveryByteAloneAndAfterALeadByte) {
    for (int lead : {-1, 0xc3, 0xe0, 0xed, 0xf0, 0xf4}) {
        for (int b = 0; b < 256; ++b) {
            std::string s;
            if (lead >= 0) {
                s += char(lead);
            }
            s += char(b);
            s += "x";
            std::string mine;
            appendJsonString(mine, s);
            EXPECT_EQ(mine, reference(json(s))) << "lead " << lead << " byte " << b;
        }
    }
}

TEST(JsonText, NumbersMatchNlohmann) {
    Text t(2);
    for (uint64_t v : {uint64_t(0), uint64_t(9), uint64_t(10), ~uint64_t(0)}) {
        std::string mine;
        appendUint(mine, v);
        EXPECT_EQ(mine, json(v).dump());
    }
    for (int i = 0; i < 10000; ++i) {
        int64_t v = int64_t(t.number(~uint64_t(0)));
        std::string mine;
        appendInt(mine, v);
        EXPECT_EQ(mine, json(v).dump());
    }
}

policy::LabelSet randomLabels(Text& t) {
    policy::LabelSet l;
    for (uint64_t n = t.number(3); n > 0; --n) {
        l[t.any(8)] = t.any(8);
    }
    return l;
}

FlowEndpoint randomEndpoint(Text& t) {
    FlowEndpoint e;
    static const std::vector<std::string> unknown = {"0.0.0.0", "::", ""};
    e.ip = t.coin(4)   ? t.any(16)
           : t.coin(5) ? unknown[t.number(2)]
                       : "10.1.2." + std::to_string(t.number(255));
    e.port = t.coin(5) ? 0 : uint16_t(t.number(65535));
    e.identity = t.coin(4) ? IdentityId(t.number(3)) : IdentityId(t.number(~uint32_t(0)));
    e.labels = randomLabels(t);
    e.name = t.coin(3) ? "" : t.any();
    e.workload = t.coin(2);
    return e;
}

FlowRecord randomRecord(Text& t) {
    static const std::vector<std::string> verdicts = {"allowed", "dropped", "would-drop"};
    static const std::vector<std::string> reasons = {
        "allow-policy", "allow-conntrack", "allow-related", "default-deny", "policy-deny"};
    FlowRecord r;
    r.time = std::chrono::system_clock::time_point(
        std::chrono::nanoseconds(int64_t(t.number(4'000'000'000'000'000'000ull)) -
                                 (t.coin(10) ? int64_t(2'000'000'000'000'000'000) : 0)));
    r.host = t.any();
    r.verdict = t.coin(8) ? t.any() : verdicts[t.number(2)];
    r.reason = t.coin(8) ? t.any() : reasons[t.number(4)];
    r.hook = t.any();
    r.direction = t.coin(2) ? Direction::Egress : Direction::Ingress;
    r.family = t.coin(2) ? 6 : 4;
    r.protocol = t.coin(3) ? uint8_t(t.coin(2) ? 1 : 58) : uint8_t(t.number(255));
    r.protocol_name = t.any(6);
    r.src = randomEndpoint(t);
    r.dst = randomEndpoint(t);
    r.rule_id = t.coin(3) ? 0 : uint32_t(t.number(~uint32_t(0)));
    r.policy = t.coin(3) ? "" : t.any();
    r.rule_location = t.coin(3) ? "" : t.any();
    r.rule_description = t.coin(3) ? "" : t.any();
    r.workload = t.coin(3) ? "" : t.any();
    r.cgroup_id = t.number(~uint64_t(0));
    r.generation = t.number(~uint64_t(0));
    r.ifindex = uint32_t(t.number(~uint32_t(0)));
    r.packets = t.number(~uint64_t(0));
    r.bytes = t.number(~uint64_t(0));
    r.suppressed = uint32_t(t.number(~uint32_t(0)));
    r.proven = t.coin(3);
    r.icmp_type = uint8_t(t.number(255));
    r.icmp_code = uint8_t(t.number(255));
    return r;
}

TEST(OcsfLine, RandomRecordsMatchTheNlohmannDocumentByteForByte) {
    Text t(3);
    std::string buf = "previous line\n";  // appends after what is there
    TextBuffer tb;
    tb.append("abc");
    for (int i = 0; i < 20000; ++i) {
        FlowRecord r = randomRecord(t);
        std::string want = reference(toOcsf(r));
        ASSERT_EQ(toOcsfLine(r), want) << "record " << i;
        buf.resize(14);
        appendOcsfLine(r, buf);
        ASSERT_EQ(buf.substr(14), want);
        tb.resize_down(3);
        appendOcsfLine(r, tb);
        ASSERT_EQ(tb.view().substr(0, 3), "abc");
        ASSERT_EQ(tb.view().substr(3), want);
    }
}

// A policy with awkward names and labels, built directly (no YAML checks).
std::shared_ptr<const policy::CompiledPolicy> randomPolicy(Text& t) {
    auto p = std::make_shared<policy::CompiledPolicy>();
    std::vector<IdentityId> ids = {kUnlabeled, kHostIdentity, 256, 257, 300, 4096};
    for (IdentityId id : ids) {
        if (t.coin(4)) {
            continue;  // some ids stay unknown to the policy
        }
        policy::IdentityInfo info;
        info.id = id;
        info.kind = id < 256    ? policy::IdentityKind::Reserved
                    : t.coin(3) ? policy::IdentityKind::External
                                : policy::IdentityKind::Workload;
        info.labels = randomLabels(t);
        if (id < 256 && t.coin(2)) {
            info.labels[policy::kReservedLabel] = t.any(6);
        }
        for (uint64_t n = t.number(2); n > 0; --n) {
            info.names.push_back(t.any(10));
        }
        p->identities.push_back(info);
    }
    for (uint32_t id : {1u, 2u, 7u, 100u}) {
        policy::RuleSource s;
        s.rule_id = id;
        s.policy = t.coin(4) ? "" : t.any();
        s.loc.file = t.any(10);
        s.loc.line = int(t.number(100000));
        s.description = t.coin(2) ? "" : t.any();
        p->sources.push_back(s);
    }
    return p;
}

ztseg_flow_event randomEvent(Text& t) {
    static const IdentityId ids[] = {0, 1, 2, 3, 256, 257, 300, 4096, 99999};
    static const uint32_t rules[] = {0, 1, 2, 7, 100, 5555};
    static const uint8_t protos[] = {ZTSEG_PROTO_TCP,
                                     ZTSEG_PROTO_UDP,
                                     ZTSEG_PROTO_SCTP,
                                     ZTSEG_PROTO_ICMP,
                                     ZTSEG_PROTO_ICMPV6,
                                     47,
                                     0,
                                     255};
    ztseg_flow_event ev{};
    ev.ts_ns = t.number(1ull << 62);
    ev.cgroup_id = t.coin(3) ? 0 : t.number(5);
    ev.generation = t.number(~uint64_t(0));
    for (int i = 0; i < 4; ++i) {
        ev.saddr[i] = uint32_t(t.number(~uint32_t(0)));
        ev.daddr[i] = uint32_t(t.number(~uint32_t(0)));
    }
    if (t.coin(4)) {
        ev.saddr[0] = 0;  // addresses with zero bytes, and v4-mapped-like v6 text
        ev.daddr[1] = 0;
    }
    if (t.coin(6)) {
        std::fill(std::begin(ev.saddr), std::end(ev.saddr), 0u);  // 0.0.0.0 / ::, unknown
    }
    ev.src_identity = ids[t.number(std::size(ids) - 1)];
    ev.dst_identity = ids[t.number(std::size(ids) - 1)];
    ev.rule_id = rules[t.number(std::size(rules) - 1)];
    ev.pkt_len = uint32_t(t.number(~uint32_t(0)));
    ev.suppressed = uint32_t(t.number(~uint32_t(0)));
    ev.flags = t.coin(3) ? ZTSEG_EVF_PROVEN : 0;
    ev.ifindex = uint32_t(t.number(~uint32_t(0)));
    ev.sport = uint16_t(t.number(65535));
    ev.dport = uint16_t(t.number(65535));
    ev.family = uint8_t(t.coin(2) ? 6 : (t.coin(8) ? t.number(255) : 4));
    ev.proto = protos[t.number(std::size(protos) - 1)];
    ev.hook = uint8_t(t.number(ZTSEG_HOOK_MAX));
    ev.verdict = uint8_t(t.number(3));
    ev.reason = uint8_t(t.number(ZTSEG_REASON_MAX));
    ev.direction = uint8_t(t.number(1));
    ev.icmp_type = uint8_t(t.number(255));
    ev.icmp_code = uint8_t(t.number(255));
    return ev;
}

TEST(OcsfLine, EventPathMatchesEnrichAndTheNlohmannDocument) {
    Text t(4);
    for (int round = 0; round < 200; ++round) {
        WorkloadNames names;
        for (uint64_t cg = 1; cg <= 5; ++cg) {
            if (!t.coin(3)) {
                names[cg] = t.coin(6) ? "" : t.any(10);
            }
        }
        Enricher en(randomPolicy(t), t.any(12), names);
        auto view = en.view();
        EventClock clock;
        TextBuffer buf;
        for (int i = 0; i < 200; ++i) {
            ztseg_flow_event ev = randomEvent(t);
            buf.clear();
            view->appendOcsfLine(ev, clock, buf);
            ASSERT_EQ(buf.view(), reference(toOcsf(view->enrich(ev, clock))))
                << "round " << round << " event " << i;
        }
    }
}

TEST(OcsfLine, ViewFollowsPolicyAndWorkloadNameChanges) {
    policy::CompiledPolicy p = testing::compilePolicy();
    Enricher en(p, "node-1");
    ztseg_flow_event ev = testing::makeEvent("10.0.0.1", 40000, "10.0.0.3", 5432, ZTSEG_PROTO_TCP,
                                             ZTSEG_VERDICT_ALLOWED, ZTSEG_REASON_ALLOW_POLICY);
    ev.src_identity = testing::workloadId(p, "web");
    ev.dst_identity = testing::workloadId(p, "db");
    ev.cgroup_id = 77;
    auto before = en.view();
    en.setWorkloadNames({{77, "db-canary"}});
    auto after = en.view();
    EventClock clock;
    auto line = [&](const EnrichView& v) {
        TextBuffer b;
        v.appendOcsfLine(ev, clock, b);
        return json::parse(b.view());
    };
    EXPECT_EQ(line(*before)["unmapped"]["ztseg"]["workload"], "db");  // the local identity
    EXPECT_EQ(line(*after)["unmapped"]["ztseg"]["workload"], "db-canary");

    en.setPolicy(std::make_shared<const policy::CompiledPolicy>());  // nothing known
    json c = line(*en.view());
    EXPECT_FALSE(c["src_endpoint"].contains("hostname"));
    EXPECT_EQ(c["unmapped"]["ztseg"]["workload"], "db-canary");
}

}  // namespace
}  // namespace ztseg::flows
