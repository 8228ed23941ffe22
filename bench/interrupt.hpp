// Ctrl-C / SIGTERM end a benchmark between steps instead of killing it, so
// the destructors remove every namespace, rule, XDP program and pin it made.
#pragma once

namespace ztseg::bench {

// Blocks SIGINT and SIGTERM in this thread (and so in threads and children
// started later) and lets a watcher thread record them. Call first in main().
void watchInterrupts();
// Throws ztseg::Error("interrupted") once a signal arrived.
void checkInterrupted();

}  // namespace ztseg::bench
