// Everything ztsegd can check before it touches the kernel: listen addresses
// and their ports, TLS material, trusted keys, the API socket, directories.
// A start that would fail on any of these fails here, with the host as it was
// (docs/ztsegd.md#safe-start).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/config.hpp"
#include "common/revocation.hpp"
#include "policy/signing.hpp"

namespace ztseg::agent {

// "host:port" or "[v6]:port" -> {host, port}; Error naming `field` otherwise.
std::pair<std::string, uint16_t> parseListenAddress(const std::string& field,
                                                    const std::string& text);

// What preflight() loaded on the way, so start() does not read it twice.
struct Preflight {
    std::vector<policy::Ed25519Key> trusted_keys;
    std::shared_ptr<const Revocation> revocation;  // fail closed: a bad CRL is a problem
};

// Throws one Error listing every problem found ("api.tls.key /x: ...; ...").
// Creates the flow log and state directories (0750 / 0700) when missing and
// removes a stale API socket; nothing else is changed. The metrics port is
// not trial-bound: the metrics server itself binds it, still before the
// kernel is touched; gRPC cannot bind ahead, so api.tcp is tried here.
Preflight preflight(const AgentConfig& cfg);

// trusted_keys -> public keys (a private key is refused); at start and on SIGHUP.
std::vector<policy::Ed25519Key> loadTrustedKeys(const std::vector<std::string>& paths);

// The checks preflight() runs, for tests.
void checkTlsMaterial(const std::string& field, const TlsConfig& tls);
void checkPortFree(const std::string& field, const std::string& host, uint16_t port);

}  // namespace ztseg::agent
