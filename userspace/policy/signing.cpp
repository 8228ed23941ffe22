#include "policy/signing.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <filesystem>

#include "bundle.pb.h"
#include "common/error.hpp"
#include "common/file.hpp"
#include "policy/bundle.hpp"
#include "policy/bundle_delta.hpp"

namespace ztseg::policy {
namespace {

std::string opensslError() {
    unsigned long e = ERR_get_error();
    if (e == 0) {
        return "unknown OpenSSL error";
    }
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return buf;
}

std::string hex(const unsigned char* p, size_t n) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < n; ++i) {
        out += kDigits[p[i] >> 4];
        out += kDigits[p[i] & 15];
    }
    return out;
}

struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

struct MdCtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

std::string bioText(BIO* b) {
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    return std::string(data, size_t(n));
}

std::string signedMessage(const std::string& bundle_bytes) {
    return kSignatureContext + bundle_bytes;
}

}  // namespace

Ed25519Key::Ed25519Key(evp_pkey_st* pkey, bool has_private)
    : pkey_(pkey, [](evp_pkey_st* p) { EVP_PKEY_free(p); }), has_private_(has_private) {
    unsigned char raw[32];
    size_t len = sizeof(raw);
    if (EVP_PKEY_get_raw_public_key(pkey_.get(), raw, &len) != 1 || len != sizeof(raw)) {
        throw Error("Ed25519 key: cannot read the public key: " + opensslError());
    }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(raw, len, digest);
    key_id_ = "ed25519:" + hex(digest, 8);
}

Ed25519Key Ed25519Key::generate() {
    EVP_PKEY* p = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    if (p == nullptr) {
        throw Error("generate Ed25519 key: " + opensslError());
    }
    return Ed25519Key(p, true);
}

Ed25519Key Ed25519Key::fromPem(const std::string& pem, const std::string& what) {
    bool is_private = pem.find("PRIVATE KEY-----") != std::string::npos;
    BioPtr bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
    EVP_PKEY* p = is_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                             : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
    if (p == nullptr) {
        throw Error("key " + what + ": not a PEM " + (is_private ? "private" : "public") +
                    " key (" + opensslError() + ")");
    }
    if (EVP_PKEY_get_id(p) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(p);
        throw Error("key " + what + ": not an Ed25519 key (make one with `ztsegctl keygen`)");
    }
    return Ed25519Key(p, is_private);
}

Ed25519Key Ed25519Key::load(const std::string& path) {
    return fromPem(readFile(path, "key"), path);
}

Ed25519Key Ed25519Key::loadTrusted(const std::string& path) {
    std::string pem = readFile(path, "key");
    if (pem.find("PRIVATE KEY-----") != std::string::npos) {
        std::string pub = std::filesystem::path(path).replace_extension(".pub").string();
        throw Error(path +
                    ": is a private key; a trusted key must be the public key (ztsegctl "
                    "keygen writes " +
                    pub + ")");
    }
    return fromPem(pem, path);
}

std::string Ed25519Key::privatePem() const {
    if (!has_private_) {
        throw Error("key " + key_id_ + " is a public key only");
    }
    BioPtr b(BIO_new(BIO_s_mem()));
    if (PEM_write_bio_PrivateKey(b.get(), pkey_.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
        1) {
        throw Error("write private key " + key_id_ + ": " + opensslError());
    }
    return bioText(b.get());
}

std::string Ed25519Key::publicPem() const {
    BioPtr b(BIO_new(BIO_s_mem()));
    if (PEM_write_bio_PUBKEY(b.get(), pkey_.get()) != 1) {
        throw Error("write public key " + key_id_ + ": " + opensslError());
    }
    return bioText(b.get());
}

std::string Ed25519Key::sign(const std::string& message) const {
    if (!has_private_) {
        throw Error("sign with " + key_id_ + ": public key only, the private key is needed");
    }
    MdCtxPtr ctx(EVP_MD_CTX_new());
    std::string sig(64, '\0');
    size_t len = sig.size();
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) != 1) {
        throw Error("sign with " + key_id_ + ": " + opensslError());
    }
    sig.resize(len);
    return sig;
}

bool Ed25519Key::verify(const std::string& message, const std::string& signature) const {
    MdCtxPtr ctx(EVP_MD_CTX_new());
    bool ok =
        ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey_.get()) == 1 &&
        EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                         signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                         message.size()) == 1;
    ERR_clear_error();
    return ok;
}

bool isSignedBundle(const std::string& bytes) {
    // SignedBundle field 1 (bytes) = tag 0x0a; a Bundle starts with field 1
    // (generation, varint) = tag 0x08.
    return !bytes.empty() && bytes[0] == '\x0a';
}

std::string signBundle(const std::string& bundle_bytes, const std::vector<Ed25519Key>& keys) {
    if (keys.empty()) {
        throw Error("sign bundle: no signing key");
    }
    v1::SignedBundle env;
    env.set_bundle(bundle_bytes);
    std::string msg = signedMessage(bundle_bytes);
    for (const auto& k : keys) {
        v1::Signature* s = env.add_signatures();
        s->set_key_id(k.keyId());
        s->set_sig(k.sign(msg));
    }
    return deterministicBytes(env);
}

Envelope openEnvelope(const std::string& bytes) {
    Envelope out;
    if (!isSignedBundle(bytes)) {
        out.bundle = bytes;
        return out;
    }
    v1::SignedBundle env;
    if (!env.ParseFromString(bytes) || env.bundle().empty()) {
        throw Error("signed bundle: not a valid envelope (protobuf parse failed, " +
                    std::to_string(bytes.size()) + " bytes)");
    }
    out.bundle = env.bundle();
    for (const auto& s : env.signatures()) {
        out.signatures.push_back({s.key_id(), s.sig()});
    }
    return out;
}

uint64_t claimedGeneration(const std::string& bytes) {
    try {
        if (isSignedDelta(bytes)) {
            return deltaInfo(openDelta(bytes).bundle).generation;
        }
        v1::Bundle b;
        return b.ParseFromString(openEnvelope(bytes).bundle) ? b.generation() : 0;
    } catch (const Error&) {
        return 0;
    }
}

VerifiedBundle verifyBundle(const std::string& bytes, const std::vector<Ed25519Key>& trusted) {
    Envelope env = openEnvelope(bytes);
    if (env.signatures.empty()) {
        throw Error("bundle is not signed; this host only accepts bundles signed by a trusted key");
    }
    std::string msg = signedMessage(env.bundle);
    std::string vouched, unknown;
    for (const auto& s : env.signatures) {
        const Ed25519Key* key = nullptr;
        for (const auto& k : trusted) {
            if (k.keyId() == s.key_id) {
                key = &k;
            }
        }
        if (key == nullptr) {
            unknown += (unknown.empty() ? "" : ", ") + s.key_id;
            continue;
        }
        if (!key->verify(msg, s.sig)) {
            throw Error("bundle signature by " + s.key_id +
                        " does not verify (tampered or corrupted bundle)");
        }
        vouched = s.key_id;
    }
    if (vouched.empty()) {
        std::string known;
        for (const auto& k : trusted) {
            known += (known.empty() ? "" : ", ") + k.keyId();
        }
        throw Error("bundle is signed by unknown key(s) " + unknown +
                    " (trusted: " + (known.empty() ? "none" : known) + ")");
    }
    return {std::move(env.bundle), vouched};
}

namespace {

template <typename Repeated>
void addSignatures(Repeated* out, const std::vector<Envelope::Sig>& sigs) {
    for (const auto& s : sigs) {
        v1::Signature* o = out->Add();
        o->set_key_id(s.key_id);
        o->set_sig(s.sig);
    }
}

}  // namespace

bool isSignedDelta(const std::string& bytes) {
    return !bytes.empty() && bytes[0] == '\x7a';
}

std::string deltaEnvelope(const std::string& delta, const std::string& signed_bundle) {
    v1::SignedDelta env;
    env.set_delta(delta);
    addSignatures(env.mutable_bundle_signatures(), openEnvelope(signed_bundle).signatures);
    return deterministicBytes(env);
}

Envelope openDelta(const std::string& signed_delta) {
    v1::SignedDelta env;
    if (!isSignedDelta(signed_delta) || !env.ParseFromString(signed_delta) || env.delta().empty()) {
        throw Error("delta: not a valid envelope (" + std::to_string(signed_delta.size()) +
                    " bytes)");
    }
    Envelope out;
    out.bundle = env.delta();
    for (const auto& s : env.bundle_signatures()) {
        out.signatures.push_back({s.key_id(), s.sig()});
    }
    return out;
}

std::string rebuiltEnvelope(const Envelope& opened) {
    if (opened.signatures.empty()) {
        return opened.bundle;
    }
    v1::SignedBundle env;
    env.set_bundle(opened.bundle);
    addSignatures(env.mutable_signatures(), opened.signatures);
    return deterministicBytes(env);
}

}  // namespace ztseg::policy
