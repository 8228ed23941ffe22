// SPIFFE IDs (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md)
// parsed strictly, and the three decisions ztseg takes on them. Every place
// that trusts a peer by name goes through here: string prefixes and
// substrings of a URI are never a decision (spiffe://lab/controller-x and
// spiffe://other/svc?x=spiffe://lab/controller are not the controller).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ztseg {

struct SpiffeId {
    std::string trust_domain;           // lowercase [a-z0-9.-_]
    std::vector<std::string> segments;  // the path; empty for the trust domain's own ID
    std::string str() const;            // canonical: spiffe://<trust_domain>/<seg>/...
};

// Strict parser: scheme `spiffe` (any case), a trust domain of lowercase
// [a-z0-9.-_] (no userinfo, no port), path segments of [A-Za-z0-9.-_] that are
// neither empty, `.` nor `..`, no trailing slash, no query, no fragment, no
// percent-encoding. Throws Error "'<text>' is not a SPIFFE ID: <why>".
SpiffeId parseSpiffeId(std::string_view text);

// A usable fleet name: a valid trust domain.
bool isValidTrustDomain(std::string_view name);

// Fleet membership: the trust domain equals the fleet exactly.
bool inFleet(const SpiffeId& id, std::string_view fleet);
// spiffe://<fleet>/controller, exactly.
bool isFleetController(const SpiffeId& id, std::string_view fleet);
// spiffe://<fleet>/host/<name> with exactly one segment after host: <name>.
std::optional<std::string> fleetHost(const SpiffeId& id, std::string_view fleet);

}  // namespace ztseg
