// Direct mode distribution: the open Connect streams of the agents, by host.
// A host that connects again replaces (and cancels) its older stream.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "controller.grpc.pb.h"
#include "controller/distributor.hpp"

namespace ztseg::controller {

using AgentStream = grpc::ServerReaderWriter<v1::ControllerMessage, v1::AgentMessage>;

// One agent's stream. Writes are serialized; after close() they are dropped
// (the gRPC handler that owns the stream has returned or is returning).
class AgentSession {
  public:
    AgentSession(grpc::ServerContext* ctx, AgentStream* stream, uint64_t generation = 0)
        : ctx_(ctx), stream_(stream), generation_(generation) {}
    bool write(const v1::ControllerMessage& m);
    // What the agent last said it runs (hello, reports): a host with no
    // policy yet has nothing to return to, so it gets no confirm window.
    void setGeneration(uint64_t g) { generation_ = g; }
    uint64_t generation() const { return generation_; }
    void cancel();  // ends the handler's Read loop
    void close();

  private:
    std::mutex mu_;
    grpc::ServerContext* ctx_;
    AgentStream* stream_;
    bool open_ = true;
    std::atomic<uint64_t> generation_;
};

class AgentSessions : public Distributor {
  public:
    // Every push asks for this confirm window (0: none; auto_confirm.hpp).
    explicit AgentSessions(uint32_t confirm_within_ms = 0)
        : confirm_within_ms_(confirm_within_ms) {}
    // Registers the host's stream; an older stream of the same host is cancelled.
    void attach(const std::string& host, std::shared_ptr<AgentSession> s);
    // Forgets the stream if it is still the host's current one.
    void detach(const std::string& host, const std::shared_ptr<AgentSession>& s);

    bool push(const std::string& host, uint64_t generation,
              const std::string& signed_bundle) override;
    void requestReport(const std::string& host, uint64_t id, bool rules) override;
    // The host may keep `generation`: ends its confirm window. False if not sent.
    bool confirm(const std::string& host, uint64_t generation);
    // Any other message to the host's stream. False if not sent.
    bool send(const std::string& host, const v1::ControllerMessage& m);
    std::vector<std::string> hosts();                             // with an open stream
    void publishStable(uint64_t, const std::string&) override {}  // pushed per host
    void publishRollout(const v1::RolloutStatus&) override {}

  private:
    std::shared_ptr<AgentSession> find(const std::string& host);
    const uint32_t confirm_within_ms_;
    std::mutex mu_;
    std::map<std::string, std::shared_ptr<AgentSession>> sessions_;
};

}  // namespace ztseg::controller
