// ztsegd's gRPC API (userspace/proto/agent.proto): Apply, Rollback, Status and
// the Flows stream, on the unix socket (local admin: root only, every call
// allowed) and, when configured, on TCP with mutual TLS (the controller).
// TCP callers are authorized by the SPIFFE-style URI SAN of their client
// certificate: spiffe://<fleet>/controller may do everything, any other
// spiffe://<fleet>/... name may only read (Status, Flows).
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
#include "flows/flow_record.hpp"

namespace grpc {
class Server;
}

namespace ztseg::agent {

// What the API does; the Daemon implements it. Methods run on gRPC threads
// and throw ztseg::Error with the reason when they refuse.
struct AgentOps {
    virtual ~AgentOps() = default;
    virtual uint64_t apply(const std::string& bundle) = 0;  // the applied generation
    virtual uint64_t rollback() = 0;                        // the now active generation
    virtual v1::StatusReply status() = 0;
};

// Fan-out of enriched flows to Flows streams. Each subscriber has a bounded
// queue; when it is full the oldest event is dropped and counted in lost().
// The last `history` flows are kept for Flows without follow.
class FlowHub {
  public:
    explicit FlowHub(size_t queue_capacity = 4096, size_t history = 1024);

    void publish(const flows::FlowRecord& r);
    std::vector<flows::FlowRecord> recent() const;

    // One stream's queue; guarded by the hub.
    struct Subscription {
        std::deque<flows::FlowRecord> queue;
    };
    std::shared_ptr<Subscription> subscribe(bool with_history);
    void unsubscribe(const std::shared_ptr<Subscription>& s);
    // The subscription's next flow; nullopt after `timeout` or once closed.
    std::optional<flows::FlowRecord> next(Subscription& s, std::chrono::milliseconds timeout);
    void close();  // wakes every subscriber; next() returns nullopt from now on
    bool closed() const;

    uint64_t lost() const;  // events dropped from full subscriber queues

  private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    size_t capacity_, history_size_;
    std::deque<flows::FlowRecord> history_;
    std::set<std::shared_ptr<Subscription>> subs_;
    uint64_t lost_ = 0;
    bool closed_ = false;
};

// FlowRecord -> the API's FlowEvent (with the OCSF JSON line).
v1::FlowEvent toFlowEvent(const flows::FlowRecord& r);

struct ApiOptions {
    std::string unix_socket;                // empty: no unix socket
    std::string tcp_listen;                 // host:port, empty: no TCP
    std::string tls_cert, tls_key, tls_ca;  // PEM files, required with tcp_listen
    std::string fleet;                      // names spiffe://<fleet>/...; required with TCP
};

// The SPIFFE-style URI SANs in a PEM certificate (empty if none or unparsable).
std::vector<std::string> uriSansOf(const std::string& pem_cert);

class ApiServer {
  public:
    // Listens and serves on gRPC's threads until destroyed. Throws Error if a
    // listener cannot be set up (including another ztsegd on the socket).
    ApiServer(const ApiOptions& opts, AgentOps& ops, FlowHub& hub);
    ~ApiServer();  // closes open Flows streams and stops the server
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    uint16_t tcpPort() const { return tcp_port_; }  // the bound port (for tcp_listen ":0")

  private:
    class Service;
    std::unique_ptr<Service> service_;
    std::unique_ptr<grpc::Server> server_;
    FlowHub& hub_;
    uint16_t tcp_port_ = 0;
};

}  // namespace ztseg::agent
