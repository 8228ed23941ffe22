#include "common/x509_names.hpp"

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <memory>

#include "common/error.hpp"

namespace ztseg {
namespace {

struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};

std::unique_ptr<X509, X509Free> parsePem(const std::string& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), int(pem.size()));
    if (bio == nullptr) {
        return nullptr;
    }
    X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    return std::unique_ptr<X509, X509Free>(x);
}

}  // namespace

std::vector<std::string> uriSansOf(const std::string& pem_cert) {
    std::vector<std::string> out;
    auto x = parsePem(pem_cert);
    if (!x) {
        return out;
    }
    auto* names = static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(x.get(), NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
        if (n->type == GEN_URI) {
            const ASN1_IA5STRING* s = n->d.uniformResourceIdentifier;
            out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                             size_t(ASN1_STRING_length(s)));
        }
    }
    GENERAL_NAMES_free(names);
    return out;
}

SpiffeId spiffeIdOf(const std::string& pem_cert) {
    if (!parsePem(pem_cert)) {
        throw Error("the certificate does not parse");
    }
    std::vector<std::string> uris = uriSansOf(pem_cert);
    if (uris.empty()) {
        throw Error("the certificate has no URI SAN (an X.509-SVID names one spiffe:// ID)");
    }
    if (uris.size() > 1) {
        std::string all;
        for (const auto& u : uris) {
            all += (all.empty() ? "" : ", ") + u;
        }
        throw Error("the certificate has " + std::to_string(uris.size()) + " URI SANs (" + all +
                    "); an X.509-SVID has exactly one, so none of them is trusted");
    }
    return parseSpiffeId(uris[0]);
}

std::string serialOf(const std::string& pem_cert) {
    auto x = parsePem(pem_cert);
    if (!x) {
        return "";
    }
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x.get()), nullptr);
    if (bn == nullptr) {
        return "";
    }
    char* hex = BN_bn2hex(bn);
    std::string out = hex != nullptr ? normalizeSerial(hex) : "";
    OPENSSL_free(hex);
    BN_free(bn);
    return out;
}

std::string normalizeSerial(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (std::isxdigit(static_cast<unsigned char>(c))) {
            if (out.empty() && c == '0') {
                continue;
            }
            out += char(std::tolower(static_cast<unsigned char>(c)));
        }
    }
    return out.empty() ? "0" : out;
}

}  // namespace ztseg
