#include "agent/flow_pipeline.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace ztseg::agent {
namespace {

// Under a sustained flood the ring buffer may never drain: a policy change
// still reaches the flow log within this many events. Also the most events a
// batch holds.
constexpr uint32_t kEventsPerView = 4096;

}  // namespace

FlowPipeline::FlowPipeline(const flows::Enricher& enricher, flows::JsonlSink& sink, FlowHub& hub,
                           Options opts)
    : enricher_(enricher), sink_(sink), hub_(hub), opts_(opts) {
    events_.reserve(kEventsPerView);  // never grows: a batch ends when the view is renewed
}

FlowPipeline::~FlowPipeline() {
    flush();
}

void FlowPipeline::takeView() noexcept {
    flush();  // a batch is enriched with one view
    try {
        view_ = enricher_.view();
    } catch (const std::exception& e) {
        spdlog::error("flow pipeline: take enrichment view: {}", e.what());  // keep the old one
    }
    clock_ = EventClock();
    since_view_ = 0;
}

void FlowPipeline::onEvent(const ztseg_flow_event& ev) noexcept {
    if (!view_ || since_view_ >= kEventsPerView) {
        takeView();
    }
    ++since_view_;
    if (!view_) {
        // Never had a view: the line cannot be written; counted as sink loss.
        lines_.add([](flows::TextBuffer&) { throw std::runtime_error("no enrichment view"); });
        return;
    }
    const flows::EnrichView& view = *view_;
    lines_.add([&](flows::TextBuffer& out) { view.appendOcsfLine(ev, clock_, out); });
    events_.push_back(ev);
    if (lines_.bytes() >= opts_.batch_bytes) {
        flush();
    } else if (events_.size() % 64 == 1) {  // a clock read every 64 events
        auto now = std::chrono::steady_clock::now();
        if (events_.size() == 1) {
            oldest_ = now;
        } else if (now - oldest_ >= opts_.max_delay) {
            flush();
        }
    }
}

void FlowPipeline::onDrained() noexcept {
    flush();
    view_.reset();
}

// Streams first: a batch a stream has queued is delivered, even if the
// flow log rotates it away while writing it.
void FlowPipeline::flush() noexcept {
    bool streamed = false;
    if (!events_.empty()) {
        try {
            streamed = hub_.publish(events_, view_, clock_);
        } catch (const std::exception& e) {
            spdlog::error("flow pipeline: publish {} flows to streams: {}", events_.size(),
                          e.what());
        }
        events_.clear();
    }
    if (!lines_.empty()) {
        sink_.write(lines_, streamed);  // never throws; counts what it cannot write
    }
}

}  // namespace ztseg::agent
