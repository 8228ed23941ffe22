// kill -9 of the process applying a generation: afterwards the datapath
// enforces either the old or the new generation, never a mix of the two.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "bpf/datapath_fixture.hpp"
#include "bpf/scenario.hpp"
#include "common/packet_builder.hpp"

namespace ztseg::test {
namespace {

// Odd generations admit web -> db on 1000 only, even ones on 2000 only; both
// carry enough filler rules that an apply takes a while to kill in the middle.
Generation alternating(uint64_t number, uint64_t cgroup_id) {
    Generation g;
    g.number = number;
    g.identities.push_back({IpPrefix::parse("10.1.0.10/32"), kWeb});
    g.identities.push_back({IpPrefix::parse("10.1.0.20/32"), kDb});
    g.modes[kDb] = WorkloadMode::Enforce;
    g.endpoints.push_back({cgroup_id, kDb});
    uint16_t port = number % 2 ? 1000 : 2000;
    g.rules.push_back(
        {kDb, kWeb, Direction::Ingress, ZTSEG_PROTO_TCP, {port, port}, Action::Allow, 1});
    for (uint32_t i = 0; i < 60000; ++i) {
        g.rules.push_back({kDb,
                           10000 + i,
                           Direction::Ingress,
                           ZTSEG_PROTO_UDP,
                           {uint16_t(1 + i % 60000), uint16_t(1 + i % 60000)},
                           Action::Allow,
                           i + 2});
    }
    return g;
}

// kill -9 lands anywhere: in a full build (the child's first applies after
// adopting) or in an in-place patch of the inactive slot (later ones). The
// slot being written is marked incomplete, so rollback never lands on a mix
// either.
TEST_F(DatapathTest, KillDuringApplyLeavesOldOrNewGenerationNeverAMix) {
    uint64_t cg = selfCgroupId();
    auto t0 = std::chrono::steady_clock::now();
    dp().apply(alternating(1, cg));
    // Kill times scale with how long a full apply takes on this machine now.
    auto full_ms = std::max<int64_t>(20, std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now() - t0)
                                             .count());
    auto to1000 = PacketBuilder::ipv4("10.1.0.10", "10.1.0.20").tcp(40000, 1000).build();
    auto to2000 = PacketBuilder::ipv4("10.1.0.10", "10.1.0.20").tcp(40000, 2000).build();
    std::mt19937 rng(42);
    uint64_t next = 2;
    int observed_new = 0;
    for (int round = 0; round < 6; ++round) {
        uint64_t first = next;
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            try {
                Datapath child = Datapath::adopt(options());
                for (uint64_t n = first;; ++n) {
                    child.apply(alternating(n, cg));
                }
            } catch (...) {
            }
            _exit(1);
        }
        std::this_thread::sleep_for(
            std::chrono::milliseconds(full_ms / 2 + int64_t(rng() % uint64_t(4 * full_ms))));
        ASSERT_EQ(kill(pid, SIGKILL), 0);
        int status = 0;
        waitpid(pid, &status, 0);
        ASSERT_TRUE(WIFSIGNALED(status)) << "the applier must die mid-loop";

        uint64_t g = dp().activeGeneration();
        SCOPED_TRACE("round " + std::to_string(round) + ", active generation " + std::to_string(g));
        ASSERT_GE(g, first - 1);
        dp().flushConntrack();
        bool pass1000 = runCgroupIngress(to1000).retval == kSkbPass;
        dp().flushConntrack();
        bool pass2000 = runCgroupIngress(to2000).retval == kSkbPass;
        // Exactly the active generation's rule, nothing of the other one.
        EXPECT_EQ(pass1000, g % 2 == 1);
        EXPECT_EQ(pass2000, g % 2 == 0);
        observed_new += g >= first;

        // The other slot is either a complete generation or marked incomplete.
        if (uint64_t prev = dp().previousGeneration(); prev != 0) {
            dp().rollback();
            ASSERT_EQ(dp().activeGeneration(), prev);
            dp().flushConntrack();
            EXPECT_EQ(runCgroupIngress(to1000).retval == kSkbPass, prev % 2 == 1)
                << "prev " << prev;
            dp().flushConntrack();
            EXPECT_EQ(runCgroupIngress(to2000).retval == kSkbPass, prev % 2 == 0)
                << "prev " << prev;
            dp().rollback();
            ASSERT_EQ(dp().activeGeneration(), g);
        }
        next = g + 1;
    }
    EXPECT_GT(observed_new, 0) << "some kills should land after at least one flip";
}

}  // namespace
}  // namespace ztseg::test
