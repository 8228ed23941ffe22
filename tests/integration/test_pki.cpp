#include "integration/test_pki.hpp"

#include <fstream>
#include <sstream>

#include "common/lab.hpp"

namespace ztseg::test {

TestPki::TestPki(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
}

void TestPki::ca(const std::string& name, const std::string& cn) {
    sh("cd " + dir_.string() + " && openssl req -x509 -newkey ec -pkeyopt " +
       "ec_paramgen_curve:P-256 -nodes -keyout " + name + ".key -out " + name +
       ".pem -days 1 -subj /CN=" + (cn.empty() ? name : cn) +
       " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign,cRLSign " +
       ">/dev/null 2>&1");
}

void TestPki::leaf(const std::string& name, const std::string& san, const std::string& ca) {
    sh("cd " + dir_.string() + " && printf 'subjectAltName=" + san +
       "\\nextendedKeyUsage=serverAuth,clientAuth\\n' > " + name + ".ext && " +
       "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + name +
       ".key -out " + name + ".csr -subj /CN=" + name + " >/dev/null 2>&1 && " +
       "openssl x509 -req -in " + name + ".csr -CA " + ca + ".pem -CAkey " + ca +
       ".key -CAcreateserial -days 1 -extfile " + name + ".ext -out " + name +
       ".pem >/dev/null 2>&1");
}

std::string TestPki::crl(const std::string& ca, const std::vector<std::string>& revoked,
                         const std::string& file, const std::string& last,
                         const std::string& next) {
    // `openssl ca` keeps its revocations in a database: a fresh one per CRL.
    std::string db = file + ".index", cnf = file + ".cnf";
    std::ofstream(dir_ / db).close();
    std::ofstream(dir_ / (file + ".crlnumber")) << "01\n";
    std::ofstream(dir_ / cnf) << "[ca]\ndefault_ca = d\n[d]\ndatabase = " << (dir_ / db).string()
                              << "\ncrlnumber = " << (dir_ / (file + ".crlnumber")).string()
                              << "\ndefault_md = sha256\ndefault_crl_days = 1\n";
    std::string ca_args = " -config " + cnf + " -keyfile " + ca + ".key -cert " + ca + ".pem";
    std::string cmd = "cd " + dir_.string();
    for (const auto& name : revoked) {
        cmd += " && openssl ca" + ca_args + " -revoke " + name + ".pem >/dev/null 2>&1";
    }
    cmd += " && openssl ca" + ca_args + " -gencrl -out " + file +
           (last.empty() ? "" : " -crl_lastupdate " + last) +
           (next.empty() ? "" : " -crl_nextupdate " + next) + " >/dev/null 2>&1";
    sh(cmd);
    return (dir_ / file).string();
}

std::string TestPki::serial(const std::string& name) const {
    std::string out = shOut("openssl x509 -noout -serial -in " + cert(name));
    auto eq = out.find('=');
    out = eq == std::string::npos ? out : out.substr(eq + 1);
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
}

std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace ztseg::test
