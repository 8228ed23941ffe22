// systemd service notification (Type=notify, WatchdogSec=): readiness once
// enforcement is established, status lines, and watchdog pings from the event
// loop. Every call is a no-op when systemd did not ask for it (no
// NOTIFY_SOCKET), so ztsegd runs the same outside systemd.
#pragma once

#include <chrono>
#include <string>

namespace ztseg::agent {

class SystemdNotifier {
  public:
    // Reads WATCHDOG_USEC/WATCHDOG_PID (sd_watchdog_enabled) once.
    SystemdNotifier();

    void ready(const std::string& status);  // READY=1 + STATUS=
    void status(const std::string& status);
    void reloading();  // RELOADING=1 (then ready() again)
    void stopping();   // STOPPING=1
    // WATCHDOG=1 when half the watchdog interval has passed since the last
    // ping; the event loop calls it on every turn.
    void watchdogTick();
    bool watchdogEnabled() const { return interval_.count() > 0; }

  private:
    void send(const std::string& text);
    std::chrono::microseconds interval_{0};
    std::chrono::steady_clock::time_point last_ping_{};
};

}  // namespace ztseg::agent
