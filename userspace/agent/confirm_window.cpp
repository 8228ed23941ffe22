#include "agent/confirm_window.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <sstream>

#include "common/error.hpp"
#include "common/unix_time.hpp"

namespace ztseg::agent {

ConfirmWindow::ConfirmWindow(GenerationStore& store, Enforcement& enforcement)
    : store_(store), enf_(enforcement) {}

ConfirmWindow::~ConfirmWindow() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

void ConfirmWindow::persist(const std::optional<PendingConfirm>& p) {
    if (p) {
        store_.writeRecord(kPendingConfirmFile, formatPending(*p));
    } else {
        // The return point file may stay behind (a switch that fails puts
        // the record back and needs it); the next window replaces it, and a
        // start without a record removes it.
        store_.removeRecord(kPendingConfirmFile);
    }
    pending_ = p;
    cv_.notify_all();
}

void ConfirmWindow::resume() {
    const uint64_t in_force = enf_.state()->generation();
    bool expired = false;
    {
        std::lock_guard lock(mu_);
        const std::string path = store_.dir() + "/" + kPendingConfirmFile;
        std::optional<std::string> text;
        try {
            text = store_.readRecord(kPendingConfirmFile);
        } catch (const Error&) {
            text = "";  // unreadable counts as garbage
        }
        if (!text) {
            store_.dropReturnPoint();  // left by a crash between the two removals
        } else {
            try {
                PendingConfirm p = parsePending(*text);
                if (in_force == p.return_to) {
                    spdlog::warn(
                        "{}: generation {} is in force, the return point of the window of "
                        "generation {}: nothing left to confirm",
                        path, in_force, p.generation);
                    persist(std::nullopt);
                } else {
                    if (p.generation != in_force) {
                        // A crash between recording the window and the switch.
                        p.generation = in_force;
                        persist(p);
                    }
                    pending_ = p;
                    int64_t left = p.deadline_unix_ms - unixMillis();
                    spdlog::warn(
                        "generation {} awaits confirmation (recorded in {}): {} left, then back "
                        "to generation {}",
                        p.generation, path,
                        left > 0 ? formatWindow(uint32_t(left)) : "the deadline has passed",
                        p.return_to);
                    expired = left <= 0;
                }
            } catch (const Error& e) {
                // Fail safe: the window it recorded was never closed by a
                // confirmation, so the change it guarded is not known to be
                // good. Return to the recorded return point now.
                spdlog::error(
                    "{} cannot be read ({}): taking it as an unconfirmed change whose deadline "
                    "has passed; returning to the recorded return point, if there is one",
                    path, e.what());
                corrupt_ = true;
                pending_ = PendingConfirm{in_force, 0, 0, 0};
                expired = true;
            }
        }
    }
    if (expired) {
        expire("the deadline passed while ztsegd was not running");
    }
    thread_ = std::thread([this] { run(); });
}

Enforcement::SwitchHooks ConfirmWindow::hooks(uint32_t window_ms) {
    Enforcement::SwitchHooks h;
    h.before = [this, window_ms](uint64_t from, uint64_t to) {
        std::lock_guard lock(mu_);
        before_switch_ = pending_;
        if (window_ms == 0) {
            if (!pending_) {
                return;
            }
            PendingConfirm next = *pending_;
            if (to == next.return_to) {
                spdlog::info("generation {} is back in force: the confirm window of {} is closed",
                             to, next.generation);
                persist(std::nullopt);
                return;
            }
            // Still unconfirmed: the deadline stays, and returns past this one too.
            next.generation = to;
            persist(next);
            return;
        }
        if (window_ms > kMaxConfirmWindowMs) {
            throw Error("confirm window " + formatWindow(window_ms) + " is longer than " +
                        formatWindow(kMaxConfirmWindowMs));
        }
        PendingConfirm next;
        if (pending_) {
            next = *pending_;  // the original return point stays (see the header)
        } else {
            if (from == 0) {
                throw Error(
                    "a confirm window needs a generation in force to return to; apply without "
                    "one first");
            }
            store_.keepReturnPoint();
            next.return_to = from;
        }
        next.generation = to;
        next.window_ms = window_ms;
        next.deadline_unix_ms = unixMillis() + window_ms;
        persist(next);
        spdlog::info(
            "generation {} applied with a confirm window of {}: unless confirmed, back to "
            "generation {} at the deadline",
            to, formatWindow(window_ms), next.return_to);
    };
    h.failed = [this] {
        std::lock_guard lock(mu_);
        if (before_switch_) {
            persist(before_switch_);
        } else if (pending_) {
            persist(std::nullopt);
        }
    };
    return h;
}

uint64_t ConfirmWindow::confirm(uint64_t generation) {
    std::lock_guard lock(mu_);
    const uint64_t in_force = enf_.state()->generation();
    if (!pending_) {
        std::string last;
        if (last_) {
            last = "; the last automatic rollback: " + last_->reason;
        }
        throw Error("nothing to confirm: no apply with a confirm window is pending (generation " +
                    std::to_string(in_force) + " is in force)" + last);
    }
    if (generation != 0 && generation != pending_->generation) {
        throw Error("generation " + std::to_string(generation) +
                    " does not await confirmation; generation " +
                    std::to_string(pending_->generation) + " does (back to " +
                    std::to_string(pending_->return_to) + " at the deadline)");
    }
    const PendingConfirm p = *pending_;
    persist(std::nullopt);
    store_.dropReturnPoint();
    spdlog::info("generation {} confirmed, {} ms before its deadline", p.generation,
                 std::max<int64_t>(0, p.deadline_unix_ms - unixMillis()));
    return p.generation;
}

std::optional<PendingConfirm> ConfirmWindow::pending() const {
    std::lock_guard lock(mu_);
    return pending_;
}

std::optional<AutoRollbackRecord> ConfirmWindow::lastRollback() const {
    std::lock_guard lock(mu_);
    return last_;
}

uint64_t ConfirmWindow::rollbacks() const {
    std::lock_guard lock(mu_);
    return rollbacks_;
}

void ConfirmWindow::run() {
    std::unique_lock lock(mu_);
    while (!stop_) {
        if (!pending_) {
            cv_.wait(lock);
            continue;
        }
        const int64_t due = std::max(pending_->deadline_unix_ms, retry_at_ms_);
        const int64_t left = due - unixMillis();
        if (left > 0) {
            // Bounded: the wall clock the deadline is written in may be set meanwhile.
            cv_.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(left, 1000)));
            continue;
        }
        lock.unlock();
        expire("");
        lock.lock();
    }
}

// Back to the return point: Enforcement's lock first, then ours (the order
// every path takes).
void ConfirmWindow::expire(const std::string& why) {
    std::optional<PendingConfirm> was;
    try {
        enf_.restore(
            [&]() -> std::optional<std::string> {
                std::lock_guard lock(mu_);
                if (!pending_ || unixMillis() < pending_->deadline_unix_ms) {
                    return std::nullopt;  // confirmed or re-armed meanwhile
                }
                was = pending_;
                std::optional<std::string> bytes = store_.returnPointBundle();
                if (!bytes) {
                    spdlog::error(
                        "generation {} was not confirmed, but the bundle to return to is not in "
                        "{}: it stays in force",
                        pending_->generation, store_.dir());
                    persist(std::nullopt);
                    corrupt_ = false;
                }
                return bytes;
            },
            [&](uint64_t from, uint64_t to) {
                std::lock_guard lock(mu_);
                store_.restoreReturnPoint();
                persist(std::nullopt);
                std::string reason =
                    corrupt_
                        ? "the pending confirmation record of generation " + std::to_string(from) +
                              " was unreadable; rolled back to " + std::to_string(to)
                        : "generation " + std::to_string(from) + " was not confirmed within " +
                              formatWindow(was->window_ms) + (why.empty() ? "" : " (" + why + ")") +
                              "; rolled back to " + std::to_string(to);
                corrupt_ = false;
                last_ = AutoRollbackRecord{from, to, was->window_ms, unixMillis(), reason};
                ++rollbacks_;
                retry_at_ms_ = 0;
                spdlog::warn("{}", reason);
            });
    } catch (const std::exception& e) {
        std::lock_guard lock(mu_);
        retry_at_ms_ = unixMillis() + 1000;
        spdlog::error("returning to the last confirmed generation failed: {}; trying again in 1 s",
                      e.what());
    }
}

}  // namespace ztseg::agent
