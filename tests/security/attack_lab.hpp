// Shared pieces of the adversarial suite (tests/security): a namespace lab
// shaped like the one ztsegd runs in (a cgroup tree whose root carries the
// cgroup hooks, as ztsegd's cgroup_root does), packet injection from the peer
// namespace, and small process-coordination helpers.
//
//   peer ns                                       host ns
//   web      10.214.S.2 / fd00:214:S::2  ──veth──  10.214.S.1 / fd00:214:S::1
//   intruder 10.214.S.3 / fd00:214:S::3            cgroups: P (hooks), P/db (workload db),
//                                                           P/other (no workload)
//
// Addresses differ from DbLab's (10.213/fd00:213) so that a datapath attached
// at the cgroup2 root (KernelAnswersFromWorkloadAddressAreJudged) never judges
// another test binary's lab. Everything is uniquely named and removed by the
// destructors, also when a test fails.
#pragma once

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "common/lab.hpp"
#include "common/packet_builder.hpp"
#include "datapath/datapath.hpp"
#include "integration/lab_topology.hpp"

namespace ztseg::test {

using namespace std::chrono_literals;

// ---- families ----

// Parameter of the per-family tests: 4 or 6.
std::string familyLabel(const ::testing::TestParamInfo<int>& info);  // "IPv4" / "IPv6"
PacketBuilder packetFor(int family, const std::string& src, const std::string& dst);

// ---- process coordination ----

// Parent -> child: a child forked after construction blocks in wait() until open().
class Gate {
  public:
    Gate();
    void open();
    bool wait(std::chrono::milliseconds timeout);  // false on timeout

  private:
    UniqueFd r_, w_;
};

// ---- the lab ----

enum class Role { Db = 1, Web = 2, Intruder = 3 };

inline constexpr uint16_t kDbUdpEgressPort = 8080;  // db -> web udp allowed (attack 6)

class AttackLab {
  public:
    // with_datapath = false: namespaces and cgroups only (ztsegd brings its own datapath).
    explicit AttackLab(DatapathOptions opts = {}, bool with_datapath = true);
    ~AttackLab();
    AttackLab(const AttackLab&) = delete;
    AttackLab& operator=(const AttackLab&) = delete;

    std::string addr(Role r, int family) const;
    // DbLab's rules (web->db tcp 5432-5433, udp 5432, icmp; tcp 22 denied; db->web tcp 8080)
    // plus db->web udp 8080; endpoint P/db.
    Generation policy(uint64_t number, WorkloadMode mode = WorkloadMode::Enforce) const;
    void apply(const Generation& g) { dp_->apply(g); }
    // cgroup hooks at P (like ztsegd with cgroup_root = P), or at `path`.
    void attachHooks(const std::string& path = "");
    void attachXdp();  // XDP on the host's veth end

    Datapath& dp() { return *dp_; }
    NetNs& host() { return *host_; }
    NetNs& peer() { return *peer_; }
    VethPair& veth() { return *veth_; }
    Cgroup2& root() { return *root_; }
    Cgroup2& db() { return *db_; }
    Cgroup2& other() { return *other_; }
    Cgroup2& tools() { return *tools_; }  // peer-side helpers: outside every attach point

    // sysctl -w inside a lab namespace (never the root namespace).
    static void sysctl(NetNs& ns, const std::string& key, const std::string& value);

    // A process in the peer namespace / in cgroup `cg` of the host namespace: its exit status.
    int inPeer(std::function<int()> fn);
    int inHost(Cgroup2* cg, std::function<int()> fn);
    // Echo servers (TCP or UDP, on `addr`: all addresses by default) ready on return. A UDP
    // server in the peer namespace should bind web's address: replies from "::" may leave
    // from the intruder's address.
    std::unique_ptr<Child> serveInHost(Cgroup2* cg, uint16_t port, bool udp = false,
                                       const std::string& addr = "::");
    std::unique_ptr<Child> serveInPeer(uint16_t port, bool udp = false,
                                       const std::string& addr = "::");

    // Sends each packet (L3 bytes, any source address) from the peer namespace out of the
    // peer's veth end to the host's MAC (AF_PACKET, no routing, no source checks). Returns the
    // number sent; throws if the injector fails. cpu >= 0: the injector runs on that CPU (the
    // stack then processes the packets there too).
    int inject(const std::vector<std::vector<uint8_t>>& l3_packets, int cpu = -1);

    // Counter deltas since snapshot(): the one counter, and everything that moved at a hook.
    void snapshot() { base_ = dp_->counters(); }
    uint64_t counted(uint32_t hook, uint32_t reason) const;
    std::string moved(uint32_t hook) const;    // "default-deny=2 no-endpoint=1" or "nothing"
    uint64_t countedAll(uint32_t hook) const;  // every reason

  private:
    int subnet_ = 0;
    DatapathOptions opts_;
    std::unique_ptr<NetNs> host_, peer_;
    std::unique_ptr<VethPair> veth_;
    std::unique_ptr<Cgroup2> root_, db_, other_, tools_;
    std::optional<Datapath> dp_;
    Counters base_{};
};

// MAC address ("aa:bb:..") of interface `ifname` in namespace `ns`.
std::string macOf(NetNs& ns, const std::string& ifname);
// Sends one L3 packet on an AF_PACKET SOCK_DGRAM socket out of `ifname` (in the caller's
// namespace) to `dst_mac`, with no routing or source checks: 0 or the errno.
int sendL3(int packet_fd, const std::string& ifname, const std::string& dst_mac,
           const std::vector<uint8_t>& l3);

// Receives datagrams on a bound UDP (or UDP-Lite) socket until `idle` passes without one;
// the number received.
int countDatagrams(int fd, std::chrono::milliseconds idle);
// "0 (success)" or the errno's name ("EPERM").
std::string errName(int err);
// The cgroup path relative to the cgroup2 mount (what a policy's `cgroup:` glob matches).
std::string relativeCgroupPath(const Cgroup2& cg);
// Accepts on any of the listening sockets and echoes each connection, until `idle` passes
// without a new connection.
void tcpEchoServeAll(const std::vector<int>& listen_fds, std::chrono::milliseconds idle);
// The calling process makes a child cgroup `name` under `parent` (if missing) and moves into it.
void moveIntoNewChildCgroup(const std::string& parent, const std::string& name);
// The calling process moves into cgroup directory `path`.
void moveIntoCgroup(const std::string& path);
// A connected TCP socket from src (any port) to dst:port; throws on failure.
UniqueFd tcpConnected(const std::string& src, const std::string& dst, uint16_t port,
                      std::chrono::milliseconds timeout);
// Reads exactly n bytes within timeout: 0, ETIMEDOUT, ECONNRESET (EOF) or the recv errno.
int recvExactly(int fd, size_t n, std::chrono::milliseconds timeout, std::string& out);
// ECONNREFUSED/... of a non-blocking connect from `src` bounded by `timeout` (0 = connected).
int connectFrom(const std::string& src, const std::string& dst, uint16_t port,
                std::chrono::milliseconds timeout = 500ms);

// Writes ICMP bytes 4..7 (v4 frag-needed: next-hop MTU in 6..7; v6 packet-too-big: MTU) of an
// L3 packet built by PacketBuilder and fixes the ICMP checksum.
void setIcmpRest(std::vector<uint8_t>& l3, uint32_t rest);

}  // namespace ztseg::test
