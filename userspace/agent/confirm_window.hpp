// "Commit confirmed" for ztsegd (issue 17: never lock the operator out). An
// apply may carry a confirm window: unless Confirm reaches ztsegd before the
// deadline, it rolls back by itself to the last confirmed generation.
//
// The pending confirmation is a record in state_dir (`pending-confirm`,
// written like the bundles: temp file, fsync, rename, fsync dir), and the
// bundle to return to has a name of its own there (GenerationStore's return
// point), so a ztsegd that restarts or crashes while a window is open still
// rolls back at the deadline, or at once if the deadline passed while it was
// down. The rollback re-applies that recorded bundle in full: it does not
// depend on what the kernel's other slot holds, nor on this process having
// applied anything. Like `ztsegctl rollback` it is the agent's own decision
// and leaves the highest applied generation (rollback protection) alone.
//
// A new apply while a window is open replaces the window (its generation,
// and the deadline if it asks for one) but keeps the ORIGINAL return point:
// the generation in between was never confirmed either, so it is not known
// to leave the operator a way in; the last confirmed one is.
//
// Every change to the window is made with Enforcement's lock held (apply
// hooks, restore, serialized), so it is ordered with the switches it
// describes; the timer thread takes that lock before its own.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "agent/enforcement.hpp"
#include "shared/confirm_record.hpp"
#include "shared/generation_store.hpp"

namespace ztseg::agent {

struct AutoRollbackRecord {
    uint64_t from = 0, to = 0;
    uint32_t window_ms = 0;
    int64_t at_unix_ms = 0;
    std::string reason;
};

class ConfirmWindow {
  public:
    ConfirmWindow(GenerationStore& store, Enforcement& enforcement);
    ~ConfirmWindow();  // stops the timer (an open window stays recorded)
    ConfirmWindow(const ConfirmWindow&) = delete;
    ConfirmWindow& operator=(const ConfirmWindow&) = delete;

    // At start, once the recorded bundle is in force: picks up a recorded
    // window and starts the timer. A window whose deadline passed rolls back
    // now. A record that cannot be read (torn, garbage) does not stop the
    // start: it is taken as a window whose deadline has passed (fail safe:
    // the change it guarded was never confirmed), so ztsegd returns to the
    // return point if one is recorded, else keeps what is in force; either
    // way the error names the file and the record is removed.
    void resume();

    // The hooks every apply and rollback runs (window_ms 0: none asked).
    // With a window: opens or re-arms it (refused if nothing is in force to
    // return to). Without: an open window now names the new generation, and
    // ends if the switch goes back to its return point.
    Enforcement::SwitchHooks hooks(uint32_t window_ms);

    // Ends the window; it must name `generation` (0: whichever is open).
    // Call under Enforcement::serialized. Throws Error when nothing or
    // another generation awaits confirmation.
    uint64_t confirm(uint64_t generation);

    std::optional<PendingConfirm> pending() const;
    std::optional<AutoRollbackRecord> lastRollback() const;
    uint64_t rollbacks() const;

  private:
    void run();
    void expire(const std::string& why);
    void persist(const std::optional<PendingConfirm>& p);  // mu_ held

    GenerationStore& store_;
    Enforcement& enf_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::optional<PendingConfirm> pending_;
    std::optional<PendingConfirm> before_switch_;  // for a switch that fails
    int64_t retry_at_ms_ = 0;                      // a failed rollback is tried again
    bool corrupt_ = false;                         // the record at start was unreadable
    std::optional<AutoRollbackRecord> last_;
    uint64_t rollbacks_ = 0;
    std::thread thread_;
};

}  // namespace ztseg::agent
