// Direct mode, "commit confirmed" for the fleet (issue 17): every push
// carries rollout.confirm_within_ms, so an agent that applied a generation
// rolls back by itself unless the controller confirms it in time. The
// controller confirms a host only once it proved, over its own mutual-TLS
// link, that it is still reachable and runs the generation: after
// rollout.confirm_settle_ms it asks that host for a fresh report, and the
// answer must show the generation active and still awaiting confirmation.
// A host that becomes unreachable in between (its link, or the controller,
// gone) is never confirmed, and returns to its last confirmed generation.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "controller.pb.h"

namespace ztseg::controller {

class AutoConfirm {
  public:
    struct Links {
        std::function<uint64_t()> next_report_id;  // shared with the rollout's requests
        std::function<void(const std::string& host, uint64_t id)> request_report;
        std::function<bool(const std::string& host, uint64_t generation)> confirm;
        // A step for the rollout log: "confirm", "confirm-refused".
        std::function<void(const std::string& what, uint64_t generation, const std::string& host,
                           const std::string& detail)>
            event;
    };
    AutoConfirm(std::chrono::milliseconds settle, Links links);
    ~AutoConfirm();
    AutoConfirm(const AutoConfirm&) = delete;
    AutoConfirm& operator=(const AutoConfirm&) = delete;

    // Every report a connected agent sends.
    void onReport(const std::string& host, const v1::Report& r);
    void onDisconnect(const std::string& host);

  private:
    using Clock = std::chrono::steady_clock;
    struct Window {
        uint64_t generation = 0;
        Clock::time_point probe_at;
        uint64_t probe_id = 0;  // 0: not asked yet
        bool confirmed = false;
    };
    void run();

    const std::chrono::milliseconds settle_;
    Links links_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::map<std::string, Window> hosts_;
    std::thread thread_;
};

}  // namespace ztseg::controller
