#include "agent/systemd_notify.hpp"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstring>

namespace ztseg::agent {

SystemdNotifier::SystemdNotifier() {
    uint64_t usec = 0;
    // unset_environment = 0: a restarted child must not inherit a stale
    // watchdog, but ztsegd forks no children, so keep it for diagnostics.
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        interval_ = std::chrono::microseconds(usec);
        spdlog::info("systemd watchdog: pinging every {} ms", usec / 2000);
    }
}

void SystemdNotifier::send(const std::string& text) {
    int rc = sd_notify(0, text.c_str());
    if (rc < 0) {
        spdlog::warn("sd_notify: {}", std::strerror(-rc));
    }
}

void SystemdNotifier::ready(const std::string& status) {
    send("READY=1\nSTATUS=" + status);
    last_ping_ = std::chrono::steady_clock::now();
}

void SystemdNotifier::status(const std::string& status) {
    send("STATUS=" + status);
}

void SystemdNotifier::reloading() {
    send("RELOADING=1");
}

void SystemdNotifier::stopping() {
    send("STOPPING=1\nSTATUS=stopping; pinned enforcement stays in place");
}

void SystemdNotifier::watchdogTick() {
    if (!watchdogEnabled()) {
        return;
    }
    auto now = std::chrono::steady_clock::now();
    if (now - last_ping_ >= interval_ / 2) {
        send("WATCHDOG=1");
        last_ping_ = now;
    }
}

}  // namespace ztseg::agent
