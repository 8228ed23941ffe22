// The controller's confirm windows (userspace/controller/auto_confirm.hpp) with
// two real ztsegd agents: pushes carry rollout.confirm_within_ms; agents that
// stay reachable and on the generation are confirmed automatically and keep
// it past the window; when the controller goes away mid-window, the agents
// return to the last confirmed generation by themselves. The timeline is
// printed.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <future>
#include <iostream>
#include <thread>

#include "fleet/fleet_lab.hpp"

using namespace std::chrono_literals;
using json = nlohmann::json;

namespace ztseg::test {
namespace {

constexpr int kAgents = 2;
using Clock = std::chrono::steady_clock;

class FleetConfirm : public ::testing::Test {
  protected:
    void SetUp() override {
        lab_ = std::make_unique<FleetLab>(kAgents);
        lab_->rollout_yaml =
            "rollout: {canary_percent: 50, waves: [100], ack_timeout_ms: 15000, soak_ms: 0, "
            "confirm_within_ms: 5000, confirm_settle_ms: 1500}\n";
        lab_->writePolicy({kProbePort}, "rev 1");
        lab_->writeControllerConfig(FleetLab::Mode::Direct, {"A"});
        lab_->startController();
        for (int i = 0; i < kAgents; ++i) {
            lab_->writeAgentConfig(i, FleetLab::Mode::Direct);
            lab_->startAgent(i);
        }
        ASSERT_TRUE(allOn(1, 60s)) << "the fleet did not reach generation 1";
    }
    void TearDown() override {
        if (HasFailure()) {
            for (int i = 0; i < kAgents; ++i) {
                std::cerr << "---- agent" << i << " ----\n" << lab_->agentLog(i);
            }
        }
        lab_.reset();
    }
    bool allOn(uint64_t g, std::chrono::milliseconds timeout) {
        return FleetLab::waitFor(
            [&] {
                for (int i = 0; i < kAgents; ++i) {
                    if (lab_->agentGeneration(i) != g)
                        return false;
                }
                return true;
            },
            timeout);
    }
    v1::StatusReply agentStatus(int i) { return lab_->agentStatus(i); }
    size_t events(const std::string& what, uint64_t g) {
        size_t n = 0;
        for (const auto& e : lab_->rolloutLog()) {
            n += e.value("event", "") == what && e.value("generation", 0ull) == g;
        }
        return n;
    }
    std::unique_ptr<FleetLab> lab_;
};

TEST_F(FleetConfirm, HealthyAgentsAreConfirmedAndAgentsThatLoseTheControllerRollBack) {
    // Generation 1 went to agents with nothing in force: no window to return to.
    EXPECT_FALSE(agentStatus(0).has_confirm_pending());

    lab_->writePolicy({kProbePort, 7002}, "rev 2");
    v1::ReloadReply reply = lab_->reload();
    ASSERT_EQ(reply.rollout().state(), "done") << reply.rollout().reason();
    const uint64_t g2 = reply.generation();
    ASSERT_TRUE(allOn(g2, 10s));
    ASSERT_TRUE(FleetLab::waitFor([&] { return events("confirmed", g2) == kAgents; }, 10s))
        << "both agents confirmed automatically after the settle";
    for (int i = 0; i < kAgents; ++i) {
        EXPECT_FALSE(agentStatus(i).has_confirm_pending()) << i;
    }
    std::this_thread::sleep_for(4s);  // past the 5 s window of the push
    EXPECT_TRUE(allOn(g2, 1s)) << "confirmed: no automatic rollback";

    // The controller dies after the agents applied, before the settle ends.
    lab_->writePolicy({kProbePort, 7003}, "rev 3");
    const uint64_t g3 = g2 + 1;
    auto t0 = Clock::now();
    auto rolling = std::async(std::launch::async, [&] {
        try {
            lab_->reload();
        } catch (const std::exception&) {
            // the controller is stopped under it
        }
    });
    ASSERT_TRUE(allOn(g3, 10s));
    const auto applied_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    ASSERT_NE(lab_->controllerPid(), 0);
    ::kill(lab_->controllerPid(), SIGKILL);  // gone at once, as in a crash
    lab_->stopController();                  // reaps it
    rolling.wait();
    ASSERT_TRUE(agentStatus(0).has_confirm_pending());
    EXPECT_EQ(agentStatus(0).confirm_pending().return_to(), g2);
    ASSERT_TRUE(allOn(g2, 10s)) << "unconfirmed agents return to generation " << g2;
    const auto back_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    std::cout << "[timeline] controller push with a 5 s window, controller stopped " << applied_ms
              << " ms after the reload began: both agents back on generation " << g2 << " after "
              << back_ms << " ms\n";
    EXPECT_GE(back_ms, 4500);
    for (int i = 0; i < kAgents; ++i) {
        EXPECT_NE(lab_->agentLog(i).find("generation " + std::to_string(g3) +
                                         " was not confirmed within 5s; rolled back to " +
                                         std::to_string(g2)),
                  std::string::npos)
            << i;
        EXPECT_EQ(agentStatus(i).highest_generation(), g3) << "rollback protection stays";
    }
}

}  // namespace
}  // namespace ztseg::test
