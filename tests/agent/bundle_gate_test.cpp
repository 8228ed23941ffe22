// Bundle admission: only well-formed, in-fleet, unexpired, newer bundles pass.
#include "agent/bundle_gate.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/error.hpp"
#include "policy/bundle.hpp"
#include "policy/bundle_delta.hpp"
#include "policy/parser.hpp"
#include "policy/signing.hpp"

namespace ztseg::agent {
namespace {

class BundleGate : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("ztseg-gate-" + std::to_string(getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        store_.emplace(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::string bundle(uint64_t generation, const std::string& fleet = "prod",
                       int64_t not_after = 0) {
        policy::Diagnostics d;
        auto ps = policy::parsePolicies({{"p.yaml", R"(
workloads:
  - name: db
    labels: {app: db}
    addresses: [10.0.0.1]
policies:
  - name: db
    selector: {matchLabels: {app: db}}
)"}},
                                        d);
        return policy::serializeBundle(policy::compile(ps, generation, d), {fleet, not_after});
    }
    std::string refusal(const std::string& bytes, AdmissionPolicy rules) {
        try {
            admitBundle(bytes, rules, *store_);
        } catch (const Error& e) {
            return e.what();
        }
        return "";
    }

    std::filesystem::path dir_;
    std::optional<GenerationStore> store_;
};

TEST_F(BundleGate, NewerBundleForThisFleetIsAdmitted) {
    store_->recordApplied(4, "old");
    auto cp = admitBundle(bundle(5), {"prod", 1000}, *store_);
    EXPECT_EQ(cp.generation, 5u);
    EXPECT_EQ(cp.workloads.size(), 1u);
}

TEST_F(BundleGate, OlderOrReplayedGenerationIsRefused) {
    store_->recordApplied(5, "current");
    EXPECT_EQ(refusal(bundle(5), {"prod", 0}),
              "generation 5 is not newer than 5, the highest this host applied (rollback "
              "refused)");
    EXPECT_NE(refusal(bundle(3), {"prod", 0}).find("rollback refused"), std::string::npos);
}

TEST_F(BundleGate, BundleForAnotherFleetIsRefused) {
    EXPECT_EQ(refusal(bundle(1, "staging"), {"prod", 0}),
              "bundle generation 1 is for fleet 'staging', this host belongs to 'prod'");
}

TEST_F(BundleGate, ExpiredBundleIsRefused) {
    EXPECT_EQ(refusal(bundle(1, "prod", 1000), {"prod", 2000}),
              "bundle generation 1 expired at unix 1000 (freeze protection)");
    EXPECT_EQ(refusal(bundle(1, "prod", 3000), {"prod", 2000}), "");
}

TEST_F(BundleGate, GarbageAndTruncatedBundlesAreRefused) {
    std::string good = bundle(1);
    EXPECT_NE(refusal("\xff\xff\xff garbage", {"", 0}).find("bundle:"), std::string::npos);
    EXPECT_NE(refusal(good.substr(0, good.size() / 2), {"", 0}).find("bundle:"), std::string::npos);
    EXPECT_EQ(store_->highest(), 0u) << "a refused bundle changes nothing";
}

TEST_F(BundleGate, WithTrustedKeysOnlyValidSignaturesPass) {
    policy::Ed25519Key key = policy::Ed25519Key::generate();
    AdmissionPolicy rules{"prod", 0, {key}};
    std::string signer;
    auto cp = admitBundle(policy::signBundle(bundle(2), {key}), rules, *store_, &signer);
    EXPECT_EQ(cp.generation, 2u);
    EXPECT_EQ(signer, key.keyId());
    EXPECT_NE(refusal(bundle(3), rules).find("not signed"), std::string::npos);
    EXPECT_NE(refusal(policy::signBundle(bundle(3), {policy::Ed25519Key::generate()}), rules)
                  .find("unknown key"),
              std::string::npos);
    // The signature comes first, then the usual checks on the inner bundle.
    EXPECT_NE(refusal(policy::signBundle(bundle(3, "staging"), {key}), rules).find("fleet"),
              std::string::npos);
    store_->recordApplied(5, "x");
    EXPECT_NE(refusal(policy::signBundle(bundle(4), {key}), rules).find("rollback refused"),
              std::string::npos);
}

TEST_F(BundleGate, StandaloneModeAcceptsPlainAndSignedBundles) {
    AdmissionPolicy rules{"prod", 0, {}};
    EXPECT_EQ(admitBundle(bundle(1), rules, *store_).generation, 1u);
    std::string signer = "unset";
    auto cp = admitBundle(policy::signBundle(bundle(2), {policy::Ed25519Key::generate()}), rules,
                          *store_, &signer);
    EXPECT_EQ(cp.generation, 2u);
    EXPECT_EQ(signer, "") << "signatures are not checked without trusted keys";
}

// A delta meets the bundle the store holds: applied only on top of exactly
// it, and the bundle it rebuilds admitted like a full one, under its own
// signatures; what is recorded is that bundle's envelope, as if sent whole.
TEST_F(BundleGate, DeltaOnTopOfTheCurrentBundleIsAdmittedLikeTheFullBundle) {
    auto key = policy::Ed25519Key::generate();
    AdmissionPolicy rules{"prod", 1000, {key}};
    std::string base = bundle(5), next = bundle(6);
    store_->recordApplied(5, policy::signBundle(base, {key}));
    std::string signed_next = policy::signBundle(next, {key});
    std::string delta = policy::deltaEnvelope(policy::makeDelta(base, next).value(), signed_next);
    std::string signer, record;
    auto cp = admitBundle(delta, rules, *store_, &signer, &record);
    EXPECT_EQ(cp.generation, 6u);
    EXPECT_EQ(signer, key.keyId());
    EXPECT_EQ(record, signed_next);

    // The bundle's signatures are required as for a full bundle.
    EXPECT_NE(refusal(policy::deltaEnvelope(policy::makeDelta(base, next).value(), next), rules)
                  .find("bundle is not signed"),
              std::string::npos);
    // On top of another bundle than its base: refused, the full bundle is needed.
    store_->recordApplied(5, policy::signBundle(bundle(5, "prod", 77), {key}));
    EXPECT_NE(refusal(delta, rules).find("not the delta's base"), std::string::npos)
        << refusal(delta, rules);
}

TEST_F(BundleGate, DeltaWithoutABaseOrForAnotherFleetIsRefused) {
    std::string base = bundle(5, "staging"), next = bundle(6, "staging");
    std::string delta = policy::deltaEnvelope(policy::makeDelta(base, next).value(), next);
    EXPECT_NE(refusal(delta, {"prod", 1000}).find("holds no bundle"), std::string::npos);
    store_->recordApplied(5, base);
    EXPECT_NE(refusal(delta, {"prod", 1000}).find("is for fleet 'staging'"), std::string::npos)
        << refusal(delta, {"prod", 1000});
    EXPECT_EQ(admitBundle(delta, {"staging", 1000}, *store_).generation, 6u);
}

}  // namespace
}  // namespace ztseg::agent
