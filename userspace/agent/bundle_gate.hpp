// Admission of a policy bundle before anything is written to the datapath:
// signed by a trusted key (when any is configured), well-formed, for this
// fleet, not expired, strictly newer than every generation this host ever
// applied. A refused bundle changes nothing; the Error says why.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "policy/compiler.hpp"
#include "policy/signing.hpp"
#include "shared/generation_store.hpp"

namespace ztseg::agent {

struct AdmissionPolicy {
    std::string fleet;     // empty: any fleet
    int64_t now_unix = 0;  // for not_after
    // Empty: standalone mode, signatures are not checked (an envelope is
    // unwrapped, a plain bundle accepted). Otherwise a valid signature by one
    // of these keys is required.
    std::vector<policy::Ed25519Key> trusted_keys;
};

// `bytes`: a SignedBundle envelope, a plain Bundle, or a SignedDelta
// (policy/bundle_delta.hpp) against the bundle the store holds as current:
// the delta applies only on top of exactly its base, and the bundle it
// rebuilds is admitted like a full one (its signatures travel in the delta).
// `signer` (optional) receives the key id that vouched ("" in standalone
// mode); `record` (optional) what to keep in the state dir: the admitted
// envelope (for a delta, the rebuilt bundle's).
policy::CompiledPolicy admitBundle(const std::string& bytes, const AdmissionPolicy& rules,
                                   const GenerationStore& store, std::string* signer = nullptr,
                                   std::string* record = nullptr);

}  // namespace ztseg::agent
