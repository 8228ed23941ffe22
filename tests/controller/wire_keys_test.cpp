// Pairwise wire-proof keys (controller/wire_keys.hpp): HKDF against RFC 5869,
// both ends of a pair derive one key and nobody else's, and the rotation plan
// never leaves a sender's key unaccepted at a receiver whose push is up to
// overlap_s late or early.
#include "controller/wire_keys.hpp"

#include <gtest/gtest.h>

#include <set>

#include "common/error.hpp"
#include "controller/controller_config.hpp"

namespace ztseg::controller {
namespace {

std::string hex(const std::vector<uint8_t>& b) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (uint8_t c : b) {
        out += d[c >> 4];
        out += d[c & 15];
    }
    return out;
}

const std::string kSecret(32, '\x5a');

TEST(WireKeys, HkdfMatchesRfc5869TestCase1) {
    std::string ikm(22, '\x0b'), salt, info;
    for (int i = 0; i <= 0x0c; ++i) salt.push_back(char(i));
    for (int i = 0xf0; i <= 0xf9; ++i) info.push_back(char(i));
    EXPECT_EQ(hex(hkdfSha256(ikm, salt, info, 42)),
              "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
              "34007208d5b887185865");
}

TEST(WireKeys, BothEndsOfAPairDeriveOneKeyAndNoOtherPairShares) {
    auto ab = pairKey(kSecret, "prod", "a", "b", 7);
    EXPECT_EQ(ab, pairKey(kSecret, "prod", "b", "a", 7));
    std::set<std::array<uint8_t, 16>> distinct{
        ab,
        pairKey(kSecret, "prod", "a", "c", 7),
        pairKey(kSecret, "prod", "b", "c", 7),
        pairKey(kSecret, "prod", "a", "b", 8),                  // another epoch
        pairKey(kSecret, "staging", "a", "b", 7),               // another fleet
        pairKey(std::string(32, '\x01'), "prod", "a", "b", 7),  // another secret
        pairKey(kSecret, "prod", "ab", "", 7),  // names are delimited, not concatenated
    };
    EXPECT_EQ(distinct.size(), 7u);
}

TEST(WireKeys, PlanAnnouncesTheNextKeyAndRetiresThePreviousWithinTheOverlap) {
    WireProofSettings s;
    s.rotate_every_s = 100;
    s.overlap_s = 10;
    WireKeyPlan mid = wireKeyPlan(s, 1050);
    EXPECT_EQ(mid.epoch, 10u);
    ASSERT_EQ(mid.keys.size(), 1u);
    EXPECT_TRUE(mid.keys[0].send);
    EXPECT_EQ(mid.next_change_unix_s, 1090);

    WireKeyPlan late = wireKeyPlan(s, 1095);
    ASSERT_EQ(late.keys.size(), 2u);
    EXPECT_EQ(late.keys[1].epoch, 11u);
    EXPECT_FALSE(late.keys[1].send);
    EXPECT_EQ(late.next_change_unix_s, 1100);

    WireKeyPlan early = wireKeyPlan(s, 1100);
    EXPECT_EQ(early.epoch, 11u);
    ASSERT_EQ(early.keys.size(), 2u);
    EXPECT_TRUE(early.keys[0].send);
    EXPECT_EQ(early.keys[1].epoch, 10u);
    EXPECT_FALSE(early.keys[1].send);
    EXPECT_EQ(early.next_change_unix_s, 1110);
    EXPECT_NE(wireKeyId(10), wireKeyId(11));
    EXPECT_NE(wireKeyId(254), wireKeyId(255));
    EXPECT_NE(wireKeyId(0), 0);
    EXPECT_NE(wireKeyId(254), 0);
}

// Whatever second a sender's plan was made, a receiver whose plan is up to
// overlap_s older or newer accepts the key it sends under.
TEST(WireKeys, APushUpToOverlapLateNeverLeavesTheSendKeyUnaccepted) {
    WireProofSettings s;
    s.rotate_every_s = 60;
    s.overlap_s = 12;
    for (int64_t t = 600; t < 800; ++t) {
        const uint64_t sent = wireKeyPlan(s, t).epoch;
        for (int64_t skew = -12; skew <= 12; ++skew) {
            WireKeyPlan rx = wireKeyPlan(s, t + skew);
            bool accepted = false;
            for (const auto& k : rx.keys) accepted |= k.epoch == sent;
            ASSERT_TRUE(accepted) << "sent at " << t << " under epoch " << sent
                                  << ", receiver's plan of " << t + skew;
            ASSERT_LE(rx.keys.size(), 2u);
        }
    }
    // one second more than the overlap is outside the promise: the check can fail
    WireKeyPlan stale = wireKeyPlan(s, 660 - 13);
    for (const auto& k : stale.keys) EXPECT_NE(k.epoch, wireKeyPlan(s, 660).epoch);
}

TEST(WireKeys, EachHostGetsItsPeersWithThePairsKeys) {
    WireProofSettings s;
    WireFleet hosts;
    hosts.addresses = {{"a", {"10.0.1.0/24", "fd00:1::/64"}}, {"b", {"10.0.2.0/24"}}, {"c", {}}};
    hosts.identities = {{"a", {300, 301}}, {"b", {400}}};
    v1::WireProofPush a = wireProofFor("a", "prod", kSecret, s, hosts, 1'000'000);
    v1::WireProofPush b = wireProofFor("b", "prod", kSecret, s, hosts, 1'000'000);
    ASSERT_EQ(a.peers_size(), 1);  // c has no addresses: nobody expects its proofs
    EXPECT_EQ(a.peers(0).host(), "b");
    EXPECT_EQ(a.peers(0).addresses(0), "10.0.2.0/24");
    ASSERT_EQ(b.peers_size(), 1);
    EXPECT_EQ(b.peers(0).addresses_size(), 2);
    EXPECT_NE(a.peers(0).id(), 0u);
    EXPECT_EQ(a.epoch(), 1'000'000u / 86400);
    ASSERT_EQ(a.peers(0).keys_size(), 1);
    EXPECT_EQ(a.peers(0).keys(0).key(), b.peers(0).keys(0).key());
    EXPECT_EQ(a.peers(0).keys(0).key().size(), 16u);
    EXPECT_TRUE(a.peers(0).keys(0).send() && a.peers(0).keys(0).accept());
    EXPECT_EQ(a.window_s(), 30u);
    // each may prove only the workloads it runs
    EXPECT_EQ(std::vector<uint32_t>(a.peers(0).identities().begin(), a.peers(0).identities().end()),
              std::vector<uint32_t>{400});
    EXPECT_EQ(std::vector<uint32_t>(b.peers(0).identities().begin(), b.peers(0).identities().end()),
              (std::vector<uint32_t>{300, 301}));

    EXPECT_EQ(wireProofFor("c", "prod", kSecret, s, hosts, 1'000'000).peers_size(), 0);
    EXPECT_EQ(wireProofFor("z", "prod", kSecret, s, hosts, 1'000'000).peers_size(), 0);
    EXPECT_EQ(wireProofFor("a", "prod", "", s, hosts, 1'000'000).peers_size(), 0);
}

std::string configError(const std::string& extra) {
    try {
        parseControllerConfig("fleet: prod\npolicy_dir: /p\nsigning_keys: [k]\n" + extra, "c.yaml");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

const std::string kDirect = "api: {listen: 0.0.0.0:7443, tls: {cert: c, key: k, ca: ca}}\n";

TEST(WireKeys, ConfigReadsHostAddressesAndWireProof) {
    ControllerConfig c = parseControllerConfig(
        "fleet: prod\npolicy_dir: /p\nsigning_keys: [k]\n" + kDirect +
            "hosts:\n  a: {addresses: [10.0.1.5, \"fd00::/64\"], workloads: [api, web]}\n"
            "  b: {labels: {x: y}}\n"
            "wire_proof: {secret_file: /etc/s, rotate_every_s: 600, overlap_s: 60, "
            "window_s: 10}\n",
        "c.yaml");
    EXPECT_EQ(c.host_addresses.at("a"), (std::vector<std::string>{"10.0.1.5/32", "fd00::/64"}));
    EXPECT_EQ(c.host_addresses.count("b"), 0u);
    EXPECT_EQ(c.host_workloads.at("a"), (std::vector<std::string>{"api", "web"}));
    EXPECT_EQ(c.wire_proof.secret_file, "/etc/s");
    EXPECT_EQ(c.wire_proof.rotate_every_s, 600u);
    EXPECT_EQ(c.wire_proof.overlap_s, 60u);
    EXPECT_EQ(c.wire_proof.window_s, 10u);
}

TEST(WireKeys, ConfigRefusesWhatCouldNotWork) {
    EXPECT_NE(configError(kDirect + "hosts: {a: {addresses: [10.0.0.0/8]}, b: {addresses: "
                                    "[10.1.2.3]}}\n")
                  .find("c.yaml:5:"),
              std::string::npos);
    EXPECT_NE(configError(kDirect + "hosts: {a: {addresses: [10.0.0.0/8]}, b: {addresses: "
                                    "[10.1.2.3]}}\n")
                  .find("overlaps 10.0.0.0/8 of host 'a'"),
              std::string::npos);
    EXPECT_NE(configError(kDirect + "hosts: {a: {addresses: [10.0.0.300]}}\n").find("c.yaml:5:"),
              std::string::npos);
    EXPECT_NE(configError(kDirect + "wire_proof: {secret_file: s, rotate_every_s: 60, "
                                    "overlap_s: 30}\n")
                  .find("at most a third"),
              std::string::npos);
    EXPECT_NE(configError("etcd: {endpoints: [http://e:2379]}\nwire_proof: {secret_file: s}\n")
                  .find("never through etcd"),
              std::string::npos);
    EXPECT_EQ(configError(kDirect + "wire_proof: {secret_file: s}\n"), "");
}

}  // namespace
}  // namespace ztseg::controller
