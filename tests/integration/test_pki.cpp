#include "integration/test_pki.hpp"

#include <fstream>
#include <sstream>

#include "common/lab.hpp"

namespace ztseg::test {

TestPki::TestPki(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
}

void TestPki::ca(const std::string& name) {
    sh("cd " + dir_.string() + " && openssl req -x509 -newkey ec -pkeyopt " +
       "ec_paramgen_curve:P-256 -nodes -keyout " + name + ".key -out " + name +
       ".pem -days 1 -subj /CN=" + name +
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
