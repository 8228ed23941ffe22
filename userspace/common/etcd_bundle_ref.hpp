// etcd mode: a host's key (<prefix>/hosts/<host>/bundle) holds a delta, or a
// reference to the generation's signed bundle, stored once for the whole
// fleet under <prefix>/generations/<generation>, instead of a copy of it.
//
// A reference is text after a NUL byte:
//   "\0ztseg-bundle-ref/1\ngeneration=<g>\nsha256=<64 hex>\nkey=<key>\n"
// It cannot be mistaken for a bundle or a delta: those are protobuf messages
// (a SignedBundle starts 0x0a, a plain Bundle 0x08, a signed delta 0x7a),
// and protobuf has no field number 0, so no message starts with a NUL byte.
//
// A reference is untrusted, like everything read from etcd: the agent reads
// the key it names (only ever <prefix>/generations/<g>), checks the value's
// SHA-256 and generation against it, and admits the bytes through the same
// admission as any bundle (signatures, fleet, expiry, rollback).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ztseg {

// <prefix>/generations/<generation>
std::string etcdGenerationKey(const std::string& prefix, uint64_t generation);
// SHA-256 of `bytes`, 64 lowercase hex digits.
std::string sha256Hex(std::string_view bytes);

struct EtcdBundleRef {
    uint64_t generation = 0;
    std::string sha256_hex;  // of the signed bundle the key should hold
    std::string key;
};

// The reference to `signed_bundle` of `generation`, stored at etcdGenerationKey(prefix,
// generation).
std::string makeEtcdBundleRef(const std::string& prefix, uint64_t generation,
                              std::string_view signed_bundle);
// True when `value` is (meant to be) a reference: it starts with the magic.
bool isEtcdBundleRef(std::string_view value);
// Parses a reference strictly. Throws Error saying what is wrong with it.
EtcdBundleRef parseEtcdBundleRef(std::string_view value);

}  // namespace ztseg
