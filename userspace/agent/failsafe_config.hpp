// ztsegd.yaml's failsafe: section (docs/ztsegd.md#failsafe-rules).
#pragma once

#include <string>

#include "agent/config.hpp"
#include "common/config_reader.hpp"

namespace ztseg::agent {

// failsafe: {enabled, management, ssh_port, dns, ntp, dhcp, rules}; every
// problem is reported through `r` with its location.
ConfigReader::Handler failsafeField(ConfigReader& r, const std::string& file_name,
                                    FailsafeSettings& out);

}  // namespace ztseg::agent
