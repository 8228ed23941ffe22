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
#include <vector>

#include "flows/flow_record.hpp"

namespace ztseg::agent {

// Fan-out of enriched flows to Flows streams. Each subscriber has a bounded
// queue; when it is full the oldest event is dropped and counted in lost().
// The last `history` flows are kept for Flows without follow.
class FlowHub {
  public:
    explicit FlowHub(size_t queue_capacity = 4096, size_t history = 1024);

    void publish(const flows::FlowRecord& r);
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
    mutable std::mutex mu_;
    std::condition_variable cv_;
    size_t capacity_, history_size_;
    std::deque<flows::FlowRecord> history_;
    std::set<std::shared_ptr<Subscription>> subs_;
    uint64_t lost_ = 0;
    bool closed_ = false;
};

}  // namespace ztseg::agent
