// Datapath: XDP on host interfaces. The program follows the link type
// (datapath/link_type.hpp): ztseg_xdp for Ethernet devices, ztseg_xdp_l3 for
// devices whose frames start at the IP header; anything else is refused.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/error.hpp"
#include "datapath/datapath.hpp"
#include "datapath/link_type.hpp"
#include "datapath/pins.hpp"

namespace fs = std::filesystem;

namespace ztseg {
namespace {

// The interface's driver name ("veth", "mlx5_core", ...), "" if unknown.
std::string driverOf(const std::string& ifname) {
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock) {
        return "";
    }
    ethtool_drvinfo info{};
    info.cmd = ETHTOOL_GDRVINFO;
    ifreq req{};
    std::strncpy(req.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    req.ifr_data = reinterpret_cast<char*>(&info);
    if (::ioctl(sock.get(), SIOCETHTOOL, &req) != 0) {
        return "";
    }
    return std::string(info.driver, strnlen(info.driver, sizeof(info.driver)));
}

uint32_t progIdOf(const UniqueFd& prog) {
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (!prog || bpf_obj_get_info_by_fd(prog.get(), &info, &len) != 0) {
        return 0;
    }
    return info.id;
}

}  // namespace

const UniqueFd& Datapath::xdpProgram(XdpProgram p) const {
    return p == XdpProgram::L3 ? xdp_l3_prog_ : xdp_prog_;
}

XdpMode Datapath::attachXdp(const std::string& ifname, XdpRequest req) {
    unsigned ifindex = if_nametoindex(ifname.c_str());
    if (ifindex == 0) {
        throw Error("attach XDP: interface '" + ifname + "' not found");
    }
    // Where the device's frames start decides the program; a link type
    // neither program parses (and loopback) is refused here, before anything
    // is detached or attached.
    XdpProgram program = xdpProgramFor(linkFactsOf(ifname));
    // Native XDP on a veth makes the kernel turn off segmentation offload on
    // its peer: every TCP sender behind it then segments in software (half the
    // bulk throughput measured in bench/), and a flood shares the veth's NAPI
    // queue with allowed traffic. Generic XDP keeps both. Asked for
    // explicitly (xdp_mode: native), native it is.
    if (req == XdpRequest::Auto && driverOf(ifname) == "veth") {
        spdlog::info(
            "interface {} is a veth: generic XDP (native would turn off its peer's "
            "segmentation offload; xdp_mode: native forces it)",
            ifname);
        req = XdpRequest::Generic;
    }
    std::string pin = pins::xdpLinkPin(opts_.pin_dir, ifname);
    if (fs::exists(pin)) {
        pins::detachPinnedLink(pin);  // stale (interface re-created) or re-attach: start clean
    }
    auto tryAttach = [&](uint32_t flags) {
        LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = flags);
        return bpf_link_create(xdpProgram(program).get(), int(ifindex), BPF_XDP, &lo);
    };
    XdpMode mode = req == XdpRequest::Generic ? XdpMode::Generic : XdpMode::Native;
    int fd = tryAttach(mode == XdpMode::Native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
    if (fd < 0 && req == XdpRequest::Auto && errno != EBUSY && errno != EEXIST) {
        int native_err = errno;
        fd = tryAttach(XDP_FLAGS_SKB_MODE);
        if (fd >= 0) {
            mode = XdpMode::Generic;
            spdlog::warn("interface {}: native XDP unavailable ({}), attached in generic mode",
                         ifname, std::strerror(native_err));
        }
    }
    if (fd < 0) {
        int err = errno;
        if (err == EBUSY || err == EEXIST) {
            throw Error("attach XDP to " + ifname +
                        ": another XDP program is attached there (detach it first)");
        }
        throwErrno("attach XDP (" + std::string(xdpModeName(mode)) + ") to " + ifname, err);
    }
    UniqueFd link(fd);
    if (bpf_obj_pin(link.get(), pin.c_str()) != 0) {
        int err = errno;
        bpf_link_detach(link.get());
        throwErrno("pin XDP link of " + ifname + " at " + pin, err);
    }
    spdlog::info("XDP attached to {} (ifindex {}, {} mode, {})", ifname, ifindex, xdpModeName(mode),
                 xdpProgramName(program));
    return mode;
}

void Datapath::detachXdp(const std::string& ifname) {
    std::string pin = pins::xdpLinkPin(opts_.pin_dir, ifname);
    if (!fs::exists(pin)) {
        throw Error("detach XDP: ztseg is not attached to interface '" + ifname + "'");
    }
    pins::detachPinnedLink(pin);
    spdlog::info("XDP detached from {}", ifname);
}

std::vector<XdpAttachment> Datapath::xdpAttachments() const {
    return pinnedXdpAttachments(opts_.pin_dir, progIdOf(xdp_prog_), progIdOf(xdp_l3_prog_));
}

std::vector<XdpAttachment> pinnedXdpAttachments(const std::string& pin_dir, uint32_t eth_prog_id,
                                                uint32_t l3_prog_id) {
    std::vector<XdpAttachment> out;
    for (const auto& e : fs::directory_iterator(pins::linksDir(pin_dir))) {
        std::string name = e.path().filename().string();
        if (name.rfind("xdp-", 0) != 0) {
            continue;
        }
        XdpAttachment a;
        a.ifname = name.substr(4);
        UniqueFd link = pins::openPinnedObject(e.path().string(), "XDP link");
        bpf_link_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(link.get(), &info, &len) != 0) {
            throwErrno("read XDP link info of " + a.ifname, errno);
        }
        a.ifindex = int(info.xdp.ifindex);
        if (a.ifindex == 0) {
            continue;  // interface vanished; the link is defunct
        }
        a.program = info.prog_id == eth_prog_id  ? kXdpEthernetProg
                    : info.prog_id == l3_prog_id ? kXdpL3Prog
                                                 : "";
        LIBBPF_OPTS(bpf_xdp_query_opts, q);
        if (bpf_xdp_query(a.ifindex, 0, &q) == 0) {
            a.mode = q.attach_mode == XDP_ATTACHED_SKB ? XdpMode::Generic : XdpMode::Native;
        }
        out.push_back(a);
    }
    return out;
}

}  // namespace ztseg
