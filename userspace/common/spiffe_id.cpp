#include "common/spiffe_id.hpp"

#include <cstdio>

#include "common/error.hpp"

namespace ztseg {
namespace {

// Limits of the SPIFFE ID spec: the whole URI and the trust domain.
constexpr size_t kMaxIdBytes = 2048;
constexpr size_t kMaxTrustDomainBytes = 255;

bool isTrustDomainChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

bool isSegmentChar(char c) {
    return isTrustDomainChar(c) || (c >= 'A' && c <= 'Z');
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i] >= 'A' && a[i] <= 'Z' ? char(a[i] - 'A' + 'a') : a[i];
        if (x != b[i]) {
            return false;
        }
    }
    return true;
}

// Why `c` cannot appear where it does: the URI component it would start, or
// the character itself.
std::string badChar(char c, std::string_view where) {
    switch (c) {
        case '@':
            return "userinfo ('@') is not allowed";
        case ':':
            return "a port (':') is not allowed";
        case '?':
            return "a query ('?') is not allowed";
        case '#':
            return "a fragment ('#') is not allowed";
        case '%':
            return "percent-encoding ('%') is not allowed";
        default:
            break;
    }
    if (where == "trust domain" && c >= 'A' && c <= 'Z') {
        return "the trust domain must be lowercase";
    }
    char shown[8];
    std::snprintf(shown, sizeof(shown), c >= 0x21 && c < 0x7f ? "%c" : "\\x%02x",
                  static_cast<unsigned char>(c));
    return "character '" + std::string(shown) + "' is not allowed in the " + std::string(where);
}

std::string parseError(std::string_view text, const std::string& why) {
    std::string shown(text.substr(0, 256));
    return "'" + shown + (text.size() > 256 ? "...'" : "'") + " is not a SPIFFE ID: " + why;
}

}  // namespace

std::string SpiffeId::str() const {
    std::string out = "spiffe://" + trust_domain;
    for (const auto& s : segments) {
        out += "/" + s;
    }
    return out;
}

bool isValidTrustDomain(std::string_view name) {
    if (name.empty() || name.size() > kMaxTrustDomainBytes) {
        return false;
    }
    for (char c : name) {
        if (!isTrustDomainChar(c)) {
            return false;
        }
    }
    return true;
}

SpiffeId parseSpiffeId(std::string_view text) {
    auto fail = [&](const std::string& why) { throw Error(parseError(text, why)); };
    if (text.size() > kMaxIdBytes) {
        fail("longer than " + std::to_string(kMaxIdBytes) + " bytes");
    }
    constexpr std::string_view kScheme = "spiffe://";
    if (!equalsIgnoreCase(text.substr(0, kScheme.size()), kScheme)) {
        fail("the scheme must be spiffe://");
    }
    std::string_view rest = text.substr(kScheme.size());
    size_t slash = rest.find('/');
    std::string_view domain = rest.substr(0, slash);
    if (domain.empty()) {
        fail("the trust domain is empty");
    }
    for (char c : domain) {
        if (!isTrustDomainChar(c)) {
            fail(badChar(c, "trust domain"));
        }
    }
    if (domain.size() > kMaxTrustDomainBytes) {
        fail("the trust domain is longer than " + std::to_string(kMaxTrustDomainBytes) + " bytes");
    }
    SpiffeId id;
    id.trust_domain = std::string(domain);
    if (slash == std::string_view::npos) {
        return id;
    }
    std::string_view path = rest.substr(slash);  // "/seg/seg..."
    while (!path.empty()) {
        path.remove_prefix(1);  // the '/'
        std::string_view seg = path.substr(0, path.find('/'));
        for (char c : seg) {
            if (!isSegmentChar(c)) {
                fail(badChar(c, "path"));
            }
        }
        if (seg.empty()) {
            fail(path.empty() ? "a trailing '/' is not allowed" : "empty path segment ('//')");
        }
        if (seg == "." || seg == "..") {
            fail("path segment '" + std::string(seg) + "' is not allowed");
        }
        id.segments.emplace_back(seg);
        path.remove_prefix(seg.size());
    }
    return id;
}

bool inFleet(const SpiffeId& id, std::string_view fleet) {
    return !fleet.empty() && id.trust_domain == fleet;
}

bool isFleetController(const SpiffeId& id, std::string_view fleet) {
    return inFleet(id, fleet) && id.segments.size() == 1 && id.segments[0] == "controller";
}

std::optional<std::string> fleetHost(const SpiffeId& id, std::string_view fleet) {
    if (inFleet(id, fleet) && id.segments.size() == 2 && id.segments[0] == "host") {
        return id.segments[1];
    }
    return std::nullopt;
}

}  // namespace ztseg
