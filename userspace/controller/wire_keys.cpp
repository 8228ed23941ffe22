#include "controller/wire_keys.hpp"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <memory>

#include "common/error.hpp"

namespace ztseg::controller {

std::vector<uint8_t> hkdfSha256(const std::string& ikm, const std::string& salt,
                                const std::string& info, size_t length) {
    std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr),
                                                          EVP_KDF_free);
    if (!kdf) {
        throw Error("OpenSSL has no HKDF");
    }
    std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(kdf.get()),
                                                                  EVP_KDF_CTX_free);
    char digest[] = "SHA256";
    // OSSL_PARAM takes non-const buffers; OpenSSL only reads them
    std::string k = ikm, s = salt, i = info;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, k.data(), k.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, s.data(), s.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, i.data(), i.size()),
        OSSL_PARAM_construct_end()};
    std::vector<uint8_t> out(length);
    if (!ctx || EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
        throw Error("HKDF-SHA256 failed");
    }
    return out;
}

std::array<uint8_t, 16> pairKey(const std::string& secret, const std::string& fleet,
                                const std::string& a, const std::string& b, uint64_t epoch) {
    const std::string& lo = a < b ? a : b;
    const std::string& hi = a < b ? b : a;
    std::string info = fleet + '\0' + lo + '\0' + hi + '\0';
    for (int shift = 56; shift >= 0; shift -= 8) info.push_back(char((epoch >> shift) & 0xff));
    std::vector<uint8_t> okm = hkdfSha256(secret, "ztseg wire proof v1", info, 16);
    std::array<uint8_t, 16> key{};
    std::copy(okm.begin(), okm.end(), key.begin());
    return key;
}

uint8_t wireKeyId(uint64_t epoch) {
    return uint8_t(epoch % 255 + 1);
}

WireKeyPlan wireKeyPlan(const WireProofSettings& s, int64_t now_unix_s) {
    const int64_t period = s.rotate_every_s, overlap = s.overlap_s;
    WireKeyPlan p;
    p.epoch = uint64_t(now_unix_s / period);
    const int64_t start = int64_t(p.epoch) * period, into = now_unix_s - start;
    p.keys.push_back({p.epoch, true});
    if (into >= period - overlap) {  // the next key is announced before anyone sends under it
        p.keys.push_back({p.epoch + 1, false});
        p.next_change_unix_s = start + period;
    } else if (into < overlap && p.epoch > 0) {  // late senders still use the previous one
        p.keys.push_back({p.epoch - 1, false});
        p.next_change_unix_s = start + overlap;
    } else {
        p.next_change_unix_s = start + period - overlap;
    }
    return p;
}

v1::WireProofPush wireProofFor(const std::string& host, const std::string& fleet,
                               const std::string& secret, const WireProofSettings& s,
                               const WireFleet& hosts, int64_t now_unix_s) {
    v1::WireProofPush push;
    push.set_window_s(s.window_s);
    auto self = hosts.addresses.find(host);
    if (secret.empty() || self == hosts.addresses.end() || self->second.empty()) {
        return push;  // a host without addresses is no one's peer: nobody could prove to it
    }
    WireKeyPlan plan = wireKeyPlan(s, now_unix_s);
    push.set_epoch(plan.epoch);
    uint32_t id = 0;
    for (const auto& [name, addresses] : hosts.addresses) {
        ++id;  // the host's position in the configuration: stable while `hosts` is
        if (name == host || addresses.empty()) {
            continue;
        }
        v1::WirePeer* peer = push.add_peers();
        peer->set_host(name);
        peer->set_id(id);
        for (const std::string& a : addresses) peer->add_addresses(a);
        if (auto ids = hosts.identities.find(name); ids != hosts.identities.end()) {
            for (uint32_t identity : ids->second) peer->add_identities(identity);
        }
        for (const WireKeyPlan::Key& k : plan.keys) {
            v1::WireKey* key = peer->add_keys();
            std::array<uint8_t, 16> bytes = pairKey(secret, fleet, host, name, k.epoch);
            key->set_id(wireKeyId(k.epoch));
            key->set_key(std::string(bytes.begin(), bytes.end()));
            key->set_send(k.send);
            key->set_accept(true);
        }
    }
    return push;
}

}  // namespace ztseg::controller
