// Flow files in the OCSF mapping of issue 14 (unknown addresses, ports and
// reserved names left out, Lateral between workloads) read by ztsegctl as
// the files of earlier versions are: the same table, the same whatif.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/flow_output.hpp"
#include "cli/flow_text.hpp"
#include "flows/ocsf.hpp"
#include "flows/ocsf_reader.hpp"
#include "flows/whatif.hpp"
#include "model/types.hpp"
#include "policy/parser.hpp"

namespace fs = std::filesystem;

namespace ztseg::flows {
namespace {

const fs::path kSource = ZTSEG_SOURCE_DIR;

std::string slurp(const fs::path& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The demo's recordings (written before issue 14), and the same flows as
// today's writer puts them: the demo's named parties are all workloads.
std::vector<FlowRecord> recorded() {
    std::vector<FlowRecord> out;
    for (const char* f : {"audit.jsonl", "enforce.jsonl"}) {
        auto part = readFlowFile((kSource / "tests/cli/data" / f).string());
        out.insert(out.end(), part.begin(), part.end());
    }
    return out;
}

std::vector<FlowRecord> rewritten(const std::vector<FlowRecord>& old) {
    std::vector<FlowRecord> out;
    for (FlowRecord r : old) {
        for (FlowEndpoint* e : {&r.src, &r.dst}) {
            e->workload = !isReservedIdentity(e->identity) && !e->name.empty();
        }
        out.push_back(parseOcsfLine(toOcsfLine(r)));
    }
    return out;
}

std::string table(const std::vector<FlowRecord>& flows) {
    std::ostringstream out;
    cli::FlowTable t(out, /*streaming=*/false);
    for (const auto& r : flows) {
        t.add(r);
    }
    t.finish();
    return out.str();
}

TEST(FlowFileFormat, TodaysLinesShowTheSameTable) {
    auto old = recorded();
    auto now = rewritten(old);
    ASSERT_EQ(now.size(), old.size());
    EXPECT_EQ(table(now), table(old));
    size_t lateral = 0, connect = 0;
    for (size_t i = 0; i < old.size(); ++i) {
        std::string line = toOcsfLine(now[i]);
        lateral += line.find(R"("direction":"Lateral")") != std::string::npos;
        if (old[i].hook == "sock-connect") {
            ++connect;
            nlohmann::json src = nlohmann::json::parse(line).at("src_endpoint");
            EXPECT_FALSE(src.contains("ip")) << line;
            EXPECT_FALSE(src.contains("port")) << line;
            EXPECT_EQ(cli::endpointText(now[i].src), "(web)");  // refused before it had one
        }
        if (old[i].src.identity == kUnlabeled) {
            EXPECT_NE(cli::endpointText(now[i].src).find("(unlabeled)"), std::string::npos);
        }
        EXPECT_EQ(now[i].direction, old[i].direction) << line;
    }
    EXPECT_GT(lateral, 0u);
    EXPECT_GT(connect, 0u);
}

TEST(FlowFileFormat, TodaysLinesGiveTheSameWhatif) {
    std::vector<policy::SourceText> src = {
        {"fleet.yaml", slurp(kSource / "policies/fleet.yaml")},
        {"three-tier.yaml", slurp(kSource / "policies/three-tier.yaml")},
        {"lab.yaml", slurp(kSource / "tests/cli/data/lab.yaml")}};
    policy::Diagnostics d;
    policy::PolicySet ps = policy::parsePolicies(src, d);
    auto old = recorded();
    WhatifReport a = whatif(ps, old), b = whatif(ps, rewritten(old));
    EXPECT_EQ(b.events, a.events);
    EXPECT_EQ(b.judged, a.judged);
    EXPECT_EQ(b.unchanged, a.unchanged);
    EXPECT_EQ(b.not_judged, a.not_judged);
    EXPECT_EQ(b.covered, a.covered);
    ASSERT_EQ(b.changes.size(), a.changes.size());
    EXPECT_GT(a.judged, 0u);
}

// A summary of one source's drops (issue 15) reads back from its line and
// says what it summarizes in every text format.
TEST(FlowFileFormat, SummaryShowsItsDropsPortsAndWindow) {
    FlowRecord r = recorded().front();
    r.verdict = "dropped";
    r.reason = "unlabeled";
    r.summary = true;
    r.suppressed = 4992;
    r.distinct_dst_ports = 312;
    r.window_start = r.time - std::chrono::milliseconds(3000);
    const FlowRecord back = parseOcsfLine(toOcsfLine(r));
    const std::string want = "summary: 4992 drops on 312 ports in 3.0 s";
    EXPECT_NE(table({back}).find(want), std::string::npos) << table({back});
    EXPECT_NE(cli::compactLine(back, false, false).find(", " + want + ")"), std::string::npos);
    EXPECT_NE(cli::dictBlock(back, false, false).find("SUMMARY"), std::string::npos);
}

// A source whose identity a proof on the wire named says so in every text
// form; the same flow judged on its address does not.
TEST(FlowFileFormat, AProvenSourceSaysSoInEveryTextForm) {
    FlowRecord r = recorded().front();
    r.proven = true;
    const FlowRecord back = parseOcsfLine(toOcsfLine(r));
    ASSERT_TRUE(back.proven);
    const std::string src = cli::sourceText(back);
    EXPECT_EQ(src.substr(src.size() - 9), ", proven)") << src;
    EXPECT_NE(table({back}).find(src), std::string::npos) << table({back});
    EXPECT_NE(cli::compactLine(back, false, false).find(src), std::string::npos);
    EXPECT_NE(cli::dictBlock(back, false, false).find(src), std::string::npos);
    r.proven = false;
    EXPECT_EQ(cli::sourceText(r), cli::endpointText(r.src));
    EXPECT_EQ(table({r}).find("proven"), std::string::npos);
}

}  // namespace
}  // namespace ztseg::flows
