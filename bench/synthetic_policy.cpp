#include "synthetic_policy.hpp"

#include <algorithm>
#include <cstdio>
#include <random>
#include <sstream>

#include "common/error.hpp"

namespace ztseg::bench {
namespace {

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

}  // namespace

std::vector<policy::SourceText> syntheticPolicy(int rules) {
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
    std::vector<policy::SourceText> files{{"00-inventory.yaml", y.str()}};
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

std::vector<policy::SourceText> withOneRuleChanged(std::vector<policy::SourceText> files,
                                                   int port) {
    const std::string from = "ports: [{port: 9090, protocol: tcp}]";
    for (auto& f : files) {
        if (auto at = f.text.find(from); at != std::string::npos) {
            f.text.replace(at, from.size(),
                           "ports: [{port: " + std::to_string(port) + ", protocol: tcp}]");
            return files;
        }
    }
    throw Error("synthetic policy has no team rule to change");
}

}  // namespace ztseg::bench
