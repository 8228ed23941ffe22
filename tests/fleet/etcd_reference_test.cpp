// etcd mode without copies of the bundle: the controller's EtcdDistributor
// stores a generation's signed bundle once (<prefix>/generations/<g>) and
// writes hosts without the base a small reference to it, many host keys per
// etcd transaction; a simulated agent (bench/sim_agent: the real EtcdLink and
// admission) resolves the reference and converges. Forged references (to a
// bundle signed by an untrusted key, to a missing key, to a key outside the
// generations, with a wrong digest) are refused and change nothing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/error.hpp"
#include "common/etcd_bundle_ref.hpp"
#include "common/etcd_client.hpp"
#include "controller/etcd_distributor.hpp"
#include "controller/fleet.hpp"
#include "fleet/fleet_lab.hpp"
#include "policy/bundle.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"
#include "policy/signing.hpp"
#include "sim_agent.hpp"

namespace ztseg::test {
namespace {

using namespace std::chrono_literals;

class EtcdReference : public ::testing::Test {
  protected:
    void SetUp() override {
        lab_ = std::make_unique<FleetLab>(0);
        lab_->service_ns = nullptr;  // etcd on 127.0.0.1 of this namespace
        lab_->etcd_port = uint16_t(24000 + (getpid() % 3000) * 2);
        lab_->startEtcd();
        key_ = policy::Ed25519Key::load(lab_->keyPath("A", ".key"));
        etcd_ = std::make_unique<EtcdClient>(std::vector<std::string>{lab_->etcdEndpoint()});
        dist_ = std::make_unique<controller::EtcdDistributor>(
            std::vector<std::string>{lab_->etcdEndpoint()}, prefix_, fleet_, 600s);
    }
    void TearDown() override {
        agent_.reset();
        dist_.reset();
        etcd_.reset();
        lab_.reset();
    }

    // Generation g of a policy of 100 ports (a few KiB), signed by `key`.
    std::string bundle(uint64_t g, const policy::Ed25519Key& key, uint16_t port = 7001) {
        std::vector<uint16_t> ports{kProbePort, port};
        for (uint16_t p = 8000; p < 8100; ++p) ports.push_back(p);
        lab_->writePolicy(ports, "gen " + std::to_string(g));
        policy::Diagnostics diags;
        policy::PolicySet ps = policy::loadPolicies({(lab_->dir / "policy").string()}, diags);
        policy::CompiledPolicy cp = policy::compile(ps, g, diags);
        return policy::signBundle(policy::serializeBundle(cp, {kFleetName, 0}), {key});
    }

    void startAgent() {
        lab_->addHostCert("sim-0");
        bench::SimAgentOptions o;
        o.name = "sim-0";
        o.fleet = kFleetName;
        o.state_dir = (lab_->dir / "sim-0").string();
        o.trusted_keys = {policy::Ed25519Key::loadTrusted(lab_->keyPath("A", ".pub"))};
        o.tls = {lab_->pki.cert("sim-0"), lab_->pki.key("sim-0"), lab_->pki.cert("ca")};
        o.etcd_endpoints = {lab_->etcdEndpoint()};
        o.etcd_prefix = prefix_;
        o.report_interval_ms = 60'000;  // reports come with each apply or refusal
        agent_ = std::make_unique<bench::SimAgent>(std::move(o));
        agent_->connect();
    }

    std::string hostValue(const std::string& host) {
        auto kv = etcd_->get(prefix_ + "/hosts/" + host + "/bundle");
        return kv ? kv->value : "";
    }
    int64_t revision() {
        int64_t rev = 0;
        etcd_->range(prefix_ + "/", &rev, true);
        return rev;
    }
    // The refusal the agent last reported through etcd.
    std::string reportedError() {
        auto hs = fleet_.snapshot();
        auto it = hs.find("sim-0");
        return it == hs.end() ? "" : it->second.last_apply.error();
    }

    const std::string prefix_ = "/ztseg/" + kFleetName;
    std::unique_ptr<FleetLab> lab_;
    policy::Ed25519Key key_ = policy::Ed25519Key::generate();
    std::unique_ptr<EtcdClient> etcd_;
    controller::Fleet fleet_;
    std::unique_ptr<controller::EtcdDistributor> dist_;
    std::unique_ptr<bench::SimAgent> agent_;
};

TEST_F(EtcdReference, HostsWithoutTheBaseGetAReferenceInFewTransactionsAndForgeriesAreRefused) {
    startAgent();
    const std::string g1 = bundle(1, key_);
    ASSERT_GT(g1.size(), 2000u);

    // 300 hosts (sim-0 among them) without a base: one generation key and
    // 300 references, in ceil(300 / 128) = 3 transactions.
    constexpr int kHosts = 300;
    std::vector<std::string> names{"sim-0"};
    for (int i = 1; i < kHosts; ++i) names.push_back("host-" + std::to_string(i));
    std::vector<controller::Distributor::Push> pushes;
    for (const auto& n : names) pushes.push_back({n, 1, &g1, false});
    int64_t rev0 = revision();
    std::vector<bool> sent = dist_->pushMany(pushes);
    int64_t revisions = revision() - rev0;
    EXPECT_EQ(std::count(sent.begin(), sent.end(), true), kHosts);
    EXPECT_LE(revisions, 1 + 3 + 2)
        << "one put for the generation key, then a few transactions "
           "(not one revision per host); the agent's report may add one";
    auto shared = etcd_->get(etcdGenerationKey(prefix_, 1));
    ASSERT_TRUE(shared.has_value());
    EXPECT_EQ(shared->value, g1) << "the bundle is stored once, under its generation";
    for (const auto& n : names) {
        std::string v = hostValue(n);
        ASSERT_LT(v.size(), 256u) << n << ": a reference, not a copy of the bundle";
        ASSERT_TRUE(isEtcdBundleRef(v)) << n;
        EXPECT_EQ(parseEtcdBundleRef(v).key, etcdGenerationKey(prefix_, 1));
    }
    // Nothing else in etcd holds the bundle.
    size_t copies = 0;
    for (const auto& kv : etcd_->range(prefix_ + "/")) copies += kv.value == g1;
    EXPECT_EQ(copies, 1u);

    ASSERT_TRUE(FleetLab::waitFor([&] { return agent_->generation() == 1; }, 20s))
        << "the agent resolves the reference and admits generation 1; last refusal: "
        << agent_->lastRefusal();
    EXPECT_EQ(agent_->refusals(), 0u);

    // A reference to a key holding a bundle signed by an untrusted key:
    // resolved, then refused by admission.
    policy::Ed25519Key stranger = policy::Ed25519Key::generate();
    const std::string forged = bundle(2, stranger, 7002);
    etcd_->put(etcdGenerationKey(prefix_, 2), forged);
    etcd_->put(prefix_ + "/hosts/sim-0/bundle", makeEtcdBundleRef(prefix_, 2, forged));
    ASSERT_TRUE(FleetLab::waitFor([&] { return agent_->refusals() == 1; }, 20s));
    EXPECT_NE(agent_->lastRefusal().find(stranger.keyId()), std::string::npos)
        << agent_->lastRefusal();
    EXPECT_EQ(agent_->generation(), 1u);

    // A reference to a generation key that does not exist.
    etcd_->put(prefix_ + "/hosts/sim-0/bundle", makeEtcdBundleRef(prefix_, 3, g1));
    EXPECT_TRUE(FleetLab::waitFor(
        [&] { return reportedError().find("does not exist") != std::string::npos; }, 20s))
        << reportedError();
    EXPECT_NE(reportedError().find("generations/3"), std::string::npos) << reportedError();

    // A reference naming a key outside <prefix>/generations/: never read.
    std::string outside = makeEtcdBundleRef(prefix_, 4, g1);
    outside.replace(outside.find(prefix_ + "/generations/4"), std::string::npos,
                    prefix_ + "/bundle\n");
    etcd_->put(prefix_ + "/hosts/sim-0/bundle", outside);
    EXPECT_TRUE(FleetLab::waitFor(
        [&] { return reportedError().find("names key") != std::string::npos; }, 20s))
        << reportedError();

    // A reference whose digest is not that of the bytes under the key (the
    // key rewritten after the reference was made).
    const std::string g5 = bundle(5, key_, 7005);
    etcd_->put(etcdGenerationKey(prefix_, 5), g5);
    etcd_->put(prefix_ + "/hosts/sim-0/bundle",
               makeEtcdBundleRef(prefix_, 5, g5 + "x"));  // a digest of other bytes
    EXPECT_TRUE(FleetLab::waitFor(
        [&] { return reportedError().find("SHA-256") != std::string::npos; }, 20s))
        << reportedError();
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(agent_->generation(), 1u) << "no forged reference changed enforcement";
    EXPECT_EQ(agent_->refusals(), 1u) << "only the resolvable forgery reached admission";

    // The controller's next generation still gets through (a reference again).
    const std::string g6 = bundle(6, key_, 7006);
    ASSERT_TRUE(dist_->push("sim-0", 6, g6));
    EXPECT_TRUE(isEtcdBundleRef(hostValue("sim-0")));
    EXPECT_TRUE(FleetLab::waitFor([&] { return agent_->generation() == 6; }, 20s))
        << agent_->lastRefusal();
}

TEST_F(EtcdReference, OldGenerationKeysArePruned) {
    std::vector<std::string> bundles;
    for (uint64_t g = 1; g <= 7; ++g) {
        bundles.push_back(bundle(g, key_, uint16_t(7000 + g)));
        ASSERT_TRUE(dist_->push("host-1", g, bundles.back()));
    }
    std::vector<std::string> keys;
    for (const auto& kv : etcd_->range(prefix_ + "/generations/", nullptr, true)) {
        keys.push_back(kv.key);
    }
    const size_t keep = controller::EtcdDistributor::kKeepGenerations;
    ASSERT_EQ(keys.size(), keep);
    for (uint64_t g = 7 - keep + 1; g <= 7; ++g) {
        EXPECT_NE(std::find(keys.begin(), keys.end(), etcdGenerationKey(prefix_, g)), keys.end())
            << g;
    }
    // A restarted controller prunes what an earlier run left.
    dist_.reset();
    dist_ = std::make_unique<controller::EtcdDistributor>(
        std::vector<std::string>{lab_->etcdEndpoint()}, prefix_, fleet_, 600s);
    const std::string g8 = bundle(8, key_, 7008);
    ASSERT_TRUE(dist_->push("host-1", 8, g8));
    EXPECT_EQ(etcd_->range(prefix_ + "/generations/", nullptr, true).size(), keep);
    EXPECT_FALSE(etcd_->get(etcdGenerationKey(prefix_, 8 - keep)).has_value());
}

}  // namespace
}  // namespace ztseg::test
