#include "agent/wire_proof_push.hpp"

#include "common/error.hpp"

namespace ztseg::agent {

WireProofConfig wireProofConfig(const v1::WireProofPush& push) {
    WireProofConfig cfg;
    cfg.window_s = push.window_s();
    for (const v1::WirePeer& p : push.peers()) {
        const std::string where = "wire proof peer '" + p.host() + "'";
        WirePeer peer;
        peer.id = p.id();
        peer.name = p.host();
        if (peer.id == 0) {
            throw Error(where + ": peer id 0");
        }
        for (const std::string& a : p.addresses()) {
            try {
                peer.addresses.push_back(IpPrefix::parse(a));
            } catch (const Error& e) {
                throw Error(where + ": " + e.what());
            }
        }
        for (const v1::WireKey& k : p.keys()) {
            if (k.id() == 0 || k.id() > 255 || k.key().size() != 16) {
                throw Error(where + ": key id " + std::to_string(k.id()) + " with " +
                            std::to_string(k.key().size()) +
                            " bytes; a key has an id 1..255 and 16 bytes");
            }
            WireKey key;
            key.id = uint8_t(k.id());
            std::copy(k.key().begin(), k.key().end(), key.key.begin());
            key.send = k.send();
            key.accept = k.accept();
            peer.keys.push_back(key);
        }
        peer.identities.assign(p.identities().begin(), p.identities().end());
        cfg.peers.push_back(std::move(peer));
    }
    return cfg;
}

}  // namespace ztseg::agent
