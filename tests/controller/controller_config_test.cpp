// ztseg-controller config: every section, defaults, and located errors.
#include "controller/controller_config.hpp"

#include <gtest/gtest.h>

#include "common/error.hpp"

namespace ztseg::controller {
namespace {

std::string errorOf(const std::string& text) {
    try {
        parseControllerConfig(text, "c.yaml");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(ControllerConfig, EverySectionIsRead) {
    ControllerConfig c = parseControllerConfig(R"(
fleet: prod
policy_dir: /etc/ztseg/policy
watch_interval_ms: 0
state_dir: /tmp/cs
signing_keys: [/etc/ztseg/a.key, /etc/ztseg/b.key]
api:
  unix_socket: /tmp/c.sock
  listen: 0.0.0.0:7443
  tls: {cert: c.pem, key: c.key, ca: ca.pem}
revoked: {serials: ["0A:1B"], hosts: [old-node]}
hosts:
  node-1: {labels: {role: canary, zone: a}}
rollout:
  canary_labels: {role: canary}
  waves: [25, 100]
  ack_timeout_ms: 5000
  soak_ms: 1000
  max_default_deny_increase: 7
flows: {file: /tmp/fleet.jsonl, max_files: 2}
rollout_log: /tmp/rollout.jsonl
)",
                                               "c.yaml");
    EXPECT_EQ(c.fleet, "prod");
    EXPECT_EQ(c.watch_interval_ms, 0u);
    EXPECT_EQ(c.signing_keys.size(), 2u);
    EXPECT_EQ(c.listen, "0.0.0.0:7443");
    EXPECT_EQ(c.tls.ca, "ca.pem");
    EXPECT_EQ(c.revoked_serials, std::vector<std::string>{"0A:1B"});
    EXPECT_EQ(c.revoked_hosts, std::vector<std::string>{"old-node"});
    EXPECT_EQ(c.host_labels.at("node-1").at("zone"), "a");
    EXPECT_EQ(c.rollout.canary_labels.at("role"), "canary");
    EXPECT_EQ(c.rollout.waves, (std::vector<uint32_t>{25, 100}));
    EXPECT_EQ(c.rollout.max_default_deny_increase, 7u);
    EXPECT_EQ(c.flow_file_max_files, 2u);
    EXPECT_EQ(c.etcd_prefix, "/ztseg/prod") << "default prefix names the fleet";
}

TEST(ControllerConfig, ConfirmWindowsDefaultOnCanBeTurnedOffAndMustLeaveTimeToConfirm) {
    const std::string base =
        "fleet: prod\npolicy_dir: /p\nsigning_keys: [k]\napi: {listen: 0.0.0.0:1, tls: {cert: "
        "c, key: k, ca: a}}\n";
    ControllerConfig c = parseControllerConfig(base, "c.yaml");
    EXPECT_EQ(c.rollout.confirm_within_ms, 60000u);
    EXPECT_EQ(c.rollout.confirm_settle_ms, 2000u);
    c = parseControllerConfig(base + "rollout: {confirm_within_ms: 0}\n", "c.yaml");
    EXPECT_EQ(c.rollout.confirm_within_ms, 0u) << "0 turns confirm windows off";
    c = parseControllerConfig(
        base + "rollout: {confirm_within_ms: 5000, confirm_settle_ms: 2500}\n", "c.yaml");
    EXPECT_EQ(c.rollout.confirm_settle_ms, 2500u);
    EXPECT_NE(errorOf(base + "rollout: {confirm_within_ms: 3000, confirm_settle_ms: 2000}\n")
                  .find("c.yaml:5:10: rollout.confirm_within_ms 3000 must be at least 1000 and at "
                        "least twice confirm_settle_ms (2000)"),
              std::string::npos)
        << errorOf(base + "rollout: {confirm_within_ms: 3000, confirm_settle_ms: 2000}\n");
    EXPECT_NE(errorOf(base + "rollout: {confirm_within_ms: 500, confirm_settle_ms: 0}\n"), "");
    EXPECT_NE(errorOf(base + "rollout: {confirm_within_ms: 90000000}\n"), "") << "over a day";
}

TEST(ControllerConfig, RequiredFieldsAreNamed) {
    std::string e = errorOf("state_dir: /x\n");
    EXPECT_NE(e.find("c.yaml:1:1: fleet is required"), std::string::npos) << e;
    EXPECT_NE(e.find("policy_dir is required"), std::string::npos) << e;
    EXPECT_NE(e.find("signing_keys is required"), std::string::npos) << e;
    EXPECT_NE(e.find("api.listen (agents connect) or etcd.endpoints is required"),
              std::string::npos)
        << e;
    EXPECT_NE(errorOf("").find("empty configuration"), std::string::npos);
}

TEST(ControllerConfig, BadValuesHaveLocations) {
    const std::string base = "fleet: f\npolicy_dir: p\nsigning_keys: [k]\n";
    EXPECT_EQ(errorOf(base + "api: {listen: \":1\"}\n"),
              "c.yaml:4:6: api.listen needs api.tls.cert, key and ca (mutual TLS only)");
    EXPECT_EQ(errorOf(base + "etcd: {endpoints: [e]}\nrollout: {waves: [50, 40, 100]}\n"),
              "c.yaml:5:23: waves must grow: cumulative percentages up to 100");
    EXPECT_EQ(errorOf(base + "etcd: {endpoints: [e]}\nrollout: {waves: [50]}\n"),
              "c.yaml:5:18: the last wave must be 100 (every host)");
    EXPECT_NE(errorOf(base + "etcd: {endpoints: [e]}\nrollout: {soak: 5}\n")
                  .find("c.yaml:5:11: unknown field 'soak' in rollout"),
              std::string::npos);
}

}  // namespace
}  // namespace ztseg::controller
