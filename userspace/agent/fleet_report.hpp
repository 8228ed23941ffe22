// The Report an agent sends its controller (directly or through etcd):
// status, highest applied generation, the time, and the outcome of a push.
#pragma once

#include <cstdint>

#include "agent/api_server.hpp"
#include "controller.pb.h"

namespace ztseg::agent {

// with_rules: include the per-rule hit counts (the controller asks for them).
v1::Report fleetReport(AgentOps& ops, uint64_t request_id, const v1::ApplyResult* apply = nullptr,
                       bool with_rules = false);

}  // namespace ztseg::agent
