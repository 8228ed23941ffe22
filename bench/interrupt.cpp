#include "interrupt.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include "common/error.hpp"

namespace ztseg::bench {

namespace {
std::atomic<bool> g_interrupted{false};
}

void watchInterrupts() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread([set] {
        int sig = 0;
        sigwait(&set, &sig);
        g_interrupted = true;
    }).detach();
}

void checkInterrupted() {
    if (g_interrupted) {
        throw Error("interrupted");
    }
}

}  // namespace ztseg::bench
