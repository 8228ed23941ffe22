// A small lab for datapath integration tests: a "host" network namespace where
// ztseg enforces (XDP on its veth end, cgroup hooks on a workload cgroup) and a
// "peer" namespace holding a labeled peer (web) and an unlabeled intruder.
//
//   peer ns                          host ns
//   web      10.213.N.2 / fd00:213:N::2 ──veth── 10.213.N.1 / fd00:213:N::1  db (workload cgroup)
//   intruder 10.213.N.3 / fd00:213:N::3
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "common/lab.hpp"
#include "datapath/datapath.hpp"
#include "datapath/event_reader.hpp"

namespace ztseg::test {

// Enters a network namespace for the calling thread; restores the old one on exit.
class NetnsScope {
  public:
    explicit NetnsScope(const NetNs& ns);
    ~NetnsScope();
    NetnsScope(const NetnsScope&) = delete;
    NetnsScope& operator=(const NetnsScope&) = delete;

  private:
    int saved_ = -1;
};

inline constexpr IdentityId kDbId = 300;
inline constexpr IdentityId kWebId = 301;
inline constexpr uint16_t kDbPort = 5432;     // web -> db allowed (tcp, udp)
inline constexpr uint16_t kDbPort2 = 5433;    // web -> db allowed (tcp), a second server
inline constexpr uint16_t kSshPort = 22;      // web -> db explicitly denied
inline constexpr uint16_t kWebPort = 8080;    // db -> web allowed
inline constexpr uint16_t kOtherPort = 9999;  // db -> web not allowed

class LabTest : public ::testing::Test {
  protected:
    void SetUp() override;
    void TearDown() override;

    // Addresses in this lab (family 4 or 6).
    std::string dbAddr(int family) const;
    std::string webAddr(int family) const;
    std::string intruderAddr(int family) const;

    // The three-rule policy above; db in `mode`.
    Generation policy(uint64_t number, WorkloadMode mode) const;
    void apply(uint64_t number, WorkloadMode mode = WorkloadMode::Enforce);

    void attachAll();  // XDP on the host veth end + cgroup hooks on the db cgroup

    // A TCP (or UDP) echo server inside the db workload on port, serving until killed.
    std::unique_ptr<Child> startDbServer(uint16_t port, bool udp = false);
    // A TCP echo server in the peer namespace (web side).
    std::unique_ptr<Child> startWebServer(uint16_t port);

    // Runs fn in the peer namespace (outside any workload); returns its int result.
    int inPeer(std::function<int()> fn);
    // Runs fn inside the db workload (host namespace, db cgroup).
    int inDb(std::function<int()> fn);

    Counters counters() { return dp_->counters(); }
    std::vector<ztseg_flow_event> takeEvents();

    std::unique_ptr<NetNs> host_, peer_;
    std::unique_ptr<VethPair> veth_;
    std::unique_ptr<Cgroup2> db_cg_;
    DatapathOptions opts_;
    std::optional<Datapath> dp_;
    std::unique_ptr<EventReader> reader_;
    std::vector<ztseg_flow_event> events_;
    int subnet_ = 0;
};

}  // namespace ztseg::test
