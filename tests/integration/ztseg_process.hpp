// The real binaries as tests and the demo use them: ztsegd running in a lab
// namespace, and commands (ztsegctl, ztsegd --uninstall) run to completion
// with their output captured.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/lab.hpp"

namespace ztseg::test {

struct CommandResult {
    int status = -1;     // exit status (128 + signal if killed)
    std::string output;  // stdout (and stderr, interleaved as written, unless separate)
    std::string errors;  // stderr when asked for separately
};

// Runs argv[0] (a path) with argv in `ns` (nullptr: this namespace) and waits
// up to `timeout`. Throws if it cannot be started or does not finish.
CommandResult runCommand(const std::vector<std::string>& argv, NetNs* ns = nullptr,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60),
                         bool separate_stderr = false);

// Polls pred every 100 ms for up to `timeout`; its last answer.
bool waitUntil(const std::function<bool()>& pred,
               std::chrono::milliseconds timeout = std::chrono::seconds(10));

struct HttpReply {
    int status = 0;  // 0: no answer
    std::string body;
};
// GET http://127.0.0.1:PORT/PATH from inside `ns`, whatever the status.
HttpReply httpRequestIn(NetNs& ns, uint16_t port, const std::string& path,
                        const std::filesystem::path& scratch);

// The body of GET http://127.0.0.1:PORT/PATH made from inside `ns` ("" if the
// request failed or did not answer 200). The child process hands the body
// over through `scratch`, a file it overwrites.
std::string httpGetIn(NetNs& ns, uint16_t port, const std::string& path,
                      const std::filesystem::path& scratch);

// `ztsegd --config CONFIG` in `ns`, started and ready (its API socket
// answers) when the constructor returns. The destructor stops it (SIGTERM;
// enforcement stays pinned, as in production).
class ZtsegdProcess {
  public:
    ZtsegdProcess(const std::string& ztsegd_path, NetNs& ns, const std::string& config,
                  const std::string& api_socket, const std::string& log_level = "warn");
    ~ZtsegdProcess();
    ZtsegdProcess(const ZtsegdProcess&) = delete;
    ZtsegdProcess& operator=(const ZtsegdProcess&) = delete;

    // SIGTERM and wait; the exit status.
    int stop();
    bool running() { return child_ && child_->running(); }

  private:
    std::unique_ptr<Child> child_;
};

}  // namespace ztseg::test
