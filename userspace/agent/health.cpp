#include "agent/health.hpp"

#include <nlohmann/json.hpp>

#include "common/version.hpp"

namespace ztseg::agent {

std::string_view healthStateName(Health::State s) {
    switch (s) {
        case Health::State::Starting:
            return "starting";
        case Health::State::Ready:
            return "ready";
        case Health::State::Degraded:
            return "degraded";
    }
    return "unknown";
}

int healthHttpStatus(const Health& h) {
    return h.state == Health::State::Ready ? 200 : 503;
}

std::string healthJson(const Health& h) {
    nlohmann::ordered_json j;
    j["status"] = healthStateName(h.state);
    j["reasons"] = h.reasons;
    j["generation"] = h.generation;
    j["version"] = buildVersion();
    j["commit"] = buildCommit();
    return j.dump() + "\n";
}

}  // namespace ztseg::agent
