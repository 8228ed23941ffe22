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

// `bytes`: a SignedBundle envelope or a plain Bundle. `signer` (optional)
// receives the key id that vouched for it ("" in standalone mode).
policy::CompiledPolicy admitBundle(const std::string& bytes, const AdmissionPolicy& rules,
                                   const GenerationStore& store, std::string* signer = nullptr);

}  // namespace ztseg::agent
