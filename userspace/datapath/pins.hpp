// Where Datapath pins its state under the pin directory (maps/, progs/,
// links/), and the helpers every part of Datapath uses on pins. Internal to
// userspace/datapath.
#pragma once

#include <cstdint>
#include <string>

#include "common/unique_fd.hpp"

namespace ztseg::pins {

std::string mapsDir(const std::string& pin);
std::string progsDir(const std::string& pin);
std::string linksDir(const std::string& pin);
std::string xdpLinkPin(const std::string& pin, const std::string& ifname);
std::string cgroupLinkPin(const std::string& pin, uint64_t cgid, const char* hook);

void mkdirOrThrow(const std::string& path);
UniqueFd openPinnedObject(const std::string& path, const std::string& what);
// Detach a pinned link whoever holds it, then remove the pin.
void detachPinnedLink(const std::string& path);

}  // namespace ztseg::pins
