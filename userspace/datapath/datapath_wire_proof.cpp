// Proven identity on the wire (abi.h, datapath/wire_proof.hpp): the fleet
// peers' addresses and keys as the datapath's maps, and the userspace
// reference of the proof option (OpenSSL's SipHash).
#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstring>
#include <ctime>
#include <memory>
#include <set>
#include <vector>

#include "common/error.hpp"
#include "datapath/datapath.hpp"

namespace ztseg {
namespace {

ztseg_wire_addr_key wireAddrKey(const IpPrefix& p) {
    ztseg_wire_addr_key k{};
    if (p.family == 4) {
        k.addr[2] = htonl(0xffff);  // IPv4-mapped: one trie for both families
        std::memcpy(&k.addr[3], p.addr.data(), 4);
        k.prefixlen = 96 + p.length;
    } else {
        std::memcpy(k.addr, p.addr.data(), 16);
        k.prefixlen = p.length;
    }
    return k;
}

uint64_t littleEndian64(const uint8_t* b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | b[i];
    return v;
}

ztseg_wire_peer wirePeerValue(const WirePeer& p) {
    if (p.id == 0) {
        throw Error("wire proof: peer '" + p.name + "' has id 0");
    }
    if (p.keys.size() > ZTSEG_PROOF_KEYS) {
        throw Error("wire proof: peer '" + p.name + "' has " + std::to_string(p.keys.size()) +
                    " keys, at most " + std::to_string(ZTSEG_PROOF_KEYS) + " are in force at once");
    }
    ztseg_wire_peer v{};
    std::set<uint8_t> ids;
    for (size_t i = 0; i < p.keys.size(); ++i) {
        const WireKey& k = p.keys[i];
        if (!ids.insert(k.id).second) {
            throw Error("wire proof: peer '" + p.name + "' has key id " + std::to_string(k.id) +
                        " twice");
        }
        v.keys[i].k0 = littleEndian64(k.key.data());
        v.keys[i].k1 = littleEndian64(k.key.data() + 8);
        v.keys[i].id = k.id;
        v.keys[i].flags = (k.send ? ZTSEG_WKF_SEND : 0u) | (k.accept ? ZTSEG_WKF_ACCEPT : 0u);
    }
    for (uint32_t id : p.identities) {
        if (id < ZTSEG_ID_USER_MIN) {
            throw Error("wire proof: peer '" + p.name + "' may prove identity " +
                        std::to_string(id) + ": only workload identities (>= " +
                        std::to_string(ZTSEG_ID_USER_MIN) + ") are a peer's to prove");
        }
    }
    return v;
}

template <typename Key>
void eraseStale(const BpfMap& map, const std::set<std::vector<uint8_t>>& wanted) {
    std::vector<Key> stale;
    Key cur{}, next{};
    for (bool more = map.nextKey(nullptr, &next); more; more = map.nextKey(&cur, &next)) {
        cur = next;
        const auto* b = reinterpret_cast<const uint8_t*>(&cur);
        if (!wanted.contains(std::vector<uint8_t>(b, b + sizeof(Key)))) {
            stale.push_back(cur);
        }
    }
    for (const Key& k : stale) map.erase(&k);
}

template <typename Key>
std::vector<uint8_t> bytesOf(const Key& k) {
    const auto* b = reinterpret_cast<const uint8_t*>(&k);
    return {b, b + sizeof(Key)};
}

}  // namespace

void Datapath::setWireProof(const WireProofConfig& config) {
    std::set<uint32_t> peer_ids;
    size_t addresses = 0, identities = 0;
    for (const WirePeer& p : config.peers) {
        if (!peer_ids.insert(p.id).second) {
            throw Error("wire proof: peer id " + std::to_string(p.id) + " is used twice");
        }
        addresses += p.addresses.size();
        identities += p.identities.size();
    }
    if (config.peers.size() > ZTSEG_WIRE_PEER_CAPACITY || addresses > ZTSEG_WIRE_ADDR_CAPACITY ||
        identities > ZTSEG_WIRE_IDENT_CAPACITY) {
        throw Error("wire proof: " + std::to_string(config.peers.size()) + " peers with " +
                    std::to_string(addresses) + " addresses and " + std::to_string(identities) +
                    " identities; the datapath holds " + std::to_string(ZTSEG_WIRE_PEER_CAPACITY) +
                    ", " + std::to_string(ZTSEG_WIRE_ADDR_CAPACITY) + " and " +
                    std::to_string(ZTSEG_WIRE_IDENT_CAPACITY));
    }
    if (config.window_s == 0 || config.window_s > 3600) {
        throw Error("wire proof: window " + std::to_string(config.window_s) +
                    " s is outside 1..3600");
    }
    // validate everything before the first write: a bad config changes nothing
    std::vector<ztseg_wire_peer> values;
    for (const WirePeer& p : config.peers) values.push_back(wirePeerValue(p));

    writeConfig(ZTSEG_CFG_PROOF_WINDOW_S, config.window_s);
    std::set<std::vector<uint8_t>> wanted_peers, wanted_addrs, wanted_idents;
    for (size_t i = 0; i < config.peers.size(); ++i) {
        const WirePeer& p = config.peers[i];
        // keys and identities before the addresses that make them needed
        wire_peers_.update(&p.id, &values[i]);
        wanted_peers.insert(bytesOf(p.id));
        for (uint32_t id : p.identities) {
            ztseg_wire_ident_key k{p.id, id};
            const uint8_t one = 1;
            wire_idents_.update(&k, &one);
            wanted_idents.insert(bytesOf(k));
        }
    }
    for (const WirePeer& p : config.peers) {
        ztseg_wire_addr_value v{};
        v.peer = p.id;
        for (const IpPrefix& a : p.addresses) {
            ztseg_wire_addr_key k = wireAddrKey(a);
            wire_addrs_.update(&k, &v);
            wanted_addrs.insert(bytesOf(k));
        }
    }
    eraseStale<ztseg_wire_addr_key>(wire_addrs_, wanted_addrs);
    eraseStale<ztseg_wire_ident_key>(wire_idents_, wanted_idents);
    eraseStale<uint32_t>(wire_peers_, wanted_peers);
}

uint64_t siphash24(const std::array<uint8_t, 16>& key, const uint8_t* data, size_t len) {
    std::unique_ptr<EVP_MAC, decltype(&EVP_MAC_free)> mac(
        EVP_MAC_fetch(nullptr, "SIPHASH", nullptr), EVP_MAC_free);
    if (!mac) {
        throw Error("OpenSSL has no SIPHASH MAC");
    }
    std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx(EVP_MAC_CTX_new(mac.get()),
                                                                  EVP_MAC_CTX_free);
    unsigned int size = 8;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_uint(OSSL_MAC_PARAM_SIZE, &size),
                           OSSL_PARAM_construct_end()};
    uint8_t out[8];
    size_t out_len = 0;
    if (!ctx || EVP_MAC_init(ctx.get(), key.data(), key.size(), params) != 1 ||
        EVP_MAC_update(ctx.get(), data, len) != 1 ||
        EVP_MAC_final(ctx.get(), out, &out_len, sizeof(out)) != 1 || out_len != 8) {
        throw Error("OpenSSL SIPHASH failed");
    }
    return littleEndian64(out);
}

std::array<uint8_t, 20> wireProofOption(const WireKey& key, const IpPrefix& saddr,
                                        const IpPrefix& daddr, uint16_t sport, uint16_t dport,
                                        uint32_t isn, uint32_t identity, uint32_t ts) {
    ts &= 0xffffff;
    ztseg_proof_msg m{};
    std::memcpy(m.saddr, saddr.addr.data(), saddr.family == 4 ? 4 : 16);
    std::memcpy(m.daddr, daddr.addr.data(), daddr.family == 4 ? 4 : 16);
    m.sport = htons(sport);
    m.dport = htons(dport);
    m.isn = htonl(isn);
    m.identity = htonl(identity);
    m.ts_key = htonl((ts << 8) | key.id);
    const uint64_t mac = siphash24(key.key, reinterpret_cast<const uint8_t*>(&m), sizeof(m));

    std::array<uint8_t, 20> o{};
    o[0] = ZTSEG_PROOF_KIND;
    o[1] = ZTSEG_PROOF_LEN;
    o[2] = ZTSEG_PROOF_EXID >> 8;
    o[3] = ZTSEG_PROOF_EXID & 0xff;
    o[4] = key.id;
    o[5] = static_cast<uint8_t>(ts >> 16);
    o[6] = static_cast<uint8_t>(ts >> 8);
    o[7] = static_cast<uint8_t>(ts);
    for (int i = 0; i < 4; ++i) o[8 + i] = static_cast<uint8_t>(identity >> (24 - 8 * i));
    for (int i = 0; i < 8; ++i) o[12 + i] = static_cast<uint8_t>(mac >> (8 * i));
    return o;
}

uint32_t wireProofNow() {
    timespec ts{};
    clock_gettime(CLOCK_TAI, &ts);
    return static_cast<uint32_t>(ts.tv_sec) & 0xffffff;
}

}  // namespace ztseg
