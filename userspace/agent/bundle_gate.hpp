// Admission of a policy bundle before anything is written to the datapath:
// well-formed, for this fleet, not expired, strictly newer than every
// generation this host ever applied. (Signature checks join here with the
// controller.) A refused bundle changes nothing; the Error says why.
#pragma once

#include <cstdint>
#include <string>

#include "agent/generation_store.hpp"
#include "policy/compiler.hpp"

namespace ztseg::agent {

struct AdmissionPolicy {
    std::string fleet;     // empty: any fleet
    int64_t now_unix = 0;  // for not_after
};

policy::CompiledPolicy admitBundle(const std::string& bytes, const AdmissionPolicy& rules,
                                   const GenerationStore& store);

}  // namespace ztseg::agent
