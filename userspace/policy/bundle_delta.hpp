// Delta bundles (DESIGN §6): a change ships as the edits that turn one
// bundle's bytes into the next's, so bytes on the wire grow with the change,
// not with the policy. A delta applies only on top of exactly its base (by
// SHA-256); what it produces is checked against the digest it names, so the
// result is byte for byte the full bundle the controller compiled.
//
// The unit of an edit is a top-level protobuf field of the Bundle (one
// identity, one rule, one rule source, one scalar): bundles are serialized
// deterministically and sorted, so a one-rule change touches a few records.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ztseg::policy {

// SHA-256 of `bytes`, raw (32 bytes).
std::string sha256(std::string_view bytes);

// The Bundle's top-level fields, in order, as views into `bundle`. Throws
// Error if `bundle` is not well-formed protobuf wire format.
std::vector<std::string_view> bundleRecords(std::string_view bundle);

struct DeltaLimits {
    // Beyond this many changed records a delta saves little and costs the
    // controller quadratic time: ship the full bundle.
    size_t max_changed_records = 1024;
};

// The BundleDelta bytes that turn `base` (Bundle bytes) into `next`, or
// nullopt when the two differ in more records than `limits` allows.
std::optional<std::string> makeDelta(const std::string& base, const std::string& next,
                                     const DeltaLimits& limits = {});

struct DeltaInfo {
    uint64_t base_generation = 0, generation = 0;
    std::string base_digest, result_digest;  // raw SHA-256
    size_t edits = 0, inserted_records = 0, deleted_records = 0;
};
// Reads a BundleDelta's header without applying it. Throws Error.
DeltaInfo deltaInfo(const std::string& delta);

// The Bundle bytes `delta` produces on top of `base`. Throws Error, naming
// both generations, when `base` is not the delta's base (its digest differs)
// or the result is not the bundle the delta names.
std::string applyDelta(const std::string& base, const std::string& delta);

}  // namespace ztseg::policy
