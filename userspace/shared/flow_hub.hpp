// Fan-out of enriched flows to streams (the agent's Flows API, the
// controller link, the controller's fleet-wide FleetFlows).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <variant>
#include <vector>

#include "flows/enrich.hpp"
#include "flows/flow_record.hpp"
#include "model/event_clock.hpp"

namespace ztseg {

// Fan-out of enriched flows to Flows streams. Each subscriber has a bounded
// queue; when it is full the oldest event is dropped and counted in lost().
// The last `history` flows are kept for Flows without follow.
class FlowHub {
  public:
    explicit FlowHub(size_t queue_capacity = 4096, size_t history = 1024);

    void publish(const flows::FlowRecord& r);
    // The event pipeline's way in, a batch at a time: records are built only
    // when someone reads them (a connected stream at once, recent() later,
    // with the view and clock they were published with), so with no stream
    // connected a batch costs copying its last `history` events. Returns
    // whether a connected stream queued the batch (delivered to a remote
    // sink, for the flow log's rotation accounting).
    bool publish(std::span<const ztseg_flow_event> events,
                 const std::shared_ptr<const flows::EnrichView>& view, const EventClock& clock);
    std::vector<flows::FlowRecord> recent() const;

    // One stream's queue; guarded by the hub.
    struct Subscription {
        std::deque<flows::FlowRecord> queue;
    };
    std::shared_ptr<Subscription> subscribe(bool with_history);
    void unsubscribe(const std::shared_ptr<Subscription>& s);
    // The subscription's next flow; nullopt after `timeout` or once closed.
    std::optional<flows::FlowRecord> next(Subscription& s, std::chrono::milliseconds timeout);
    void close();  // wakes every subscriber; next() returns nullopt from now on
    bool closed() const;

    uint64_t lost() const;  // events dropped from full subscriber queues

  private:
    struct Unenriched {
        ztseg_flow_event ev;
        std::shared_ptr<const flows::EnrichView> view;
        EventClock clock;
    };
    using Recent = std::variant<flows::FlowRecord, Unenriched>;
    Recent& nextHistorySlotLocked();               // the slot to overwrite; needs history_size_ > 0
    void queueLocked(const flows::FlowRecord& r);  // to every stream, oldest dropped if full
    std::vector<flows::FlowRecord> recentLocked() const;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    size_t capacity_, history_size_;
    std::vector<Recent> history_;  // ring: history_next_ is the oldest once full
    size_t history_next_ = 0;
    std::set<std::shared_ptr<Subscription>> subs_;
    uint64_t lost_ = 0;
    bool closed_ = false;
};

}  // namespace ztseg
