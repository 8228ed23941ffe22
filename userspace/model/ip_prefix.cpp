#include "model/ip_prefix.hpp"

#include <arpa/inet.h>

#include <charconv>

#include "common/error.hpp"

namespace ztseg {

IpPrefix IpPrefix::parse(std::string_view text) {
    IpPrefix p;
    std::string_view addr = text;
    auto slash = text.find('/');
    if (slash != std::string_view::npos) {
        addr = text.substr(0, slash);
    }
    p.family = addr.find(':') != std::string_view::npos ? 6 : 4;
    std::string a(addr);
    if (inet_pton(p.family == 4 ? AF_INET : AF_INET6, a.c_str(), p.addr.data()) != 1) {
        throw Error("invalid IP address '" + std::string(text) + "'");
    }
    p.length = p.maxLength();
    if (slash != std::string_view::npos) {
        auto len = text.substr(slash + 1);
        unsigned v = 0;
        auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), v);
        if (ec != std::errc() || end != len.data() + len.size() || len.empty() ||
            v > p.maxLength()) {
            throw Error("invalid prefix length in '" + std::string(text) + "' (0-" +
                        std::to_string(p.maxLength()) + ")");
        }
        p.length = static_cast<uint8_t>(v);
    }
    // Host bits must be zero so equal prefixes compare equal.
    for (int bit = p.length; bit < p.maxLength(); ++bit) {
        p.addr[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
    }
    return p;
}

bool IpPrefix::containsAddress(int addr_family, const uint8_t* a) const {
    if (addr_family != family) {
        return false;
    }
    for (int bit = 0; bit < length; ++bit) {
        uint8_t m = uint8_t(0x80u >> (bit % 8));
        if ((addr[bit / 8] & m) != (a[bit / 8] & m)) {
            return false;
        }
    }
    return true;
}

bool IpPrefix::contains(const IpPrefix& inner) const {
    return inner.length >= length && containsAddress(inner.family, inner.addr.data());
}

std::string addressToString(int family, const void* addr) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, buf, sizeof(buf));
    return buf;
}

std::string IpPrefix::str() const {
    return addressToString(family, addr.data()) + "/" + std::to_string(length);
}

}  // namespace ztseg
