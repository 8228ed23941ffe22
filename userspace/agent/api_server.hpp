// ztsegd's gRPC API (userspace/proto/agent.proto): Apply, Rollback, Confirm, Status and
// the Flows stream, on the unix socket (local admin: root only, every call
// allowed) and, when configured, on TCP with mutual TLS (the controller).
// TCP callers are authorized by the SPIFFE ID in the one URI SAN of their
// client certificate (common/spiffe_id.hpp): exactly spiffe://<fleet>/controller
// may do everything, any other ID of trust domain <fleet> may only read
// (Status, Flows). Revoked certificates (serials, CRL) are refused.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent.pb.h"
#include "common/revocation.hpp"
#include "datapath/wire_proof.hpp"
#include "shared/flow_hub.hpp"
#include "shared/flow_stream.hpp"

namespace grpc {
class Server;
}

namespace ztseg::agent {

// What the API does; the Daemon implements it. Methods run on gRPC threads
// and throw ztseg::Error with the reason when they refuse.
struct AgentOps {
    virtual ~AgentOps() = default;
    // The applied generation. confirm_within_ms > 0: unless confirm() comes
    // within that time, the agent rolls back by itself (confirm_window.hpp).
    virtual uint64_t apply(const std::string& bundle, uint32_t confirm_within_ms) = 0;
    virtual uint64_t rollback() = 0;  // the now active generation
    // Ends the confirm window of `generation` (0: whichever is open).
    virtual uint64_t confirm(uint64_t generation) = 0;
    virtual v1::StatusReply status() = 0;
    virtual v1::PolicyReply policy() = 0;  // the bundle in force
    virtual v1::RulesReply rules() = 0;    // per-rule hit counts of the rules in force
    // The controller's pairwise wire-proof keys for `epoch`, replacing the
    // ones in force (none: proofs off). Throws Error and changes nothing if
    // the datapath refuses them.
    virtual void setWireProof(const WireProofConfig& config, uint64_t epoch) = 0;
};

struct ApiOptions {
    std::string unix_socket;                       // empty: no unix socket
    std::string tcp_listen;                        // host:port, empty: no TCP
    std::string tls_cert, tls_key, tls_ca;         // PEM files, required with tcp_listen
    std::string fleet;                             // names spiffe://<fleet>/...; required with TCP
    std::shared_ptr<const Revocation> revocation;  // null: nothing revoked
};

class ApiServer {
  public:
    // Listens and serves on gRPC's threads until destroyed. Throws Error if a
    // listener cannot be set up (including another ztsegd on the socket).
    ApiServer(const ApiOptions& opts, AgentOps& ops, FlowHub& hub);
    ~ApiServer();  // closes open Flows streams and stops the server
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    // Reload: later calls are checked against `r`, and open Flows streams of
    // certificates it revokes are cut.
    void setRevocation(std::shared_ptr<const Revocation> r);

    uint16_t tcpPort() const { return tcp_port_; }  // the bound port (for tcp_listen ":0")

  private:
    class Service;
    std::unique_ptr<Service> service_;
    std::unique_ptr<grpc::Server> server_;
    FlowHub& hub_;
    uint16_t tcp_port_ = 0;
};

}  // namespace ztseg::agent
