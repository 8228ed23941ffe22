// The controller's key push as the datapath's wire-proof configuration
// (agent/wire_proof_push.hpp): taken whole, or refused naming what is wrong.
#include "agent/wire_proof_push.hpp"

#include <gtest/gtest.h>

#include "common/error.hpp"

namespace ztseg::agent {
namespace {

v1::WireProofPush push() {
    v1::WireProofPush p;
    p.set_epoch(42);
    p.set_window_s(20);
    v1::WirePeer* peer = p.add_peers();
    peer->set_host("b");
    peer->set_id(3);
    peer->add_addresses("10.0.2.0/24");
    peer->add_addresses("fd00:2::7");
    v1::WireKey* k = peer->add_keys();
    k->set_id(43);
    k->set_key(std::string(16, '\x11'));
    k->set_send(true);
    k->set_accept(true);
    k = peer->add_keys();
    k->set_id(44);
    k->set_key(std::string(16, '\x22'));
    k->set_accept(true);
    return p;
}

std::string refusal(const v1::WireProofPush& p) {
    try {
        wireProofConfig(p);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(WireProofPush, BecomesTheDatapathConfiguration) {
    WireProofConfig c = wireProofConfig(push());
    EXPECT_EQ(c.window_s, 20u);
    ASSERT_EQ(c.peers.size(), 1u);
    EXPECT_EQ(c.peers[0].id, 3u);
    EXPECT_EQ(c.peers[0].name, "b");
    ASSERT_EQ(c.peers[0].addresses.size(), 2u);
    EXPECT_EQ(c.peers[0].addresses[0].str(), "10.0.2.0/24");
    EXPECT_EQ(c.peers[0].addresses[1].str(), "fd00:2::7/128");
    ASSERT_EQ(c.peers[0].keys.size(), 2u);
    EXPECT_EQ(c.peers[0].keys[0].id, 43);
    EXPECT_EQ(c.peers[0].keys[0].key[15], 0x11);
    EXPECT_TRUE(c.peers[0].keys[0].send);
    EXPECT_FALSE(c.peers[0].keys[1].send);
    EXPECT_TRUE(c.peers[0].keys[1].accept);
    EXPECT_TRUE(wireProofConfig(v1::WireProofPush()).peers.empty());  // proofs off
}

TEST(WireProofPush, RefusesABadFieldNamingThePeer) {
    v1::WireProofPush p = push();
    p.mutable_peers(0)->mutable_keys(0)->set_key(std::string(15, 'x'));
    EXPECT_NE(refusal(p).find("peer 'b': key id 43 with 15 bytes"), std::string::npos);
    p = push();
    p.mutable_peers(0)->mutable_keys(1)->set_id(256);
    EXPECT_NE(refusal(p).find("key id 256"), std::string::npos);
    p = push();
    p.mutable_peers(0)->mutable_keys(1)->set_id(0);
    EXPECT_NE(refusal(p).find("key id 0"), std::string::npos);
    p = push();
    p.mutable_peers(0)->set_id(0);
    EXPECT_NE(refusal(p).find("peer 'b': peer id 0"), std::string::npos);
    p = push();
    p.mutable_peers(0)->set_addresses(1, "10.0.2.300");
    EXPECT_NE(refusal(p).find("peer 'b': "), std::string::npos);
    EXPECT_NE(refusal(p).find("10.0.2.300"), std::string::npos);
}

}  // namespace
}  // namespace ztseg::agent
