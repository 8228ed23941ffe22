// Fixture for packet tests: a private datapath (own pin dir, removed on
// teardown), helpers to install a policy generation in domain terms, and
// BPF_PROG_TEST_RUN wrappers that return the verdict and which counter moved.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "datapath/datapath.hpp"
#include "datapath/event_reader.hpp"

namespace ztseg::test {

struct RunResult {
    uint32_t retval = 0;
    uint32_t duration_ns = 0;
};

class DatapathTest : public ::testing::Test {
  protected:
    void SetUp() override;
    void TearDown() override;

    // Pin dir unique to this process and test.
    static std::string uniquePinDir();
    // Tests that need other map sizes or intervals override this.
    virtual void customize(DatapathOptions&) {}

    Datapath& dp() { return *dp_; }
    const DatapathOptions& options() const { return opts_; }

    // The cgroup BPF_PROG_TEST_RUN attributes packets to: this process's own.
    static uint64_t selfCgroupId();

    // Builder for a generation: identities, workload modes and rules.
    Generation& gen() { return gen_; }
    void addIdentity(const std::string& prefix, IdentityId id);
    void addWorkload(IdentityId id, WorkloadMode mode);  // also makes this process its endpoint
    void addRule(Rule r);
    void addRules(const std::vector<Rule>& rules);
    void applyGen();  // applies gen_ with the next generation number

    // The interface ingress stage. With ingress(Ingress::Tcx) (or the
    // environment ZTSEG_TEST_INGRESS=tcx, which reruns every XDP packet test
    // through tc) these run ztseg_tcx / ztseg_tcx_l3 instead and map tc's
    // verdict onto XDP's (TCX_NEXT -> kXdpPass, TCX_DROP -> kXdpDrop): both
    // programs must decide the same, count the same and report the same.
    enum class Ingress { Xdp, Tcx };
    void ingress(Ingress i) { ingress_ = i; }
    Ingress ingress() const { return ingress_; }
    RunResult runXdp(const std::vector<uint8_t>& frame, uint32_t repeat = 1);
    // ztseg_xdp_l3, for devices without an Ethernet header: `packet` starts at IP.
    RunResult runXdpL3(const std::vector<uint8_t>& packet, uint32_t repeat = 1);
    // ztseg_tcx / ztseg_tcx_l3 with tc's own verdict (kTcxNext, kTcxDrop).
    RunResult runTcx(const std::vector<uint8_t>& frame, uint32_t repeat = 1);
    RunResult runTcxL3(const std::vector<uint8_t>& packet, uint32_t repeat = 1);
    RunResult runCgroupIngress(const std::vector<uint8_t>& frame);
    RunResult runCgroupEgress(const std::vector<uint8_t>& frame);
    RunResult runProgram(const char* prog, const std::vector<uint8_t>& frame, uint32_t repeat = 1);
    // The program at `hook`: ZTSEG_HOOK_XDP, _CGROUP_INGRESS or _CGROUP_EGRESS.
    RunResult runAt(uint32_t hook, const std::vector<uint8_t>& frame);

    // Counter deltas since the last snapshot.
    void snapshotCounters();
    uint64_t counted(uint32_t hook, uint32_t reason);
    uint64_t countedAll(uint32_t hook);  // every reason
    // "default-deny=1 ..." (or "nothing"): what moved at `hook`, for failure messages.
    std::string moved(uint32_t hook);

    // One packet at one hook: verdict `retval`, and `reason` is the only counter
    // that moved (counted once).
    void expectAt(uint32_t hook, const std::vector<uint8_t>& frame, uint32_t retval,
                  uint32_t reason);
    void expectXdp(const std::vector<uint8_t>& frame, uint32_t retval, uint32_t reason);
    void expectXdpL3(const std::vector<uint8_t>& packet, uint32_t retval, uint32_t reason);
    void expectIn(const std::vector<uint8_t>& frame, uint32_t retval, uint32_t reason);   // cgroup
    void expectOut(const std::vector<uint8_t>& frame, uint32_t retval, uint32_t reason);  // cgroup

    // Flow events emitted since the last call.
    std::vector<ztseg_flow_event> takeEvents();
    // The one event emitted since the last call (a failure, and an empty event, if not one).
    ztseg_flow_event onlyEvent();
    // The same, and it reports `reason` for a flow from `src` to `dst`.
    ztseg_flow_event onlyEvent(uint8_t reason, IdentityId src, IdentityId dst);

  private:
    RunResult runIngress(bool l3, const std::vector<uint8_t>& frame, uint32_t repeat);

    Ingress ingress_ = Ingress::Xdp;
    DatapathOptions opts_;
    std::optional<Datapath> dp_;
    std::unique_ptr<EventReader> reader_;
    std::vector<ztseg_flow_event> events_;
    Generation gen_;
    uint64_t next_gen_ = 1;
    Counters base_{};
};

// Verdict values: XDP_PASS/XDP_DROP for XDP, 1/0 for cgroup_skb.
inline constexpr uint32_t kXdpDrop = 1;
inline constexpr uint32_t kXdpPass = 2;
inline constexpr uint32_t kSkbDrop = 0;
inline constexpr uint32_t kSkbPass = 1;
// tc at tcx ingress: TCX_NEXT (pass on to the rest of the chain/stack), TCX_DROP.
inline constexpr uint32_t kTcxNext = uint32_t(-1);
inline constexpr uint32_t kTcxDrop = 2;

}  // namespace ztseg::test
