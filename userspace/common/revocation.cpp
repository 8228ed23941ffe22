#include "common/revocation.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cctype>

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/x509_names.hpp"

namespace ztseg {
namespace {

struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

BioPtr memBio(const std::string& s) {
    return BioPtr(BIO_new_mem_buf(s.data(), int(s.size())));
}

std::string timeText(const ASN1_TIME* t) {
    BioPtr out(BIO_new(BIO_s_mem()));
    if (t == nullptr || out == nullptr || ASN1_TIME_print(out.get(), t) != 1) {
        return "?";
    }
    char* data = nullptr;
    long n = BIO_get_mem_data(out.get(), &data);
    return std::string(data, size_t(n));
}

std::string nameText(const X509_NAME* n) {
    char buf[256] = {};
    X509_NAME_oneline(n, buf, sizeof(buf) - 1);
    return buf;
}

std::string opensslError() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    char buf[256] = {};
    ERR_error_string_n(e, buf, sizeof(buf));
    return e == 0 ? "unknown error" : buf;
}

std::vector<X509Ptr> caCertificates(const std::string& ca_file) {
    std::string pem = readFile(ca_file, "api.tls.ca");
    BioPtr bio = memBio(pem);
    std::vector<X509Ptr> out;
    while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
        out.emplace_back(x);
    }
    ERR_clear_error();  // the end of the file reads as an error
    return out;
}

// The CRL is signed by a CA of the trust bundle and current; throws the reason.
void verifyCrl(X509_CRL* crl, const std::string& ca_file) {
    const X509_NAME* issuer = X509_CRL_get_issuer(crl);
    bool issuer_found = false;
    for (const auto& ca : caCertificates(ca_file)) {
        if (X509_NAME_cmp(X509_get_subject_name(ca.get()), issuer) != 0) {
            continue;
        }
        issuer_found = true;
        if (X509_CRL_verify(crl, X509_get0_pubkey(ca.get())) == 1) {
            const ASN1_TIME* last = X509_CRL_get0_lastUpdate(crl);
            const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl);
            if (last == nullptr || X509_cmp_current_time(last) > 0) {
                throw Error("not valid before " + timeText(last) + " (its thisUpdate)");
            }
            if (next != nullptr && X509_cmp_current_time(next) < 0) {
                throw Error("expired at " + timeText(next) +
                            " (its nextUpdate); fetch a current CRL from the CA");
            }
            return;
        }
        ERR_clear_error();
    }
    if (!issuer_found) {
        throw Error("issued by " + nameText(issuer) + ", which is not a CA in api.tls.ca " +
                    ca_file);
    }
    throw Error("its signature does not verify against " + nameText(issuer) + " in api.tls.ca " +
                ca_file);
}

}  // namespace

bool isSerialText(const std::string& text) {
    bool digit = false;
    for (char c : text) {
        if (std::isxdigit(static_cast<unsigned char>(c))) {
            digit = true;
        } else if (c != ':') {
            return false;
        }
    }
    return digit;
}

std::shared_ptr<const Revocation> Revocation::load(const RevocationSettings& s,
                                                   const std::string& ca_file) {
    auto r = std::make_shared<Revocation>();
    for (const auto& serial : s.serials) {
        r->serials_.insert(normalizeSerial(serial));
    }
    if (s.crl.empty()) {
        return r;
    }
    std::string where = (s.crl_where.empty() ? "" : s.crl_where + ": ") + "revoked.crl " + s.crl;
    try {
        std::string pem = readFile(s.crl);
        BioPtr bio = memBio(pem);
        X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr);
        if (crl == nullptr) {
            throw Error("not a PEM X509 CRL (" + opensslError() + ")");
        }
        r->crl_.reset(crl, X509_CRL_free);
        verifyCrl(crl, ca_file);
    } catch (const Error& e) {
        throw Error(where + ": " + e.what() + "; revocation not loaded (fail closed)");
    }
    r->crl_file_ = s.crl;
    return r;
}

std::optional<std::string> Revocation::check(const std::string& pem_cert) const {
    std::string serial = serialOf(pem_cert);
    if (serial.empty()) {
        return "the certificate does not parse";
    }
    if (serials_.count(serial) != 0) {
        return "certificate serial " + serial + " is revoked (revoked.serials)";
    }
    if (!crl_) {
        return std::nullopt;
    }
    BioPtr bio = memBio(pem_cert);
    X509Ptr x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!x) {
        return "the certificate does not parse";
    }
    if (X509_NAME_cmp(X509_get_issuer_name(x.get()), X509_CRL_get_issuer(crl_.get())) != 0) {
        return std::nullopt;  // another CA's certificate: this CRL does not speak for it
    }
    const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl_.get());
    if (next != nullptr && X509_cmp_current_time(next) < 0) {
        return "the CRL " + crl_file_ + " expired at " + timeText(next) +
               "; certificates of its CA are refused until a current one is loaded (SIGHUP)";
    }
    X509_REVOKED* entry = nullptr;
    if (X509_CRL_get0_by_cert(crl_.get(), &entry, x.get()) == 1) {
        return "certificate serial " + serial + " is revoked (CRL " + crl_file_ + ")";
    }
    return std::nullopt;
}

std::string Revocation::describe() const {
    std::string out = std::to_string(serials_.size()) + " revoked serials";
    if (crl_) {
        out += ", CRL " + crl_file_ + " (" +
               std::to_string(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl_.get()))) +
               " entries, next update " + timeText(X509_CRL_get0_nextUpdate(crl_.get())) + ")";
    }
    return out;
}

}  // namespace ztseg
