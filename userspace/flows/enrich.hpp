// Datapath flow event -> FlowRecord, using the compiled policy for identity
// labels/names and rule sources. The policy and the cgroup -> workload name
// map can be swapped while other threads enrich.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "flows/flow_record.hpp"
#include "maps.h"
#include "policy/compiler.hpp"

namespace ztseg::flows {

class Enricher {
  public:
    using WorkloadNames = std::map<uint64_t, std::string>;  // cgroup id -> workload name

    Enricher(const policy::CompiledPolicy& policy, std::string host, WorkloadNames names = {});
    Enricher(std::shared_ptr<const policy::CompiledPolicy> policy, std::string host,
             WorkloadNames names = {});

    void setPolicy(std::shared_ptr<const policy::CompiledPolicy> policy);  // not null
    void setWorkloadNames(WorkloadNames names);
    std::shared_ptr<const policy::CompiledPolicy> policy() const;

    // Never throws for any event content: unknown identities, rules, hooks or
    // reasons come out as empty names / "unknown".
    FlowRecord enrich(const ztseg_flow_event& ev) const;

  private:
    std::string host_;
    mutable std::mutex mu_;
    std::shared_ptr<const policy::CompiledPolicy> policy_;
    std::shared_ptr<const WorkloadNames> names_;
};

}  // namespace ztseg::flows
