// /healthz on the metrics listener: is this host enforcing what it was told
// to? "starting" until the first adopt/apply and attach are done, then "ready",
// or "degraded" with every reason ztsegd knows of (docs/ztsegd.md#health).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ztseg::agent {

struct Health {
    enum class State { Starting, Ready, Degraded };
    State state = State::Starting;
    std::vector<std::string> reasons;  // why Degraded (empty otherwise)
    uint64_t generation = 0;           // active policy generation
};

std::string_view healthStateName(Health::State s);
// 200 when ready; 503 while starting or degraded (a probe that only reads the
// status code still sees the problem).
int healthHttpStatus(const Health& h);
// {"status":"degraded","reasons":[...],"generation":7,"version":"0.1.0","commit":"..."}
std::string healthJson(const Health& h);

}  // namespace ztseg::agent
