// ztseg-controller's gRPC server (userspace/proto/controller.proto):
// - TCP (api.listen), mutual TLS only: agents. A client certificate must chain
//   to api.tls.ca, name the host as spiffe://<fleet>/host/<name> and be on
//   no revocation list (serial or host); the Hello must name the same host.
//   Anything else is refused (PERMISSION_DENIED) and logged.
// - Unix socket (api.unix_socket, 0600 in a 0700 directory): operators:
//   FleetStatus, Reload, FleetFlows.
#pragma once

#include <memory>

#include "controller/controller.hpp"

namespace grpc {
class Server;
}

namespace ztseg::controller {

class ControllerServer {
  public:
    // Listens and serves on gRPC's threads until destroyed. Throws Error if a
    // listener cannot be set up.
    explicit ControllerServer(Controller& c);
    ~ControllerServer();
    ControllerServer(const ControllerServer&) = delete;
    ControllerServer& operator=(const ControllerServer&) = delete;

    uint16_t tcpPort() const { return tcp_port_; }

  private:
    class Service;
    std::unique_ptr<Service> service_;
    std::unique_ptr<grpc::Server> server_;
    uint16_t tcp_port_ = 0;
};

}  // namespace ztseg::controller
