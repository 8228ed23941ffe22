// What ztseg reads from peer certificates: the SPIFFE ID in the URI SAN (the
// identity: spiffe://<fleet>/host/<name>, spiffe://<fleet>/controller) and
// the serial number (for revocation lists).
#pragma once

#include <string>
#include <vector>

#include "common/spiffe_id.hpp"

namespace ztseg {

// The URI SANs in a PEM certificate (empty if none or unparsable).
std::vector<std::string> uriSansOf(const std::string& pem_cert);
// The certificate's identity. The rule (X.509-SVID): exactly one URI SAN, and
// it is a valid SPIFFE ID. A certificate with several URI SANs is refused
// whatever they say, so no verifier can pick a different one than ztseg does.
// Throws Error saying why the certificate names no identity.
SpiffeId spiffeIdOf(const std::string& pem_cert);
// The serial number as lowercase hex without separators ("" if unparsable).
std::string serialOf(const std::string& pem_cert);
// "3A:0f:..." or "3a0f..." -> "3a0f..." (leading zeros dropped), for comparisons.
std::string normalizeSerial(const std::string& text);

}  // namespace ztseg
