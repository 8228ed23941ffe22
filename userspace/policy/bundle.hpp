// CompiledPolicy <-> the protobuf bundle (userspace/proto/bundle.proto).
// Reading validates everything a host relies on; a bad bundle is an Error
// that names what is wrong and changes nothing.
#pragma once

#include <string>

#include "policy/compiler.hpp"

namespace ztseg::policy {

struct BundleMeta {
    std::string fleet;
    int64_t not_after_unix = 0;
};

// Deterministic bytes: the same CompiledPolicy always gives the same output.
std::string serializeBundle(const CompiledPolicy& cp, const BundleMeta& meta = {});
// Throws Error (e.g. "bundle: rule 12 names unknown local identity 4711").
CompiledPolicy parseBundle(const std::string& bytes, BundleMeta* meta = nullptr);

}  // namespace ztseg::policy
