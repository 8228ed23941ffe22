// The namespace lab shared by integration tests and `make demo`: a "host"
// network namespace where ztseg enforces (XDP on its veth end, cgroup hooks on
// the db workload cgroup) and a "peer" namespace holding a labeled peer (web)
// and an unlabeled intruder. Everything is uniquely named and removed by the
// destructor, also when a test fails or the demo is interrupted.
//
//   peer ns                                     host ns
//   web      10.213.N.2 / fd00:213:N::2  ──veth──  10.213.N.1 / fd00:213:N::1  db (cgroup)
//   intruder 10.213.N.3 / fd00:213:N::3
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/lab.hpp"
#include "datapath/datapath.hpp"

namespace ztseg::test {

inline constexpr IdentityId kDbId = 300;
inline constexpr IdentityId kWebId = 301;
inline constexpr uint16_t kDbPort = 5432;     // web -> db allowed (tcp, udp)
inline constexpr uint16_t kDbPort2 = 5433;    // web -> db allowed (tcp), a second server
inline constexpr uint16_t kSshPort = 22;      // web -> db explicitly denied
inline constexpr uint16_t kWebPort = 8080;    // db -> web allowed
inline constexpr uint16_t kOtherPort = 9999;  // db -> web not allowed

class DbLab {
  public:
    DbLab();

    std::string dbAddr(int family) const;
    std::string webAddr(int family) const;
    std::string intruderAddr(int family) const;

    // The lab's policy: the rules above, db in `mode`.
    Generation policy(uint64_t number, WorkloadMode mode) const;
    // XDP on the host's veth end + cgroup hooks on the db cgroup; returns the XDP mode.
    XdpMode attach(Datapath& dp) const;

    // Echo servers (TCP: every connection at once): inside the db workload, or on the web side
    // of the peer namespace.
    std::unique_ptr<Child> startDbServer(uint16_t port, bool udp = false);
    // A TCP echo server in the host namespace inside another cgroup (a daemon's workload).
    std::unique_ptr<Child> startServerIn(Cgroup2& cg, uint16_t port);
    std::unique_ptr<Child> startWebServer(uint16_t port);
    // web -> db:port (an echo round trip) and the intruder's connect to db:5432
    // from the peer namespace: 0 or the errno.
    int webToDb(uint16_t port = kDbPort);
    int intruderToDb();
    // An echo round trip from a process of the host namespace in `cg` to web:port; 0 or errno.
    int hostToWeb(Cgroup2& cg, uint16_t port);
    // Run fn as a process in the peer namespace / inside the db workload; its result.
    int inPeer(std::function<int()> fn);
    int inDb(std::function<int()> fn);

    NetNs& host() { return *host_; }
    NetNs& peer() { return *peer_; }
    VethPair& veth() { return *veth_; }
    Cgroup2& dbCgroup() { return *db_cg_; }

  private:
    int subnet_ = 0;
    std::unique_ptr<NetNs> host_, peer_;
    std::unique_ptr<VethPair> veth_;
    std::unique_ptr<Cgroup2> db_cg_;
};

}  // namespace ztseg::test
