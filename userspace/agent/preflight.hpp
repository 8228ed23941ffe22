// Everything ztsegd can check before it touches the kernel: listen addresses
// and their ports, TLS material, trusted keys, the API socket, directories.
// A start that would fail on any of these fails here, with the host as it was
// (docs/ztsegd.md#safe-start).
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "agent/config.hpp"

namespace ztseg::agent {

// "host:port" or "[v6]:port" -> {host, port}; Error naming `field` otherwise.
std::pair<std::string, uint16_t> parseListenAddress(const std::string& field,
                                                    const std::string& text);

// Throws one Error listing every problem found ("api.tls.key /x: ...; ...").
// Creates the flow log and state directories (0750 / 0700) when missing and
// removes a stale API socket; nothing else is changed.
void preflight(const AgentConfig& cfg);

// The checks preflight() runs, for tests.
void checkTlsMaterial(const std::string& field, const TlsConfig& tls);
void checkPortFree(const std::string& field, const std::string& host, uint16_t port);

}  // namespace ztseg::agent
