#include "agent/bundle_gate.hpp"

#include <optional>

#include "common/error.hpp"
#include "policy/bundle.hpp"
#include "policy/bundle_delta.hpp"

namespace ztseg::agent {

policy::CompiledPolicy admitBundle(const std::string& bytes, const AdmissionPolicy& rules,
                                   const GenerationStore& store, std::string* signer,
                                   std::string* record) {
    if (policy::isSignedDelta(bytes)) {
        // Rebuild the bundle on top of exactly the one in force, then admit
        // it like a full one: its own signatures, checked on its own bytes.
        policy::Envelope d = policy::openDelta(bytes);
        std::optional<std::string> base = store.currentBundle();
        if (!base) {
            policy::DeltaInfo info = policy::deltaInfo(d.bundle);
            throw Error("delta " + std::to_string(info.base_generation) + " -> " +
                        std::to_string(info.generation) +
                        ": this host holds no bundle to apply it to; the full bundle is needed");
        }
        d.bundle = policy::applyDelta(policy::openEnvelope(*base).bundle, d.bundle);
        return admitBundle(policy::rebuiltEnvelope(d), rules, store, signer, record);
    }
    // The signature comes first: nothing of an unverified bundle is parsed.
    std::string inner;
    std::string key_id;
    if (rules.trusted_keys.empty()) {
        inner = policy::openEnvelope(bytes).bundle;
    } else {
        policy::VerifiedBundle v = policy::verifyBundle(bytes, rules.trusted_keys);
        inner = std::move(v.bundle);
        key_id = std::move(v.key_id);
    }
    policy::BundleMeta meta;
    policy::CompiledPolicy cp = policy::parseBundle(inner, &meta);
    if (!rules.fleet.empty() && meta.fleet != rules.fleet) {
        throw Error("bundle generation " + std::to_string(cp.generation) + " is for fleet '" +
                    meta.fleet + "', this host belongs to '" + rules.fleet + "'");
    }
    if (meta.not_after_unix != 0 && rules.now_unix > meta.not_after_unix) {
        throw Error("bundle generation " + std::to_string(cp.generation) + " expired at unix " +
                    std::to_string(meta.not_after_unix) + " (freeze protection)");
    }
    store.checkNewer(cp.generation);
    if (signer != nullptr) {
        *signer = key_id;
    }
    if (record != nullptr) {
        *record = bytes;
    }
    return cp;
}

}  // namespace ztseg::agent
