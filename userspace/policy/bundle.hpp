// CompiledPolicy <-> the protobuf bundle (userspace/proto/bundle.proto).
// Reading validates everything a host relies on; a bad bundle is an Error
// that names what is wrong and changes nothing.
#pragma once

#include <string>

#include "policy/compiler.hpp"

namespace google::protobuf {
class MessageLite;
}

namespace ztseg::policy {

// A message's bytes with deterministic serialization (map order fixed).
std::string deterministicBytes(const google::protobuf::MessageLite& m);

struct BundleMeta {
    std::string fleet;
    int64_t not_after_unix = 0;
    std::string compiler_version;  // read from a bundle; written as this build's
};

// Deterministic bytes: the same CompiledPolicy always gives the same output.
std::string serializeBundle(const CompiledPolicy& cp, const BundleMeta& meta = {});
// Throws Error (e.g. "bundle: rule 12 names unknown local identity 4711").
CompiledPolicy parseBundle(const std::string& bytes, BundleMeta* meta = nullptr);

}  // namespace ztseg::policy
