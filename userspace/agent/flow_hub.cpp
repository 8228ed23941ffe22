#include "agent/flow_hub.hpp"

namespace ztseg::agent {

FlowHub::FlowHub(size_t queue_capacity, size_t history)
    : capacity_(queue_capacity), history_size_(history) {}

void FlowHub::publish(const flows::FlowRecord& r) {
    {
        std::lock_guard lock(mu_);
        if (closed_) {
            return;
        }
        history_.push_back(r);
        if (history_.size() > history_size_) {
            history_.pop_front();
        }
        for (const auto& s : subs_) {
            if (s->queue.size() >= capacity_) {
                s->queue.pop_front();
                ++lost_;
            }
            s->queue.push_back(r);
        }
    }
    cv_.notify_all();
}

std::vector<flows::FlowRecord> FlowHub::recent() const {
    std::lock_guard lock(mu_);
    return {history_.begin(), history_.end()};
}

std::shared_ptr<FlowHub::Subscription> FlowHub::subscribe(bool with_history) {
    auto s = std::make_shared<Subscription>();
    std::lock_guard lock(mu_);
    if (with_history) {
        s->queue.assign(history_.begin(), history_.end());
    }
    subs_.insert(s);
    return s;
}

void FlowHub::unsubscribe(const std::shared_ptr<Subscription>& s) {
    std::lock_guard lock(mu_);
    subs_.erase(s);
}

void FlowHub::close() {
    {
        std::lock_guard lock(mu_);
        closed_ = true;
    }
    cv_.notify_all();
}

bool FlowHub::closed() const {
    std::lock_guard lock(mu_);
    return closed_;
}

uint64_t FlowHub::lost() const {
    std::lock_guard lock(mu_);
    return lost_;
}

std::optional<flows::FlowRecord> FlowHub::next(Subscription& s, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return closed_ || !s.queue.empty(); });
    if (closed_ || s.queue.empty()) {
        return std::nullopt;
    }
    flows::FlowRecord r = std::move(s.queue.front());
    s.queue.pop_front();
    return r;
}

}  // namespace ztseg::agent
