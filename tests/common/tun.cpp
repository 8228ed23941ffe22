#include "common/tun.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ztseg::test {
namespace {

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

TunDevice::TunDevice(const std::string& name, int flags) : name_(name) {
    fd_.reset(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
    if (!fd_) {
        fail("open /dev/net/tun");
    }
    ifreq req{};
    std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
    req.ifr_flags = short(flags);
    if (::ioctl(fd_.get(), TUNSETIFF, &req) != 0) {
        fail("TUNSETIFF " + name);
    }
}

int TunDevice::ifindex() const {
    unsigned i = if_nametoindex(name_.c_str());
    if (i == 0) {
        fail("if_nametoindex " + name_);
    }
    return int(i);
}

void TunDevice::setLinkType(uint16_t arphrd) {
    if (::ioctl(fd_.get(), TUNSETLINK, (unsigned long)arphrd) != 0) {
        fail("TUNSETLINK " + std::to_string(arphrd) + " on " + name_);
    }
}

void TunDevice::write(const std::vector<uint8_t>& packet) const {
    ssize_t n = ::write(fd_.get(), packet.data(), packet.size());
    if (n != ssize_t(packet.size())) {
        fail("write " + std::to_string(packet.size()) + " bytes into " + name_);
    }
}

std::optional<std::vector<uint8_t>> TunDevice::read(std::chrono::milliseconds timeout) const {
    pollfd p{fd_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, int(timeout.count()));
    if (r < 0) {
        fail("poll " + name_);
    }
    if (r == 0) {
        return std::nullopt;
    }
    std::vector<uint8_t> buf(65536);
    ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
    if (n < 0) {
        fail("read from " + name_);
    }
    buf.resize(size_t(n));
    return buf;
}

}  // namespace ztseg::test
