#include "controller/rollout_plan.hpp"

#include <algorithm>
#include <set>

namespace ztseg::controller {
namespace {

size_t shareOf(size_t n, uint32_t percent) {
    return (n * percent + 99) / 100;  // rounded up: 10% of 5 hosts is 1 host
}

bool hasLabels(const Labels& have, const Labels& want) {
    return std::all_of(want.begin(), want.end(), [&](const auto& kv) {
        auto it = have.find(kv.first);
        return it != have.end() && it->second == kv.second;
    });
}

}  // namespace

std::vector<std::vector<std::string>> planWaves(std::vector<std::string> hosts,
                                                const std::map<std::string, Labels>& host_labels,
                                                const RolloutConfig& cfg) {
    std::sort(hosts.begin(), hosts.end());
    hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
    std::vector<std::vector<std::string>> waves;
    if (hosts.empty()) {
        return waves;
    }
    std::set<std::string> placed;
    std::vector<std::string> canaries;
    if (!cfg.canary_labels.empty()) {
        for (const auto& h : hosts) {
            auto it = host_labels.find(h);
            if (it != host_labels.end() && hasLabels(it->second, cfg.canary_labels)) {
                canaries.push_back(h);
            }
        }
    } else {
        size_t n = std::max<size_t>(1, shareOf(hosts.size(), cfg.canary_percent));
        canaries.assign(hosts.begin(), hosts.begin() + long(std::min(n, hosts.size())));
    }
    placed.insert(canaries.begin(), canaries.end());
    if (!canaries.empty()) {
        waves.push_back(canaries);
    }
    std::vector<uint32_t> shares = cfg.waves;
    if (shares.empty() || shares.back() != 100) {
        shares.push_back(100);
    }
    for (uint32_t p : shares) {
        size_t target = shareOf(hosts.size(), p);
        std::vector<std::string> wave;
        for (const auto& h : hosts) {
            if (placed.size() >= target)
                break;
            if (placed.insert(h).second)
                wave.push_back(h);
        }
        if (!wave.empty()) {
            waves.push_back(std::move(wave));
        }
    }
    return waves;
}

}  // namespace ztseg::controller
