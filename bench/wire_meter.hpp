// Bytes the controller sends each agent, counted at the agents on the wire
// messages: every ControllerMessage an agent's Connect stream receives (its
// serialized protobuf size, whatever it carries: bundle pushes, deltas,
// report requests), attributed to the host named in the stream's Hello. A
// process-wide gRPC client interceptor, so the agent's own ControllerLink
// is measured unchanged. gRPC framing and TLS records are not included.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace ztseg::bench {

class WireMeter {
  public:
    // The process's meter; its interceptor is installed on first use, which
    // must come before this process makes any gRPC call it should count.
    static WireMeter& instance();

    struct Count {
        uint64_t streams = 0;  // Connect streams opened (a reconnect opens another)
        uint64_t messages = 0;
        uint64_t bytes = 0;
    };
    Count received(const std::string& host) const;
    void add(const std::string& host, uint64_t bytes);
    void opened(const std::string& host);

  private:
    WireMeter() = default;
    mutable std::mutex mu_;
    std::map<std::string, Count> by_host_;
};

}  // namespace ztseg::bench
