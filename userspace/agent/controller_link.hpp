// ztsegd's side of fleet management: dials ztseg-controller over mutual TLS
// (this host's api.tls certificate is its identity; the controller must
// present exactly the SPIFFE ID spiffe://<fleet>/controller as its one URI
// SAN, in a certificate that is not revoked: revoked.serials, revoked.crl) and keeps one Connect
// stream open (userspace/proto/controller.proto). Pushed bundles go through the same admission as
// every bundle (signature, fleet, expiry, generation); the outcome, applied or refused with the
// reason, is reported back. Sends status reports periodically and on request, and its flow events
// once the controller subscribes. Reconnects with backoff; a reconnecting agent reports its
// generation and the controller brings it up to date.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agent/api_server.hpp"
#include "agent/config.hpp"
#include "common/revocation.hpp"

namespace grpc {
class ClientContext;
}

namespace ztseg::agent {

class ControllerLink {
  public:
    // Starts the link thread. Throws Error if the TLS files cannot be read.
    // `revocation` null: nothing revoked.
    ControllerLink(const AgentConfig& cfg, std::shared_ptr<const Revocation> revocation,
                   AgentOps& ops, FlowHub& hub);
    ~ControllerLink();  // disconnects and joins every thread
    ControllerLink(const ControllerLink&) = delete;
    ControllerLink& operator=(const ControllerLink&) = delete;

    // A Connect stream to a controller that proved its identity is open.
    bool connected() const { return connected_; }
    // Reload: later connections are checked against `r`; a connected
    // controller whose certificate it revokes is disconnected.
    void setRevocation(std::shared_ptr<const Revocation> r);

  private:
    class Session;
    void run();
    std::string refusal(const std::string& pem) const;
    bool sleepFor(std::chrono::milliseconds d);  // false once stopping

    AgentConfig cfg_;
    AgentOps& ops_;
    FlowHub& hub_;
    std::string ca_, key_, cert_;
    std::atomic<std::shared_ptr<const Revocation>> revocation_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::atomic<bool> connected_{false};
    grpc::ClientContext* active_ = nullptr;  // guarded by mu_, cancelled on stop
    std::string peer_pem_;                   // guarded by mu_: the connected controller's
    std::thread thread_;
};

}  // namespace ztseg::agent
