// Ed25519 signatures over policy bundles (OpenSSL). The controller signs the
// exact serialized Bundle bytes and ships them in a SignedBundle envelope;
// agents verify against the public keys they trust before parsing anything.
//
// What is signed: kSignatureContext followed by the Bundle bytes. The context
// string keeps a bundle signature from ever being valid for anything else the
// same key might sign (domain separation), and vice versa.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace ztseg::policy {

inline constexpr const char* kSignatureContext = "ztseg.v1.Bundle\n";

// One Ed25519 key: private (can sign) or public only (can verify).
class Ed25519Key {
  public:
    static Ed25519Key generate();
    // PEM: PKCS#8 private key or SubjectPublicKeyInfo public key (what
    // `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` write).
    // Throws Error naming `what` (usually the file) and the reason.
    static Ed25519Key fromPem(const std::string& pem, const std::string& what);
    static Ed25519Key load(const std::string& path);
    // A key to trust (verify with): the public key only. A private key is
    // refused, naming the .pub file to use instead: it verifies just as
    // well, which hides that a signing key was copied where it must not be.
    static Ed25519Key loadTrusted(const std::string& path);

    bool hasPrivate() const { return has_private_; }
    std::string privatePem() const;  // throws Error for a public-only key
    std::string publicPem() const;
    // "ed25519:" + the first 16 hex digits of SHA-256 over the raw public key.
    const std::string& keyId() const { return key_id_; }

    std::string sign(const std::string& message) const;  // 64 bytes
    bool verify(const std::string& message, const std::string& signature) const;

  private:
    Ed25519Key(evp_pkey_st* pkey, bool has_private);
    std::shared_ptr<evp_pkey_st> pkey_;  // immutable once made: shared by copies
    bool has_private_ = false;
    std::string key_id_;
};

// True when `bytes` is a SignedBundle envelope rather than a plain Bundle.
bool isSignedBundle(const std::string& bytes);

// The envelope: the bundle bytes signed by every key in `keys` (all private).
std::string signBundle(const std::string& bundle_bytes, const std::vector<Ed25519Key>& keys);

struct Envelope {
    std::string bundle;  // the inner Bundle bytes
    struct Sig {
        std::string key_id, sig;
    };
    std::vector<Sig> signatures;  // empty for a plain bundle
};
// Unwraps without verifying (a plain bundle comes back with no signatures).
// Throws Error if an envelope does not parse.
Envelope openEnvelope(const std::string& bytes);

// The generation a bundle, envelope or signed delta claims, NOT verified: only for ordering
// candidates (etcd mode) before admission. 0 if it does not parse.
uint64_t claimedGeneration(const std::string& bytes);

struct VerifiedBundle {
    std::string bundle;  // the inner Bundle bytes
    std::string key_id;  // the trusted key whose signature verified
};
// Admission of the envelope. Refused (Error with the reason): not an
// envelope (unsigned), no signature by any trusted key (unknown keys are
// named), or any signature by a trusted key that does not verify (tampered).
// A signature by an unknown key next to a valid trusted one is ignored, so a
// controller may sign with an old and a new key during rotation.
VerifiedBundle verifyBundle(const std::string& bytes, const std::vector<Ed25519Key>& trusted);

// ---- delta envelopes (policy/bundle_delta.hpp) ----

// True when `bytes` is a SignedDelta (first byte 0x7a).
bool isSignedDelta(const std::string& bytes);
// The envelope of `delta`, a BundleDelta whose result is the bundle inside
// `signed_bundle`: it carries that bundle's signatures (none for a plain one).
std::string deltaEnvelope(const std::string& delta, const std::string& signed_bundle);
// Unwraps a SignedDelta (nothing is verified: the signatures are the rebuilt
// bundle's). Throws Error if it does not parse.
Envelope openDelta(const std::string& signed_delta);
// The envelope of a bundle rebuilt from `opened` (its `bundle`: the rebuilt
// bytes): a SignedBundle with the delta's signatures, or the plain bundle.
std::string rebuiltEnvelope(const Envelope& opened);

}  // namespace ztseg::policy
