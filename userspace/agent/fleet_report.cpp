#include "agent/fleet_report.hpp"

#include "common/unix_time.hpp"

namespace ztseg::agent {

v1::Report fleetReport(AgentOps& ops, uint64_t request_id, const v1::ApplyResult* apply,
                       bool with_rules) {
    v1::Report r;
    r.set_request_id(request_id);
    *r.mutable_status() = ops.status();
    r.set_highest_generation(r.status().highest_generation());
    r.set_time_unix_ms(unixMillis());
    if (apply != nullptr) {
        *r.mutable_apply() = *apply;
    }
    if (with_rules) {
        *r.mutable_rules() = ops.rules();
    }
    return r;
}

}  // namespace ztseg::agent
