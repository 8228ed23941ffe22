// A throwaway PKI for mutual-TLS tests, made with the openssl command: CAs and
// leaf certificates (P-256) with the subjectAltNames a test needs, e.g.
// "DNS:controller.lab,URI:spiffe://lab/controller".
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace ztseg::test {

class TestPki {
  public:
    explicit TestPki(std::filesystem::path dir);  // creates dir

    // NAME.pem, NAME.key; subject /CN=<cn> (default NAME).
    void ca(const std::string& name, const std::string& cn = "");
    void leaf(const std::string& name, const std::string& san, const std::string& ca);
    // An X.509 CRL signed by `ca` revoking the named leaves, written to
    // dir/FILE and returned as a path. Valid from `last` to `next`
    // (YYYYMMDDHHMMSSZ); empty: from now for a day.
    std::string crl(const std::string& ca, const std::vector<std::string>& revoked,
                    const std::string& file, const std::string& last = "",
                    const std::string& next = "");

    std::string cert(const std::string& name) const { return (dir_ / (name + ".pem")).string(); }
    std::string key(const std::string& name) const { return (dir_ / (name + ".key")).string(); }
    // The certificate's serial number as `openssl x509 -serial` prints it (hex).
    std::string serial(const std::string& name) const;
    const std::filesystem::path& dir() const { return dir_; }

  private:
    std::filesystem::path dir_;
};

// A whole file as a string ("" if it cannot be read).
std::string slurp(const std::filesystem::path& p);

}  // namespace ztseg::test
