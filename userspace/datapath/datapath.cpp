// Datapath: construction and the program lookup for tests and benchmarks.
// The rest lives by seam: datapath_load.cpp (load, pin, adopt, uninstall),
// datapath_cgroup.cpp and datapath_xdp.cpp (attach), datapath_apply.cpp
// (generations and slots), cgroup_classes.cpp (workload cgroups),
// datapath_counters.cpp (counters, conntrack).
#include "datapath/datapath.hpp"

#include "datapath/cgroup_hooks.hpp"
#include "datapath/grace_period.hpp"
#include "datapath/raw_socket_guard.hpp"
#include "datapath/slot_content.hpp"

namespace ztseg {

Datapath::Datapath(Datapath&&) noexcept = default;
Datapath& Datapath::operator=(Datapath&&) noexcept = default;
Datapath::~Datapath() = default;
Datapath::Datapath() = default;

std::string_view xdpModeName(XdpMode m) {
    switch (m) {
        case XdpMode::Native:
            return "native";
        case XdpMode::Generic:
            return "generic";
        case XdpMode::Tcx:
            return "tcx";
    }
    return "unknown";
}

int Datapath::programFd(std::string_view name) const {
    if (name == kXdpEthernetProg) {
        return xdp_prog_.get();
    }
    if (name == kXdpL3Prog) {
        return xdp_l3_prog_.get();
    }
    if (name == kTcxEthernetProg) {
        return tcx_prog_.get();
    }
    if (name == kTcxL3Prog) {
        return tcx_l3_prog_.get();
    }
    for (size_t i = 0; i < kCgroupHooks.size(); ++i) {
        if (name == kCgroupHooks[i].prog) {
            return cgroup_progs_[i].get();
        }
    }
    if (name == kSockCreateProg) {
        return lsm_prog_.get();  // -1 without BPF LSM
    }
    if (name == kSockCreateInetProg) {
        return raw_inet_prog_.get();  // -1 unless the fallback guards raw sockets
    }
    if (name == kSockCreateKillProg) {
        return raw_kill_prog_.get();
    }
    return -1;
}

}  // namespace ztseg
