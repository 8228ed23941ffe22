// Certificate revocation for mutual-TLS peers: a list of revoked serial
// numbers and, for a real PKI, an X.509 CRL verified against the CA that
// issues the peers' certificates. Loading fails closed: a CRL that does not
// parse, is not signed by a CA of the trust bundle, has expired or is not yet
// valid is an error, never an empty list. Immutable once loaded; holders swap
// the whole object on reload.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

struct X509_crl_st;  // OpenSSL's X509_CRL

namespace ztseg {

struct RevocationSettings {
    std::vector<std::string> serials;  // hex, any case, ':' allowed (normalizeSerial)
    std::string crl;                   // PEM X.509 CRL file; empty: none
    std::string crl_where;             // "file:line:col" of the setting, for errors
};

class Revocation {
  public:
    // Reads and verifies the CRL against the CA certificates in `ca_file`.
    // Throws Error naming the setting's location, the file and the reason.
    static std::shared_ptr<const Revocation> load(const RevocationSettings& s,
                                                  const std::string& ca_file);

    // Why `pem_cert` is refused ("certificate serial 3a0f is revoked (CRL
    // /etc/ztseg/crl.pem)"), or nullopt if it is not revoked. A CRL that has
    // expired since it was loaded refuses every certificate of its issuer.
    std::optional<std::string> check(const std::string& pem_cert) const;
    // "2 serials, CRL /etc/ztseg/crl.pem (3 entries, next update ...)", for logs.
    std::string describe() const;

  private:
    std::set<std::string> serials_;
    std::shared_ptr<X509_crl_st> crl_;
    std::string crl_file_;
};

// "3A:0f:..." is a serial (hex digits and ':' only, at least one digit).
bool isSerialText(const std::string& text);

}  // namespace ztseg
