// Proven identity on the wire (abi.h, docs/datapath.md#proven-identity),
// packet by packet against the real programs: a TCP SYN from a fleet peer's
// address is judged on the identity its proof names, not on the address; a
// SYN without a valid proof (none, a forged or replayed MAC, another tuple or
// ISN, a stale or future timestamp, an unknown or retired key, a reserved
// identity) is refused as "unproven" at the interface ingress stage and at
// cgroup ingress, for any destination; audit mode only reports; sources that
// are no fleet peer's keep their address identity. The proofs are made by
// userspace with OpenSSL's SipHash, so the datapath's SipHash is checked
// against an independent implementation.
#include "datapath/wire_proof.hpp"

#include <string>
#include <vector>

#include "bpf/scenario.hpp"
#include "common/error.hpp"

namespace ztseg::test {
namespace {

constexpr Rule kDbFromApi{kDb,           kApi, Direction::Ingress, ZTSEG_PROTO_TCP, {5432, 5432},
                          Action::Allow, 1};
constexpr uint32_t kPeerA = 7;

WireKey key(uint8_t id, uint8_t fill, bool send, bool accept) {
    WireKey k;
    k.id = id;
    for (size_t i = 0; i < k.key.size(); ++i) k.key[i] = static_cast<uint8_t>(fill + i * 13);
    k.send = send;
    k.accept = accept;
    return k;
}

class WireProof : public FamilyTest {
  protected:
    void SetUp() override {
        FamilyTest::SetUp();
        // web is host A's address, shared by its workloads web and api (the
        // address itself is labeled web); db is the workload here; ext is a
        // labeled address that is no fleet peer's
        addHosts({{n_.web, kWeb}, {n_.db, kDb}, {n_.ext, kApi}});
        setKeys({k1_});
    }
    void enforceDb(WorkloadMode mode = WorkloadMode::Enforce) {
        addWorkload(kDb, mode);
        addRule(kDbFromApi);
        applyGen();
    }
    void setKeys(const std::vector<WireKey>& keys) {
        WireProofConfig c;
        c.window_s = 30;
        // host A runs web and api: the only workloads its proofs may name
        c.peers.push_back({kPeerA, "host-a", {IpPrefix::parse(host(n_.web))}, keys, {kWeb, kApi}});
        dp().setWireProof(c);
    }
    // A SYN from src:sport to dst:5432 with ISN `isn`, carrying MSS and then `proof`.
    std::vector<uint8_t> syn(const std::string& src, const std::string& dst, uint16_t sport,
                             uint32_t isn, const std::vector<uint8_t>& proof) const {
        std::vector<uint8_t> opts = {2, 4, 0x05, 0xb4};  // MSS 1460
        opts.insert(opts.end(), proof.begin(), proof.end());
        return pkt(src, dst).tcp(sport, 5432).seqAck(isn, 0).tcpOptions(opts).build();
    }
    std::vector<uint8_t> proof(const WireKey& k, const std::string& src, const std::string& dst,
                               uint16_t sport, uint32_t isn, uint32_t identity,
                               int32_t age_s = 0) const {
        auto o = wireProofOption(k, IpPrefix::parse(host(src)), IpPrefix::parse(host(dst)), sport,
                                 5432, isn, identity, wireProofNow() - age_s);
        return {o.begin(), o.end()};
    }
    // A SYN from web carrying a valid proof naming `identity`.
    std::vector<uint8_t> provenSyn(uint16_t sport, uint32_t identity, const WireKey& k) const {
        return syn(n_.web, n_.db, sport, 1000 + sport,
                   proof(k, n_.web, n_.db, sport, 1000 + sport, identity));
    }
    void expectUnproven(const std::vector<uint8_t>& frame, const std::string& what) {
        SCOPED_TRACE(what);
        expectXdp(frame, kXdpDrop, ZTSEG_REASON_DROP_UNPROVEN);
        auto e = onlyEvent(ZTSEG_REASON_DROP_UNPROVEN, kWeb, kDb);
        EXPECT_EQ(e.verdict, ZTSEG_VERDICT_DROPPED);
        EXPECT_EQ(e.flags & ZTSEG_EVF_PROVEN, 0u);
        expectIn(frame, kSkbDrop, ZTSEG_REASON_DROP_UNPROVEN);
        takeEvents();
    }
    WireKey k1_ = key(1, 0x10, true, true);
};

TEST_P(WireProof, AProvenIdentityDecidesNotTheAddress) {
    enforceDb();
    // web and api share web's address: each gets its own verdict
    auto api = provenSyn(40000, kApi, k1_);
    expectXdp(api, kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectIn(api, kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    auto e = onlyEvent(ZTSEG_REASON_ALLOW_POLICY, kApi, kDb);
    EXPECT_EQ(e.flags & ZTSEG_EVF_PROVEN, ZTSEG_EVF_PROVEN);
    EXPECT_EQ(e.rule_id, kDbFromApi.rule_id);

    auto web = provenSyn(40001, kWeb, k1_);
    expectXdp(web, kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    e = onlyEvent(ZTSEG_REASON_DROP_DEFAULT_DENY, kWeb, kDb);
    EXPECT_EQ(e.flags & ZTSEG_EVF_PROVEN, ZTSEG_EVF_PROVEN);
    expectIn(web, kSkbDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    takeEvents();

    // identity 0: proven to come from host A, judged as the address (web)
    auto none = provenSyn(40002, 0, k1_);
    expectXdp(none, kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    takeEvents();
}

TEST_P(WireProof, TheRestOfAProvenConnectionFollowsItsConntrackEntry) {
    enforceDb();
    expectIn(provenSyn(40010, kApi, k1_), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    expectOut(pkt(n_.db, n_.web).tcp(5432, 40010, kTcpSyn | kTcpAck).build(), kSkbPass,
              ZTSEG_REASON_ALLOW_CONNTRACK);
    // later segments carry no proof and need none
    expectIn(pkt(n_.web, n_.db).tcp(40010, 5432, kTcpAck).build(), kSkbPass,
             ZTSEG_REASON_ALLOW_CONNTRACK);
}

TEST_P(WireProof, ASynWithoutAValidProofIsUnproven) {
    enforceDb();
    const std::string& w = n_.web;
    const std::string& d = n_.db;
    expectUnproven(syn(w, d, 40100, 7, {}), "no proof at all");
    expectUnproven(pkt(w, d).tcp(40101, 5432).build(), "no options at all");

    auto flipped = proof(k1_, w, d, 40102, 7, kApi);
    flipped[19] ^= 0x01;
    expectUnproven(syn(w, d, 40102, 7, flipped), "a MAC with one bit flipped");

    expectUnproven(syn(w, d, 40103, 7, proof(key(1, 0x55, true, true), w, d, 40103, 7, kApi)),
                   "a MAC under another key with the same id");
    expectUnproven(syn(w, d, 40104, 7, proof(key(9, 0x10, true, true), w, d, 40104, 7, kApi)),
                   "an unknown key id");
    expectUnproven(syn(w, d, 40105, 8, proof(k1_, w, d, 40105, 7, kApi)),
                   "a proof for another initial sequence number");
    expectUnproven(syn(w, d, 40106, 7, proof(k1_, w, d, 40006, 7, kApi)),
                   "a proof for another source port (a replay onto another tuple)");
    expectUnproven(syn(w, d, 40107, 7, proof(k1_, w, d, 40107, 7, kApi, 31)),
                   "a replay older than the 30 s window");
    expectUnproven(syn(w, d, 40108, 7, proof(k1_, w, d, 40108, 7, kApi, -31)),
                   "a timestamp 31 s in the future");
    expectUnproven(syn(w, d, 40109, 7, proof(k1_, w, d, 40109, 7, ZTSEG_ID_HOST)),
                   "a reserved identity (the host)");
    expectUnproven(syn(w, d, 40113, 7, proof(k1_, w, d, 40113, 7, kDb)),
                   "a valid MAC naming a workload host A does not run (a compromised host "
                   "speaking as another host's workload)");

    // the proof must be the last option, where the sender's kernel puts it
    auto p = proof(k1_, w, d, 40110, 7, kApi);
    std::vector<uint8_t> first(p.begin(), p.end());
    first.insert(first.end(), {2, 4, 0x05, 0xb4});
    expectUnproven(pkt(w, d).tcp(40110, 5432).seqAck(7, 0).tcpOptions(first).build(),
                   "the proof before another option");

    // within the window either side, it is valid
    expectXdp(syn(w, d, 40111, 7, proof(k1_, w, d, 40111, 7, kApi, 29)), kXdpPass,
              ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(syn(w, d, 40112, 7, proof(k1_, w, d, 40112, 7, kApi, -29)), kXdpPass,
              ZTSEG_REASON_ALLOW_POLICY);
}

TEST_P(WireProof, SourcesThatAreNoFleetPeersKeepTheirAddressIdentity) {
    enforceDb();
    // ext is labeled api and belongs to no peer host: no proof needed
    expectXdp(pkt(n_.ext, n_.db).tcp(40200, 5432).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectIn(pkt(n_.ext, n_.db).tcp(40200, 5432).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    auto e = onlyEvent(ZTSEG_REASON_ALLOW_POLICY, kApi, kDb);
    EXPECT_EQ(e.flags & ZTSEG_EVF_PROVEN, 0u);
    // with no fleet peers at all, web's address identity decides again
    dp().setWireProof({});
    expectXdp(pkt(n_.web, n_.db).tcp(40201, 5432).build(), kXdpDrop,
              ZTSEG_REASON_DROP_DEFAULT_DENY);
    takeEvents();
}

TEST_P(WireProof, AnyDestinationRefusesAnUnprovenSyn) {
    enforceDb();
    // stranger is no workload: the ingress stage still refuses the forged SYN
    expectXdp(pkt(n_.web, n_.stranger).tcp(40300, 22).build(), kXdpDrop,
              ZTSEG_REASON_DROP_UNPROVEN);
    takeEvents();
    auto o = wireProofOption(k1_, IpPrefix::parse(host(n_.web)), IpPrefix::parse(host(n_.stranger)),
                             40301, 22, 5, kApi, wireProofNow());
    std::vector<uint8_t> opts = {1, 1, 1, 1};
    opts.insert(opts.end(), o.begin(), o.end());
    expectXdp(pkt(n_.web, n_.stranger).tcp(40301, 22).seqAck(5, 0).tcpOptions(opts).build(),
              kXdpPass, ZTSEG_REASON_PASS_TO_STACK);
}

TEST_P(WireProof, AuditModeReportsAnUnprovenSynAndDropsNothing) {
    enforceDb(WorkloadMode::Audit);
    auto f = syn(n_.web, n_.db, 40400, 7, {});
    expectXdp(f, kXdpPass, ZTSEG_REASON_PASS_TO_STACK);
    expectIn(f, kSkbPass, ZTSEG_REASON_AUDIT);
    auto e = onlyEvent(ZTSEG_REASON_DROP_UNPROVEN, kWeb, kDb);
    EXPECT_EQ(e.verdict, ZTSEG_VERDICT_WOULD_DROP);
}

TEST_P(WireProof, KeysRotateWithAnOverlap) {
    enforceDb();
    const WireKey k2 = key(2, 0x80, false, true);
    // 1. the next key is announced: both are accepted, the old one still sends
    setKeys({k1_, k2});
    expectXdp(provenSyn(40500, kApi, k1_), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(provenSyn(40501, kApi, k2), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    // 2. the new key sends; the old one is still accepted
    setKeys({key(1, 0x10, false, true), key(2, 0x80, true, true)});
    expectXdp(provenSyn(40502, kApi, k1_), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(provenSyn(40503, kApi, k2), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    // 3. the old key is retired (still listed, no longer accepted), then removed
    setKeys({key(1, 0x10, false, false), key(2, 0x80, true, true)});
    expectXdp(provenSyn(40504, kApi, k1_), kXdpDrop, ZTSEG_REASON_DROP_UNPROVEN);
    setKeys({key(2, 0x80, true, true)});
    expectXdp(provenSyn(40505, kApi, k1_), kXdpDrop, ZTSEG_REASON_DROP_UNPROVEN);
    expectXdp(provenSyn(40506, kApi, k2), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    takeEvents();
}

TEST_P(WireProof, ABadConfigIsRefusedWholeAndChangesNothing) {
    enforceDb();
    WireProofConfig bad;
    bad.peers.push_back({kPeerA,
                         "host-a",
                         {IpPrefix::parse(host(n_.web))},
                         {key(1, 1, true, true), key(2, 2, false, true), key(3, 3, false, true)}});
    EXPECT_THROW(dp().setWireProof(bad), Error);
    bad.peers[0].keys = {key(4, 1, true, true), key(4, 2, false, true)};
    EXPECT_THROW(dp().setWireProof(bad), Error);
    bad.peers[0].keys = {key(4, 1, true, true)};
    bad.peers.push_back({kPeerA, "again", {IpPrefix::parse(host(n_.db))}, {}});
    EXPECT_THROW(dp().setWireProof(bad), Error);
    bad.peers.pop_back();
    bad.peers[0].identities = {kApi, ZTSEG_ID_HOST};  // reserved: never a peer's to prove
    EXPECT_THROW(dp().setWireProof(bad), Error);
    // k1 is still the key in force
    expectXdp(provenSyn(40600, kApi, k1_), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectXdp(provenSyn(40601, kApi, key(4, 1, true, true)), kXdpDrop, ZTSEG_REASON_DROP_UNPROVEN);
    takeEvents();
}

TEST_P(WireProof, UdpAndIcmpFromAFleetAddressAreJudgedOnTheAddress) {
    // what proofs cover is TCP: a datagram has no room for one, so UDP and
    // ICMP from a peer's address keep the address's identity (threat model)
    addRule({kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_UDP, {5353, 5353}, Action::Allow, 2});
    enforceDb();
    expectXdp(pkt(n_.web, n_.db).udp(40700, 5353).build(), kXdpPass, ZTSEG_REASON_ALLOW_POLICY);
    expectIn(pkt(n_.web, n_.db).udp(40700, 5353).build(), kSkbPass, ZTSEG_REASON_ALLOW_POLICY);
    auto e = onlyEvent(ZTSEG_REASON_ALLOW_POLICY, kWeb, kDb);
    EXPECT_EQ(e.flags & ZTSEG_EVF_PROVEN, 0u);
    expectXdp(pkt(n_.web, n_.db).icmpEcho(9).build(), kXdpDrop, ZTSEG_REASON_DROP_DEFAULT_DENY);
    takeEvents();
}

INSTANTIATE_TEST_SUITE_P(Families, WireProof, ::testing::Values(Family::V4, Family::V6),
                         familyName);

}  // namespace
}  // namespace ztseg::test
