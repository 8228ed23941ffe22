// Delta bundles: a delta rebuilds the next bundle byte for byte, only on
// top of exactly its base, stays small for a small change, and its signature
// is never mistaken for a bundle's (or the reverse).
#include "policy/bundle_delta.hpp"

#include <gtest/gtest.h>

#include <random>

#include "bundle.pb.h"
#include "common/error.hpp"
#include "policy/bundle.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"
#include "policy/signing.hpp"

namespace ztseg::policy {
namespace {

// A policy of `n` workloads, each reachable on its own port by the next.
std::string policyYaml(int n, int changed_port) {
    std::string y = "workloads:\n";
    for (int i = 0; i < n; ++i) {
        y += "  - name: w" + std::to_string(i) + "\n    labels: {app: w" + std::to_string(i) +
             "}\n    cgroup: w" + std::to_string(i) + "\n    addresses: [10.1." +
             std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + "]\n";
    }
    y += "policies:\n";
    for (int i = 0; i < n; ++i) {
        int port = i == n / 2 ? changed_port : 1000 + i;
        y += "  - name: p" + std::to_string(i) + "\n    selector: {matchLabels: {app: w" +
             std::to_string(i) +
             "}}\n    ingress:\n      - from: [{selector: {matchLabels: "
             "{app: w" +
             std::to_string((i + 1) % n) + "}}}]\n        ports: [{port: " + std::to_string(port) +
             ", protocol: tcp}]\n";
    }
    return y;
}

std::string compiled(int n, int changed_port, uint64_t generation) {
    Diagnostics d;
    PolicySet ps = parsePolicies({{"fleet.yaml", policyYaml(n, changed_port)}}, d);
    EXPECT_FALSE(d.hasErrors()) << d.str();
    return serializeBundle(compile(ps, generation, d));
}

std::string refusal(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(BundleDelta, OneRuleChangeRebuildsTheNextBundleExactlyAndIsSmall) {
    std::string base = compiled(500, 1250, 7);
    std::string next = compiled(500, 9999, 8);
    auto delta = makeDelta(base, next);
    ASSERT_TRUE(delta.has_value());
    EXPECT_EQ(applyDelta(base, *delta), next);
    DeltaInfo info = deltaInfo(*delta);
    EXPECT_EQ(info.base_generation, 7u);
    EXPECT_EQ(info.generation, 8u);
    // The generation and the one rule's entry change (a port is no
    // fingerprint input of other rules): a handful of records.
    EXPECT_LE(info.inserted_records, 4u);
    EXPECT_LT(delta->size() * 50, next.size()) << delta->size() << " of " << next.size();
    EXPECT_EQ(parseBundle(applyDelta(base, *delta)).generation, 8u);
}

TEST(BundleDelta, AppliesOnlyOnTopOfExactlyItsBase) {
    std::string base = compiled(50, 1025, 7);
    std::string next = compiled(50, 9999, 8);
    std::string other = compiled(50, 4444, 7);  // same generation, other content
    std::string delta = makeDelta(base, next).value();
    std::string why = refusal([&] { applyDelta(other, delta); });
    EXPECT_NE(why.find("delta 7 -> 8: this host's bundle is not the delta's base"),
              std::string::npos)
        << why;
}

TEST(BundleDelta, TamperedDeltaIsRefusedByTheResultDigest) {
    std::string base = compiled(50, 1025, 7);
    std::string next = compiled(50, 9999, 8);
    v1::BundleDelta d;
    ASSERT_TRUE(d.ParseFromString(makeDelta(base, next).value()));
    ASSERT_GT(d.edits_size(), 0);
    bool changed = false;
    for (auto& e : *d.mutable_edits()) {
        for (auto& r : *e.mutable_insert()) {
            if (!changed && r.size() > 4) {
                r.back() ^= 1;  // one bit of one inserted record
                changed = true;
            }
        }
    }
    ASSERT_TRUE(changed);
    std::string why = refusal([&] { applyDelta(base, deterministicBytes(d)); });
    EXPECT_NE(why.find("does not match the digest the delta names"), std::string::npos) << why;
}

TEST(BundleDelta, EditsOutOfOrderOrRangeAreRefused) {
    std::string base = compiled(20, 1025, 7);
    std::string next = compiled(20, 9999, 8);
    v1::BundleDelta d;
    ASSERT_TRUE(d.ParseFromString(makeDelta(base, next).value()));
    d.mutable_edits(0)->set_base_index(1u << 30);
    std::string why = refusal([&] { applyDelta(base, deterministicBytes(d)); });
    EXPECT_NE(why.find("out of order or out of range"), std::string::npos) << why;
    EXPECT_NE(refusal([&] { applyDelta(base, "not a delta"); }), "");
}

// Random record sequences, random edits: the script always rebuilds `next`
// and is never longer than the number of records changed.
TEST(BundleDelta, RandomEditsRoundTrip) {
    std::mt19937 rng(42);
    for (int round = 0; round < 200; ++round) {
        v1::Bundle a;
        a.set_generation(1);
        a.set_compiler_version("t");
        int n = int(rng() % 60);
        for (int i = 0; i < n; ++i) {
            auto* r = a.add_rules();
            r->set_local(256 + uint32_t(rng() % 8));
            r->set_port_first(uint32_t(rng() % 5));
            r->set_rule_id(uint32_t(i));
        }
        v1::Bundle b = a;
        b.set_generation(2);
        b.clear_rules();
        int changes = 0;
        for (const auto& r : a.rules()) {
            switch (rng() % 6) {
                case 0:  // dropped
                    ++changes;
                    break;
                case 1: {  // changed
                    auto* c = b.add_rules();
                    *c = r;
                    c->set_port_last(7);
                    changes += 2;
                    break;
                }
                case 2: {  // kept, and one inserted after it
                    *b.add_rules() = r;
                    b.add_rules()->set_rule_id(1000 + uint32_t(rng() % 1000));
                    ++changes;
                    break;
                }
                default:
                    *b.add_rules() = r;
            }
        }
        std::string base = deterministicBytes(a), next = deterministicBytes(b);
        auto delta = makeDelta(base, next);
        ASSERT_TRUE(delta.has_value()) << "round " << round;
        EXPECT_EQ(applyDelta(base, *delta), next) << "round " << round;
        DeltaInfo info = deltaInfo(*delta);
        // +2: the generation record is replaced too.
        EXPECT_LE(info.inserted_records + info.deleted_records, size_t(changes) + 2)
            << "round " << round;
    }
}

TEST(BundleDelta, TooManyChangesShipTheFullBundle) {
    std::string base = compiled(40, 1025, 7);
    std::string next = compiled(40, 9999, 8);
    EXPECT_FALSE(makeDelta(base, next, DeltaLimits{.max_changed_records = 1}).has_value());
    EXPECT_TRUE(makeDelta(base, next).has_value());
}

// A delta carries the signatures of the bundle it rebuilds: verified on the
// rebuilt bytes, exactly as for a full bundle.
TEST(BundleDelta, EnvelopeCarriesTheRebuiltBundlesSignatures) {
    Ed25519Key k = Ed25519Key::generate(), other = Ed25519Key::generate();
    std::string base = compiled(20, 1025, 7);
    std::string next = compiled(20, 9999, 8);
    std::string delta = makeDelta(base, next).value();
    std::string signed_next = signBundle(next, {k});
    std::string env = deltaEnvelope(delta, signed_next);
    EXPECT_TRUE(isSignedDelta(env));
    EXPECT_FALSE(isSignedBundle(env));
    EXPECT_FALSE(isSignedDelta(signed_next));
    EXPECT_FALSE(isSignedDelta(next));
    EXPECT_EQ(claimedGeneration(env), 8u);

    Envelope opened = openDelta(env);
    EXPECT_EQ(opened.bundle, delta);
    opened.bundle = applyDelta(base, opened.bundle);
    std::string rebuilt = rebuiltEnvelope(opened);
    EXPECT_EQ(rebuilt, signed_next) << "the same envelope as the full bundle, byte for byte";
    EXPECT_EQ(verifyBundle(rebuilt, {k}).bundle, next);
    EXPECT_NE(refusal([&] { verifyBundle(rebuilt, {other}); }).find("unknown key"),
              std::string::npos);

    // The signatures do not transfer to another result: a delta to other
    // bytes with the same signatures rebuilds a bundle that does not verify.
    std::string forged_next = compiled(20, 6666, 8);
    Envelope forged = openDelta(deltaEnvelope(makeDelta(base, forged_next).value(), signed_next));
    forged.bundle = applyDelta(base, forged.bundle);
    EXPECT_NE(refusal([&] { verifyBundle(rebuiltEnvelope(forged), {k}); }).find("does not verify"),
              std::string::npos);

    // Unsigned bundle, unsigned delta: a plain bundle comes out.
    Envelope plain = openDelta(deltaEnvelope(delta, next));
    EXPECT_TRUE(plain.signatures.empty());
    plain.bundle = applyDelta(base, plain.bundle);
    EXPECT_EQ(rebuiltEnvelope(plain), next);
    EXPECT_NE(refusal([&] { openDelta("\x7a garbage"); }), "");
}

}  // namespace
}  // namespace ztseg::policy
