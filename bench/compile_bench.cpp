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
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "datapath/policy_entries.hpp"
#include "policy/bundle.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"

using namespace ztseg;
using namespace ztseg::policy;

namespace {

constexpr int kRulesPerPolicy = 10;  // 7 ingress, 3 egress (one of them a deny)
constexpr int kTeamSize = 10;
constexpr int kPoliciesPerFile = 100;

std::string policyFileName(int chunk) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "policies/services-%05d.yaml", chunk);
    return buf;
}

std::string v4(int i) {  // 10.B.C.D, distinct for i < 2^24
    return "10." + std::to_string((i >> 16) & 255) + "." + std::to_string((i >> 8) & 255) + "." +
           std::to_string(i & 255);
}

std::string v6(int i) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "fd00:10::%x:%x", (i >> 16) & 0xffff, i & 0xffff);
    return buf;
}

// `rules` rules: rules / 10 workloads, each with one policy. As operators
// keep them: the inventory in one file, the policies in files of 100 services.
std::vector<SourceText> syntheticPolicy(int rules) {
    const int n = std::max(1, rules / kRulesPerPolicy);
    std::mt19937_64 rng(42);
    auto other = [&](int self) {
        int j = int(rng() % uint64_t(n));
        return j == self ? (j + 1) % n : j;
    };
    static const char* kTiers[] = {"front", "back", "data"};
    std::ostringstream y;
    y << "hosts: [\"192.168.0.1\", \"fd00:ffff::1\"]\n";
    y << "externals:\n"
      << "  - {name: dns, cidrs: [\"192.0.2.53/32\", \"2001:db8::53/128\"], labels: {ext: dns}}\n"
      << "  - {name: metadata, cidrs: [\"169.254.169.254/32\"], labels: {ext: metadata}}\n"
      << "  - {name: registry, cidrs: [\"198.51.100.0/24\"], labels: {ext: registry}}\n"
      << "  - {name: internet, cidrs: [\"203.0.113.0/24\", \"2001:db8:ff::/48\"]}\n";
    y << "workloads:\n";
    for (int i = 0; i < n; ++i) {
        y << "  - {name: svc-" << i << ", labels: {app: svc-" << i << ", team: team-"
          << i / kTeamSize << ", tier: " << kTiers[i % 3]
          << ", env: " << (i % 5 == 0 ? "staging" : "prod") << "}, cgroup: \"svc/svc-" << i
          << "\", addresses: [\"" << v4(i + 1) << "\", \"" << v6(i + 1) << "\"]}\n";
    }
    std::vector<SourceText> files{{"00-inventory.yaml", y.str()}};
    for (int i = 0; i < n; ++i) {
        if (i % kPoliciesPerFile == 0) {
            if (i > 0) {
                files.push_back({policyFileName(i / kPoliciesPerFile - 1), y.str()});
            }
            y.str("");
            y << "policies:\n";
        }
        y << "  - name: svc-" << i << "\n    selector: {matchLabels: {app: svc-" << i << "}}\n";
        if (i % 20 == 0) {
            y << "    mode: audit\n";
        }
        y << "    ingress:\n";
        for (int k = 0; k < 5; ++k) {  // named callers
            int j = other(i);
            y << "      - from: [{selector: {matchLabels: {app: svc-" << j << "}}}]\n";
            switch (k % 3) {
                case 0:
                    y << "        ports: [{port: 8080, protocol: tcp}]\n";
                    break;
                case 1:
                    y << "        ports: [{port: \"8000-8100\", protocol: tcp}, {port: 8443, "
                         "protocol: [tcp, udp]}]\n";
                    break;
                default:
                    y << "        ports: [{port: " << 9000 + int(rng() % 1000)
                      << ", protocol: tcp}, {protocol: icmp}]\n";
                    break;
            }
        }
        y << "      - from: [{selector: {matchLabels: {team: team-" << i / kTeamSize
          << "}, matchExpressions: [{key: env, operator: In, values: [prod, staging]}]}}]\n"
          << "        ports: [{port: 9090, protocol: tcp}]\n"
          << "      - from: [{entity: host}]\n"
          << "        ports: [{port: 9100, protocol: tcp}]\n";
        y << "    egress:\n"
          << "      - to: [{selector: {matchLabels: {app: svc-" << other(i) << "}}}]\n"
          << "        ports: [{port: 5432, protocol: tcp}]\n"
          << "      - to: [{selector: {matchLabels: {ext: dns}}}]\n"
          << "        ports: [{port: 53, protocol: [udp, tcp]}]\n"
          << "      - action: deny\n"
          << "        to: [{cidr: \"169.254.0.0/16\"}]\n";
    }
    files.push_back({policyFileName((n - 1) / kPoliciesPerFile), y.str()});
    return files;
}

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
                   std::atoi(argv[i + 1]) >= kRulesPerPolicy) {
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
            kRulesPerPolicy, kTeamSize, kPoliciesPerFile);
    } catch (const Error& e) {
        std::fprintf(stderr, "ztseg_bench_compile: %s\n", e.what());
        return 1;
    }
    return 0;
}
