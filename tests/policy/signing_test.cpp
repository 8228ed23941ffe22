// Bundle signatures: Ed25519 over the exact bundle bytes, in an envelope;
// what verification accepts (a trusted key's valid signature, rotation with
// two keys) and refuses (tampering, no signature, unknown keys).
#include "policy/signing.hpp"

#include <gtest/gtest.h>

#include "bundle.pb.h"
#include "common/error.hpp"

namespace ztseg::policy {
namespace {

std::string bundleBytes(uint64_t generation) {
    v1::Bundle b;
    b.set_generation(generation);
    b.set_fleet("prod");
    b.set_compiler_version("test");
    return b.SerializeAsString();
}

std::string refusal(const std::string& bytes, const std::vector<Ed25519Key>& trusted) {
    try {
        verifyBundle(bytes, trusted);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(Signing, SignedBundleVerifiesAndYieldsTheExactBytes) {
    Ed25519Key k = Ed25519Key::generate();
    std::string bytes = bundleBytes(7);
    std::string env = signBundle(bytes, {k});
    EXPECT_TRUE(isSignedBundle(env));
    EXPECT_FALSE(isSignedBundle(bytes));
    VerifiedBundle v = verifyBundle(env, {k});
    EXPECT_EQ(v.bundle, bytes);
    EXPECT_EQ(v.key_id, k.keyId());
    EXPECT_EQ(claimedGeneration(env), 7u);
    EXPECT_EQ(claimedGeneration(bytes), 7u);
    EXPECT_EQ(signBundle(bytes, {k}), env) << "Ed25519 is deterministic";
}

TEST(Signing, KeysRoundTripThroughPemAndKeepTheirId) {
    Ed25519Key k = Ed25519Key::generate();
    Ed25519Key priv = Ed25519Key::fromPem(k.privatePem(), "priv");
    Ed25519Key pub = Ed25519Key::fromPem(k.publicPem(), "pub");
    EXPECT_TRUE(priv.hasPrivate());
    EXPECT_FALSE(pub.hasPrivate());
    EXPECT_EQ(priv.keyId(), k.keyId());
    EXPECT_EQ(pub.keyId(), k.keyId());
    EXPECT_EQ(k.keyId().rfind("ed25519:", 0), 0u);
    EXPECT_EQ(k.keyId().size(), 8u + 16u);
    EXPECT_THROW(pub.sign("x"), Error) << "a public key cannot sign";
    EXPECT_THROW(pub.privatePem(), Error);
    EXPECT_EQ(verifyBundle(signBundle(bundleBytes(1), {priv}), {pub}).key_id, k.keyId());
}

TEST(Signing, NonEd25519AndGarbageKeysAreRefusedWithTheFileName) {
    try {
        Ed25519Key::fromPem("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
                            "/etc/ztseg/k.pub");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/etc/ztseg/k.pub"), std::string::npos) << e.what();
    }
}

TEST(Signing, TamperedBundleOrSignatureIsRefused) {
    Ed25519Key k = Ed25519Key::generate();
    v1::SignedBundle env;
    ASSERT_TRUE(env.ParseFromString(signBundle(bundleBytes(7), {k})));
    v1::SignedBundle forged = env;
    forged.set_bundle(bundleBytes(8));  // a newer generation under the old signature
    EXPECT_NE(refusal(forged.SerializeAsString(), {k}).find("does not verify"), std::string::npos);
    v1::SignedBundle bad_sig = env;
    bad_sig.mutable_signatures(0)->mutable_sig()->at(5) ^= 1;
    EXPECT_NE(refusal(bad_sig.SerializeAsString(), {k}).find("does not verify"), std::string::npos);
}

TEST(Signing, UnsignedBundleAndUnknownKeysAreRefused) {
    Ed25519Key trusted = Ed25519Key::generate(), stranger = Ed25519Key::generate();
    EXPECT_NE(refusal(bundleBytes(1), {trusted}).find("not signed"), std::string::npos);
    std::string r = refusal(signBundle(bundleBytes(1), {stranger}), {trusted});
    EXPECT_NE(r.find("unknown key(s) " + stranger.keyId()), std::string::npos) << r;
    EXPECT_NE(r.find("trusted: " + trusted.keyId()), std::string::npos) << r;
    EXPECT_NE(refusal(signBundle(bundleBytes(1), {stranger}), {}).find("trusted: none"),
              std::string::npos);
}

TEST(Signing, RotationWithTwoTrustedKeys) {
    Ed25519Key old_key = Ed25519Key::generate(), new_key = Ed25519Key::generate();
    std::vector<Ed25519Key> trusted{old_key, new_key};
    EXPECT_EQ(verifyBundle(signBundle(bundleBytes(1), {old_key}), trusted).key_id, old_key.keyId());
    EXPECT_EQ(verifyBundle(signBundle(bundleBytes(2), {new_key}), trusted).key_id, new_key.keyId());
    // During rotation the controller signs with both; an agent that only
    // knows the new key ignores the old key's signature.
    EXPECT_EQ(verifyBundle(signBundle(bundleBytes(3), {old_key, new_key}), {new_key}).key_id,
              new_key.keyId());
}

TEST(Signing, EnvelopeThatDoesNotParseIsAnError) {
    EXPECT_THROW(openEnvelope(std::string("\x0a\xff\xff\xff", 4)), Error);
    EXPECT_EQ(openEnvelope(bundleBytes(3)).signatures.size(), 0u);
}

}  // namespace
}  // namespace ztseg::policy
