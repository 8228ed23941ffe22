// Datapath flow event -> FlowRecord, using the compiled policy for identity
// labels/names and rule sources. The policy and the cgroup -> workload name
// map can be swapped while other threads enrich.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "abi.h"
#include "flows/flow_record.hpp"
#include "flows/text_buffer.hpp"
#include "model/event_clock.hpp"
#include "policy/compiler.hpp"

namespace ztseg::flows {

using WorkloadNames = std::map<uint64_t, std::string>;  // cgroup id -> workload name

// One consistent state of enrichment: policy, workload names, host, and the
// JSON text of every identity, rule and workload escaped once, so the flow
// log's per-event work is lookups and copies. Immutable; the event pipeline
// takes one per batch of events (Enricher::view()).
class EnrichView {
  public:
    // The part built once per policy (identities and rules as JSON text) and
    // the part built once per workload name map; Enricher makes both.
    struct PolicyText;
    struct NamesText;

    EnrichView(std::shared_ptr<const PolicyText> policy, std::shared_ptr<const NamesText> names,
               std::string host);

    // Never throws for any event content: unknown identities, rules, hooks or
    // reasons come out as empty names / "unknown".
    FlowRecord enrich(const ztseg_flow_event& ev, const EventClock& clock) const;
    // Appends exactly toOcsfLine(enrich(ev, clock)) without building the
    // record; no allocation once `out` has room.
    void appendOcsfLine(const ztseg_flow_event& ev, const EventClock& clock, TextBuffer& out) const;

    const std::shared_ptr<const policy::CompiledPolicy>& policy() const;

  private:
    friend class Enricher;
    static std::shared_ptr<const PolicyText> makePolicyText(
        std::shared_ptr<const policy::CompiledPolicy> policy);
    static std::shared_ptr<const NamesText> makeNamesText(
        std::shared_ptr<const WorkloadNames> names);

    std::shared_ptr<const PolicyText> policy_;
    std::shared_ptr<const NamesText> names_;
    std::string host_;
    std::string host_json_;
};

class Enricher {
  public:
    using WorkloadNames = flows::WorkloadNames;

    Enricher(const policy::CompiledPolicy& policy, std::string host, WorkloadNames names = {});
    Enricher(std::shared_ptr<const policy::CompiledPolicy> policy, std::string host,
             WorkloadNames names = {});

    void setPolicy(std::shared_ptr<const policy::CompiledPolicy> policy);  // not null
    void setWorkloadNames(WorkloadNames names);
    std::shared_ptr<const policy::CompiledPolicy> policy() const;

    // The current state, for a batch of events.
    std::shared_ptr<const EnrichView> view() const;

    // Never throws for any event content: unknown identities, rules, hooks or
    // reasons come out as empty names / "unknown".
    FlowRecord enrich(const ztseg_flow_event& ev) const;

  private:
    void install(std::shared_ptr<const EnrichView::PolicyText> policy,
                 std::shared_ptr<const EnrichView::NamesText> names);

    std::string host_;
    std::mutex update_mu_;  // serializes setters: each rebuilds the view from the other part
    mutable std::mutex mu_;
    std::shared_ptr<const EnrichView::PolicyText> policy_;
    std::shared_ptr<const EnrichView::NamesText> names_;
    std::shared_ptr<const EnrichView> view_;
};

}  // namespace ztseg::flows
