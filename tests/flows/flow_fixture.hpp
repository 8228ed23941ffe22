// Shared by the flow tests: a small compiled policy and hand-made datapath events.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "abi.h"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"

namespace ztseg::flows::testing {

inline const char* kPolicyYaml = R"(
workloads:
  - {name: web, labels: {app: web, tier: front}, addresses: ["10.0.0.1", "fd00::1"]}
  - {name: db, labels: {app: db, tier: data}, addresses: ["10.0.0.3", "fd00::3"]}
  - {name: ledger, labels: {app: ledger}, addresses: ["10.0.0.4", "fd00::4"]}
externals:
  - {name: partner, cidrs: ["192.0.2.0/24"], labels: {zone: partner}}
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{selector: {matchLabels: {app: web}}}]
        ports: [{port: 5432, protocol: tcp}]
        description: web reads db
  - name: ledger
    mode: audit
    selector: {matchLabels: {app: ledger}}
    ingress:
      - from: [{selector: {matchLabels: {app: web}}}]
        ports: [{port: 7443, protocol: tcp}]
)";

inline policy::CompiledPolicy compilePolicy(uint64_t generation = 7) {
    policy::Diagnostics diags;
    policy::PolicySet ps = policy::parsePolicies({{"flows.yaml", kPolicyYaml}}, diags);
    return policy::compile(ps, generation, diags);
}

inline IdentityId workloadId(const policy::CompiledPolicy& p, const std::string& name) {
    for (const auto& w : p.workloads) {
        if (w.name == name) {
            return w.identity;
        }
    }
    ADD_FAILURE() << "no workload " << name;
    return 0;
}

inline uint32_t ruleOf(const policy::CompiledPolicy& p, const std::string& policy_name) {
    for (const auto& s : p.sources) {
        if (s.policy == policy_name) {
            return s.rule_id;
        }
    }
    ADD_FAILURE() << "no rule of policy " << policy_name;
    return 0;
}

inline void setAddr(uint32_t* dst, const char* text) {
    std::memset(dst, 0, 16);
    if (std::strchr(text, ':')) {
        EXPECT_EQ(inet_pton(AF_INET6, text, dst), 1) << text;
    } else {
        EXPECT_EQ(inet_pton(AF_INET, text, dst), 1) << text;
    }
}

inline ztseg_flow_event makeEvent(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                                  uint8_t proto, uint8_t verdict, uint8_t reason) {
    ztseg_flow_event ev{};
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ev.ts_ns = uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
    ev.family = std::strchr(src, ':') ? 6 : 4;
    setAddr(ev.saddr, src);
    setAddr(ev.daddr, dst);
    ev.sport = sport;
    ev.dport = dport;
    ev.proto = proto;
    ev.verdict = verdict;
    ev.reason = reason;
    ev.hook = ZTSEG_HOOK_CGROUP_INGRESS;
    ev.direction = ZTSEG_DIR_INGRESS;
    ev.pkt_len = 60;
    ev.generation = 7;
    return ev;
}

}  // namespace ztseg::flows::testing
