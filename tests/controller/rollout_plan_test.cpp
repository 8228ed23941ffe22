// Wave planning: canaries by label or by share, then cumulative shares, every
// host exactly once, in name order.
#include "controller/rollout_plan.hpp"

#include <gtest/gtest.h>

namespace ztseg::controller {
namespace {

using Waves = std::vector<std::vector<std::string>>;

TEST(RolloutPlan, CanaryByLabelThenCumulativeShares) {
    RolloutConfig cfg;
    cfg.canary_labels = {{"role", "canary"}};
    cfg.waves = {50, 100};
    Waves w = planWaves({"e", "d", "c", "b", "a"}, {{"c", {{"role", "canary"}}}}, cfg);
    EXPECT_EQ(w, (Waves{{"c"}, {"a", "b"}, {"d", "e"}}));
}

TEST(RolloutPlan, CanaryByShareIsAtLeastOneHost) {
    RolloutConfig cfg;
    cfg.canary_percent = 10;
    cfg.waves = {100};
    EXPECT_EQ(planWaves({"h1", "h2", "h3"}, {}, cfg), (Waves{{"h1"}, {"h2", "h3"}}));
    cfg.canary_percent = 50;
    EXPECT_EQ(planWaves({"h1", "h2", "h3"}, {}, cfg), (Waves{{"h1", "h2"}, {"h3"}}));
}

TEST(RolloutPlan, NoLabeledCanaryOnlineMeansNoCanaryWave) {
    RolloutConfig cfg;
    cfg.canary_labels = {{"role", "canary"}};
    cfg.waves = {50, 100};
    EXPECT_EQ(planWaves({"a", "b"}, {{"a", {{"role", "web"}}}}, cfg), (Waves{{"a"}, {"b"}}));
}

TEST(RolloutPlan, EveryHostOnceAndEmptyWavesDropped) {
    RolloutConfig cfg;
    cfg.canary_percent = 100;
    cfg.waves = {50, 100};
    EXPECT_EQ(planWaves({"b", "a", "a"}, {}, cfg), (Waves{{"a", "b"}}));
    EXPECT_TRUE(planWaves({}, {}, cfg).empty());
    cfg.waves = {};  // the last wave is always "everyone"
    cfg.canary_percent = 1;
    EXPECT_EQ(planWaves({"a", "b", "c"}, {}, cfg), (Waves{{"a"}, {"b", "c"}}));
}

}  // namespace
}  // namespace ztseg::controller
