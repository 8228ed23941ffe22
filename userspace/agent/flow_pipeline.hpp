// ztsegd's work per flow event, kept cheap enough for a million events a
// second on one core. Each event becomes an OCSF line rendered from
// pre-escaped text into a batch (no lock, no syscall, no allocation per
// event); a batch goes to the flow log in large write()s and to the FlowHub
// (which builds FlowRecords only for connected streams) when the ring buffer
// is drained, when it holds Options::batch_bytes, or when its oldest line is
// Options::max_delay old. The enrichment view and the clock offset are taken
// once per batch.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "abi.h"
#include "flows/enrich.hpp"
#include "flows/jsonl_sink.hpp"
#include "model/event_clock.hpp"
#include "shared/flow_hub.hpp"

namespace ztseg::agent {

struct FlowPipelineOptions {
    size_t batch_bytes = 1u << 20;
    std::chrono::milliseconds max_delay{100};
};

class FlowPipeline {
  public:
    using Options = FlowPipelineOptions;

    FlowPipeline(const flows::Enricher& enricher, flows::JsonlSink& sink, FlowHub& hub,
                 Options opts = {});
    ~FlowPipeline();  // flushes
    FlowPipeline(const FlowPipeline&) = delete;
    FlowPipeline& operator=(const FlowPipeline&) = delete;

    // The EventReader callback.
    void onEvent(const ztseg_flow_event& ev) noexcept;
    // The ring buffer is drained: flush the batch (so readers of the file see
    // events promptly) and take a fresh view for the next one.
    void onDrained() noexcept;
    void flush() noexcept;

  private:
    void takeView() noexcept;

    const flows::Enricher& enricher_;
    flows::JsonlSink& sink_;
    FlowHub& hub_;
    Options opts_;
    flows::JsonlSink::Lines lines_;
    std::vector<ztseg_flow_event> events_;           // the batch, for the hub
    std::shared_ptr<const flows::EnrichView> view_;  // null: take one at the next event
    EventClock clock_;
    uint32_t since_view_ = 0;
    std::chrono::steady_clock::time_point oldest_{};  // when the batch's first line came
};

}  // namespace ztseg::agent
