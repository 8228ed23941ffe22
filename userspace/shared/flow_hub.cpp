#include "shared/flow_hub.hpp"

#include <algorithm>

namespace ztseg {

FlowHub::FlowHub(size_t queue_capacity, size_t history)
    : capacity_(queue_capacity), history_size_(history) {
    history_.reserve(history_size_);
}

FlowHub::Recent& FlowHub::nextHistorySlotLocked() {
    if (history_.size() < history_size_) {
        return history_.emplace_back();
    }
    Recent& slot = history_[history_next_];
    history_next_ = (history_next_ + 1) % history_size_;
    return slot;
}

void FlowHub::publish(const flows::FlowRecord& r) {
    {
        std::lock_guard lock(mu_);
        if (closed_) {
            return;
        }
        if (history_size_ > 0) {
            nextHistorySlotLocked() = r;
        }
        queueLocked(r);
    }
    cv_.notify_all();
}

void FlowHub::queueLocked(const flows::FlowRecord& r) {
    for (const auto& s : subs_) {
        if (s->queue.size() >= capacity_) {
            s->queue.pop_front();
            ++lost_;
        }
        s->queue.push_back(r);
    }
}

bool FlowHub::publish(std::span<const ztseg_flow_event> events,
                      const std::shared_ptr<const flows::EnrichView>& view,
                      const EventClock& clock) {
    std::unique_lock lock(mu_);
    if (closed_ || events.empty()) {
        return false;
    }
    // Only the last history_size_ events of the batch stay in the history.
    for (const ztseg_flow_event& ev : events.last(std::min(events.size(), history_size_))) {
        Recent& slot = nextHistorySlotLocked();
        if (auto* u = std::get_if<Unenriched>(&slot)) {
            u->ev = ev;
            if (u->view != view) {  // a batch shares one view: skip the refcount traffic
                u->view = view;
            }
            u->clock = clock;
        } else {
            slot = Unenriched{ev, view, clock};
        }
    }
    if (subs_.empty()) {
        return false;
    }
    for (const ztseg_flow_event& ev : events) {
        queueLocked(view->enrich(ev, clock));
    }
    lock.unlock();
    cv_.notify_all();
    return true;
}

std::vector<flows::FlowRecord> FlowHub::recentLocked() const {
    std::vector<flows::FlowRecord> out;
    out.reserve(history_.size());
    const size_t start = history_.size() < history_size_ ? 0 : history_next_;
    for (size_t i = 0; i < history_.size(); ++i) {
        const Recent& e = history_[(start + i) % history_.size()];
        if (const auto* u = std::get_if<Unenriched>(&e)) {
            out.push_back(u->view->enrich(u->ev, u->clock));
        } else {
            out.push_back(std::get<flows::FlowRecord>(e));
        }
    }
    return out;
}

std::vector<flows::FlowRecord> FlowHub::recent() const {
    std::lock_guard lock(mu_);
    return recentLocked();
}

std::shared_ptr<FlowHub::Subscription> FlowHub::subscribe(bool with_history) {
    auto s = std::make_shared<Subscription>();
    std::lock_guard lock(mu_);
    if (with_history) {
        auto recent = recentLocked();
        s->queue.assign(std::make_move_iterator(recent.begin()),
                        std::make_move_iterator(recent.end()));
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

}  // namespace ztseg
