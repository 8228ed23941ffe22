// ztsegctl's connection to the local ztsegd (the unix socket of its gRPC
// API), with errors that say what to do: daemon not running -> how to start
// it; permission denied -> run as root.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "agent.grpc.pb.h"

namespace grpc {
class Status;
class ClientContext;
}  // namespace grpc

namespace ztseg::cli {

inline constexpr const char* kDefaultSocket = "/run/ztseg/ztsegd.sock";

// --socket (default: $ZTSEG_SOCKET, else /run/ztseg/ztsegd.sock).
void addSocketOption(CLI::App* cmd, std::string& socket);

class DaemonClient {
  public:
    // Checks that something accepts connections on the socket first, so the
    // common mistakes get one clear line (throws Error) instead of a gRPC
    // status.
    explicit DaemonClient(std::string socket);

    v1::Agent::Stub& stub() { return *stub_; }
    // A context with a deadline (none for streams that follow).
    static std::unique_ptr<grpc::ClientContext> context(
        std::chrono::seconds deadline = std::chrono::seconds(15));
    // Throws Error "<what>: <reason and what to do>" unless st is OK.
    void check(const grpc::Status& st, const std::string& what) const;
    // True if a ztsegd answers on the socket (for commands that need it stopped).
    static bool running(const std::string& socket);
    // True if the ztsegd there answers a Status call within `deadline` (false:
    // it accepts connections but is hung, stopped with SIGSTOP, or not ztsegd).
    static bool answers(const std::string& socket, std::chrono::seconds deadline);
    // True if no ztsegd is there at all: no socket, or nobody listening on it
    // (not: permission denied, which says nothing about the daemon).
    static bool absent(const std::string& socket);

  private:
    std::string socket_;
    std::unique_ptr<v1::Agent::Stub> stub_;
};

}  // namespace ztseg::cli
