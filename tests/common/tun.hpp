// Test devices without an Ethernet header: tun devices (IFF_TUN: frames are
// IP packets; IFF_TAP: Ethernet frames) whose link type can be changed with
// TUNSETLINK while down, so one driver stands in for ipip, sit, gre, raw IP
// and unsupported link types alike. Needs root.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/lab.hpp"
#include "common/unique_fd.hpp"

namespace ztseg::test {

// A tun/tap device in the calling thread's network namespace, removed when
// this object goes (not persistent). Starts down.
class TunDevice {
  public:
    // flags: IFF_TUN or IFF_TAP, usually with IFF_NO_PI.
    TunDevice(const std::string& name, int flags);

    const std::string& name() const { return name_; }
    int fd() const { return fd_.get(); }
    int ifindex() const;
    // TUNSETLINK: the link type (ARPHRD_*) the device reports; only while down.
    void setLinkType(uint16_t arphrd);
    // One packet into the device, as if it had arrived from the wire.
    void write(const std::vector<uint8_t>& packet) const;
    // The next packet the stack sent out of the device, or nullopt after
    // `timeout` without one (a guard against hangs, not a verdict).
    std::optional<std::vector<uint8_t>> read(std::chrono::milliseconds timeout) const;

  private:
    std::string name_;
    UniqueFd fd_;
};

}  // namespace ztseg::test
