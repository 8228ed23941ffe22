// Which hosts get a new generation in which wave: canaries first (by label,
// else a share of the hosts), then cumulative shares of the rest. Sorted by
// name, so a plan is predictable and reproducible.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "controller/controller_config.hpp"

namespace ztseg::controller {

using Labels = std::map<std::string, std::string>;

// Every host lands in exactly one wave; empty waves are left out. With no
// hosts the plan is empty.
std::vector<std::vector<std::string>> planWaves(std::vector<std::string> hosts,
                                                const std::map<std::string, Labels>& host_labels,
                                                const RolloutConfig& cfg);

}  // namespace ztseg::controller
