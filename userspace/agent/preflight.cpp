#include "agent/preflight.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/unique_fd.hpp"
#include "common/unix_socket.hpp"
#include "policy/signing.hpp"

namespace ztseg::agent {
namespace {

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

BioPtr pemBio(const std::string& pem) {
    return BioPtr(BIO_new_mem_buf(pem.data(), int(pem.size())), BIO_free);
}

std::string readMaterial(const std::string& field, const std::string& path) {
    if (path.empty()) {
        throw Error(field + " is empty");
    }
    return readFile(path, field);
}

// Makes `dir` (and parents) with `mode` when missing; an existing directory is
// left as the operator made it.
void ensureDirectory(const std::string& field, const std::string& dir, mode_t mode) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(dir, ec)) {
        return;
    }
    if (fs::exists(dir, ec)) {
        throw Error(field + " " + dir + ": exists and is not a directory");
    }
    fs::create_directories(dir, ec);
    if (ec) {
        throw Error(field + " " + dir + ": cannot create: " + ec.message());
    }
    if (::chmod(dir.c_str(), mode) != 0) {
        throwErrno(field + " " + dir + ": chmod", errno);
    }
}

}  // namespace

std::pair<std::string, uint16_t> parseListenAddress(const std::string& field,
                                                    const std::string& text) {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon + 1 == text.size()) {
        throw Error(field + " '" + text + "': expected host:port");
    }
    std::string host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    const std::string port_text = text.substr(colon + 1);
    if (port_text.find_first_not_of("0123456789") != std::string::npos || port_text.size() > 5 ||
        std::stoul(port_text) > 65535) {
        throw Error(field + " '" + text + "': port must be a number from 0 to 65535");
    }
    if (host.empty()) {
        throw Error(field + " '" + text + "': host is empty (0.0.0.0 or :: listen everywhere)");
    }
    return {host, uint16_t(std::stoul(port_text))};
}

void checkPortFree(const std::string& field, const std::string& host, uint16_t port) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
        throw Error(field + " " + host + ":" + service + ": " + ::gai_strerror(rc));
    }
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
    // A trial bind without SO_REUSEPORT: anything listening there already
    // (another agent, cilium-agent, node_exporter) makes it fail.
    UniqueFd fd(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        throwErrno(field + ": socket", errno);
    }
    int yes = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (::bind(fd.get(), res->ai_addr, res->ai_addrlen) != 0) {
        throw Error(field + " " + host + ":" + service + ": cannot listen: " +
                    std::strerror(errno) + " (is another agent using the port?)");
    }
}

void checkTlsMaterial(const std::string& field, const TlsConfig& tls) {
    const std::string cert_pem = readMaterial(field + ".cert", tls.cert);
    const std::string key_pem = readMaterial(field + ".key", tls.key);
    const std::string ca_pem = readMaterial(field + ".ca", tls.ca);
    auto cert_bio = pemBio(cert_pem);
    X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr), X509_free);
    if (!cert) {
        throw Error(field + ".cert " + tls.cert + ": no PEM certificate in it");
    }
    auto key_bio = pemBio(key_pem);
    KeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
    if (!key) {
        throw Error(field + ".key " + tls.key + ": no PEM private key in it");
    }
    if (X509_check_private_key(cert.get(), key.get()) != 1) {
        throw Error(field + ".key " + tls.key + ": does not belong to the certificate " + tls.cert);
    }
    auto ca_bio = pemBio(ca_pem);
    X509Ptr ca(PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr), X509_free);
    if (!ca) {
        throw Error(field + ".ca " + tls.ca + ": no PEM certificate in it");
    }
}

std::vector<policy::Ed25519Key> loadTrustedKeys(const std::vector<std::string>& paths) {
    std::vector<policy::Ed25519Key> keys;
    std::string ids;
    for (const auto& p : paths) {
        try {
            keys.push_back(policy::Ed25519Key::loadTrusted(p));
        } catch (const Error& e) {
            throw Error(std::string("trusted_keys: ") + e.what());
        }
        ids += (ids.empty() ? "" : ", ") + keys.back().keyId();
    }
    if (keys.empty()) {
        spdlog::warn(
            "no trusted_keys: standalone mode, bundles are applied WITHOUT signature "
            "checks (only the generation, fleet and expiry are checked)");
    } else {
        spdlog::info("only bundles signed by {} are applied", ids);
    }
    return keys;
}

Preflight preflight(const AgentConfig& cfg) {
    Preflight out;
    std::vector<std::string> problems;
    auto check = [&](auto&& fn) {
        try {
            fn();
        } catch (const std::exception& e) {
            problems.emplace_back(e.what());
        }
    };
    if (!cfg.metrics_listen.empty()) {
        check([&] { parseListenAddress("metrics.listen", cfg.metrics_listen); });
    }
    if (!cfg.tcp_listen.empty()) {
        check([&] {
            auto [host, port] = parseListenAddress("api.tcp", cfg.tcp_listen);
            checkPortFree("api.tcp", host, port);
        });
    }
    if (!cfg.tls.cert.empty() || !cfg.tls.key.empty() || !cfg.tls.ca.empty() ||
        !cfg.tcp_listen.empty() || !cfg.controller.address.empty()) {
        check([&] { checkTlsMaterial("api.tls", cfg.tls); });
    }
    if (!cfg.controller.address.empty()) {
        check([&] { parseListenAddress("controller.address", cfg.controller.address); });
    }
    check([&] { out.trusted_keys = loadTrustedKeys(cfg.trusted_keys); });
    check([&] {
        out.revocation = Revocation::load(cfg.revoked, cfg.tls.ca);
        spdlog::info("peer certificates refused: {}", out.revocation->describe());
    });
    if (!cfg.unix_socket.empty()) {
        check([&] { prepareUnixSocket(cfg.unix_socket, "api.unix_socket"); });
    }
    const std::string flow_dir = std::filesystem::path(cfg.flow_file).parent_path().string();
    if (!flow_dir.empty()) {
        check([&] { ensureDirectory("flows.file", flow_dir, 0750); });
    }
    check([&] { ensureDirectory("state_dir", cfg.state_dir, 0700); });
    if (!problems.empty()) {
        std::string all;
        for (const auto& p : problems) {
            all += (all.empty() ? "" : "; ") + p;
        }
        throw Error("configuration refused before touching the kernel: " + all);
    }
    return out;
}

}  // namespace ztseg::agent
