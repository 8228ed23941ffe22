// Forwards TCP connections made to 127.0.0.1:port() in the test process to
// address:to_port inside a network namespace: a gRPC client in the test
// reaches a server in the lab.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "common/lab.hpp"

namespace ztseg::test {

class NetnsForwarder {
  public:
    NetnsForwarder(const NetNs& ns, uint16_t to_port, std::string to_addr = "127.0.0.1");
    ~NetnsForwarder();
    NetnsForwarder(const NetnsForwarder&) = delete;
    NetnsForwarder& operator=(const NetnsForwarder&) = delete;
    uint16_t port() const { return port_; }

  private:
    void pump(int a, int b);
    UniqueFd listener_;
    uint16_t port_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    std::vector<std::thread> pumps_;
};

}  // namespace ztseg::test
