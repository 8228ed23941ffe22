// Peer certificate identity and revocation (common/x509_names.hpp,
// common/revocation.hpp) on certificates and CRLs made by the openssl
// command: the one-URI-SAN rule, serial lists, CRLs checked against the CA,
// and every way a CRL fails closed at load.
#include "common/revocation.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "common/error.hpp"
#include "common/lab.hpp"
#include "common/x509_names.hpp"
#include "integration/test_pki.hpp"

namespace fs = std::filesystem;

namespace ztseg::test {
namespace {

class Revoked : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        pki_ = new TestPki(fs::temp_directory_path() / uniqueName("ztrev"));
        pki_->ca("ca");
        pki_->ca("otherca");
        pki_->ca("lookalike", "ca");  // same name as the fleet CA, another key
        pki_->leaf("controller", "URI:spiffe://lab/controller", "ca");
        pki_->leaf("reader", "URI:spiffe://lab/host/reader", "ca");
        pki_->leaf("foreign", "URI:spiffe://lab/host/reader", "otherca");
        pki_->leaf("two", "URI:spiffe://other/svc,URI:spiffe://lab/controller", "ca");
        pki_->leaf("none", "DNS:controller.lab", "ca");
    }
    static void TearDownTestSuite() {
        fs::remove_all(pki_->dir());
        delete pki_;
    }
    static std::string pem(const std::string& name) { return slurp(pki_->cert(name)); }
    static std::string loadError(const RevocationSettings& s, const std::string& ca = "ca") {
        try {
            Revocation::load(s, pki_->cert(ca));
        } catch (const Error& e) {
            return e.what();
        }
        return "";
    }
    static TestPki* pki_;
};
TestPki* Revoked::pki_ = nullptr;

TEST_F(Revoked, ACertificateNamesExactlyOneSpiffeId) {
    EXPECT_EQ(spiffeIdOf(pem("controller")).str(), "spiffe://lab/controller");
    try {
        spiffeIdOf(pem("two"));
        ADD_FAILURE() << "two URI SANs must not name an identity";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("has 2 URI SANs"), std::string::npos) << e.what();
    }
    EXPECT_THROW(spiffeIdOf(pem("none")), Error);
    EXPECT_THROW(spiffeIdOf("not a certificate"), Error);
}

TEST_F(Revoked, SerialsAreMatchedInAnyNotation) {
    std::string serial = pki_->serial("reader");  // upper case hex, as openssl prints it
    std::string colons;
    for (size_t i = 0; i < serial.size(); ++i)
        colons += (i && i % 2 == 0 ? ":" : "") + serial.substr(i, 1);
    auto r = Revocation::load({{colons}, "", ""}, "");
    auto why = r->check(pem("reader"));
    ASSERT_TRUE(why.has_value());
    EXPECT_NE(why->find("certificate serial " + normalizeSerial(serial) + " is revoked"),
              std::string::npos)
        << *why;
    EXPECT_FALSE(r->check(pem("controller")).has_value());
    EXPECT_TRUE(isSerialText("3A:0f"));
    EXPECT_FALSE(isSerialText("3g"));
    EXPECT_FALSE(isSerialText(":"));
}

TEST_F(Revoked, CrlRevokesItsEntriesOfItsCaOnly) {
    std::string crl = pki_->crl("ca", {"reader"}, "ca.crl");
    auto r = Revocation::load({{}, crl, "ztsegd.yaml:9:8"}, pki_->cert("ca"));
    auto why = r->check(pem("reader"));
    ASSERT_TRUE(why.has_value());
    EXPECT_NE(why->find("is revoked (CRL " + crl + ")"), std::string::npos) << *why;
    EXPECT_FALSE(r->check(pem("controller")).has_value()) << "not listed";
    EXPECT_FALSE(r->check(pem("foreign")).has_value()) << "another CA's serial space";
    EXPECT_NE(r->describe().find("1 entries"), std::string::npos) << r->describe();
}

TEST_F(Revoked, CrlThatCannotBeTrustedIsAnErrorAtLoad) {
    std::string other = pki_->crl("otherca", {"foreign"}, "other.crl");
    std::string forged = pki_->crl("lookalike", {}, "forged.crl");
    std::string expired =
        pki_->crl("ca", {"reader"}, "expired.crl", "20200101000000Z", "20200102000000Z");
    std::string future =
        pki_->crl("ca", {"reader"}, "future.crl", "20990101000000Z", "20990102000000Z");
    std::ofstream(pki_->dir() / "junk.crl") << "-----BEGIN X509 CRL-----\nAAAA\n";
    struct Case {
        std::string crl;
        const char* reason;
    } cases[] = {
        {other, "issued by /CN=otherca, which is not a CA in api.tls.ca"},
        {forged, "its signature does not verify against /CN=ca"},
        {expired, "expired at Jan  2 00:00:00 2020 GMT (its nextUpdate)"},
        {future, "not valid before Jan  1 00:00:00 2099 GMT"},
        {(pki_->dir() / "junk.crl").string(), "not a PEM X509 CRL"},
        {(pki_->dir() / "missing.crl").string(), "No such file or directory"},
    };
    for (const auto& c : cases) {
        std::string e = loadError({{}, c.crl, "ztsegd.yaml:9:8"});
        EXPECT_EQ(e.rfind("ztsegd.yaml:9:8: revoked.crl " + c.crl + ": ", 0), 0u) << e;
        EXPECT_NE(e.find(c.reason), std::string::npos) << e;
        EXPECT_NE(e.find("fail closed"), std::string::npos) << e;
    }
}

}  // namespace
}  // namespace ztseg::test
