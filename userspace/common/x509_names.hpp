// What ztseg reads from peer certificates: SPIFFE-style URI SANs (the
// identity: spiffe://<fleet>/host/<name>, spiffe://<fleet>/controller) and
// the serial number (for revocation lists).
#pragma once

#include <string>
#include <vector>

namespace ztseg {

// The URI SANs in a PEM certificate (empty if none or unparsable).
std::vector<std::string> uriSansOf(const std::string& pem_cert);
// The serial number as lowercase hex without separators ("" if unparsable).
std::string serialOf(const std::string& pem_cert);
// "3A:0f:..." or "3a0f..." -> "3a0f..." (leading zeros dropped), for comparisons.
std::string normalizeSerial(const std::string& text);

}  // namespace ztseg
