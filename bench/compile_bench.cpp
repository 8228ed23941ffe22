// Policy compile cost at 1k / 10k / 100k rules: synthetic but realistic
// policy YAML (one service per workload, each with its own policy allowing a
// few callers, its team, the host's monitoring, and egress to its database,
// DNS and a denied metadata endpoint), measured through parse, compile, the
// datapath's policy-map expansion, and the bundle. Prints a Markdown table.
//
// Usage: ztseg_bench_compile [--smoke | --rules N]   (--smoke: 1k rules only;
//        --rules N: one size, e.g. to profile it)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "datapath/policy_entries.hpp"
#include "policy/bundle.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"
#include "synthetic_policy.hpp"

using namespace ztseg;
using namespace ztseg::policy;
using ztseg::bench::syntheticPolicy;

namespace {

double msSince(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

struct Row {
    int rules = 0;
    size_t workloads = 0, files = 0, yaml_bytes = 0, compiled_rules = 0, identities = 0,
           entries = 0, bundle_bytes = 0, warnings = 0;
    double parse_ms = 0, compile_ms = 0, entries_ms = 0, bundle_ms = 0;
};

Row measure(int rules) {
    Row r;
    std::vector<SourceText> files = syntheticPolicy(rules);
    for (const auto& f : files) {
        r.yaml_bytes += f.text.size();
    }
    r.files = files.size();

    auto t = std::chrono::steady_clock::now();
    Diagnostics diags;
    PolicySet ps = parsePolicies(std::move(files), diags);
    r.parse_ms = msSince(t);
    for (const auto& p : ps.policies) {
        r.rules += int(p.rules.size());
    }
    r.workloads = ps.workloads.size();

    t = std::chrono::steady_clock::now();
    CompiledPolicy cp = compile(ps, 1, diags);
    r.compile_ms = msSince(t);
    r.compiled_rules = cp.rules.size();
    r.identities = cp.identities.size();
    r.warnings = diags.warnings().size();

    t = std::chrono::steady_clock::now();
    PolicyEntries pe = compilePolicyEntries(cp.rules);  // what Datapath::apply writes
    r.entries_ms = msSince(t);
    r.entries = pe.entries.size();

    t = std::chrono::steady_clock::now();
    std::string bundle = serializeBundle(cp);
    r.bundle_ms = msSince(t);
    r.bundle_bytes = bundle.size();
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int> sizes = {1'000, 10'000, 100'000};
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--smoke") == 0) {
            sizes = {1'000};
        } else if (std::strcmp(argv[i], "--rules") == 0 && i + 1 < argc &&
                   std::atoi(argv[i + 1]) >= ztseg::bench::kRulesPerPolicy) {
            sizes = {std::atoi(argv[++i])};
        } else {
            std::cerr << "usage: ztseg_bench_compile [--smoke | --rules N]\n";
            return 2;
        }
    }
    try {
        std::printf(
            "| rules | workloads | files | YAML KiB | parse ms | compile ms | compiled rules | "
            "identities | policy map entries | entries ms | bundle KiB | bundle ms | "
            "total s |\n");
        std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int n : sizes) {
            Row r = measure(n);
            double total = (r.parse_ms + r.compile_ms + r.entries_ms + r.bundle_ms) / 1000;
            std::printf(
                "| %d | %zu | %zu | %.0f | %.1f | %.1f | %zu | %zu | %zu | %.1f | %.0f | %.1f | "
                "%.2f "
                "|\n",
                r.rules, r.workloads, r.files, double(r.yaml_bytes) / 1024, r.parse_ms,
                r.compile_ms, r.compiled_rules, r.identities, r.entries, r.entries_ms,
                double(r.bundle_bytes) / 1024, r.bundle_ms, total);
            std::fflush(stdout);
            if (r.warnings != 0) {
                std::fprintf(stderr, "%d rules: %zu compiler warnings\n", n, r.warnings);
            }
        }
        std::printf(
            "\nSynthetic input: one workload (IPv4 + IPv6 address) and one policy per %d "
            "rules: 5 named callers, its team of %d, host monitoring, egress to one database "
            "and DNS, and a deny to 169.254.0.0/16; the inventory in one file, policies in files "
            "of "
            "%d services. Single run; parse = YAML to PolicySet, "
            "entries = rules to policy map keys (deny closure), bundle = protobuf bytes.\n",
            ztseg::bench::kRulesPerPolicy, ztseg::bench::kTeamSize, ztseg::bench::kPoliciesPerFile);
    } catch (const Error& e) {
        std::fprintf(stderr, "ztseg_bench_compile: %s\n", e.what());
        return 1;
    }
    return 0;
}
