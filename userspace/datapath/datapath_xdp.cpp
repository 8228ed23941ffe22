// Datapath: the ingress stage on host interfaces, XDP on physical NICs and tc
// at tcx ingress on virtual devices. The program follows the link type
// (datapath/link_type.hpp): ztseg_xdp / ztseg_tcx for Ethernet devices,
// ztseg_xdp_l3 / ztseg_tcx_l3 for devices whose frames start at the IP
// header; anything else is refused.
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

// BPF_TCX_INGRESS and BPF_LINK_TYPE_TCX (kernel 6.6): newer than the uapi
// headers of Debian 12's libbpf 1.1, whose bpf_link_create() passes them through.
constexpr auto kBpfTcxIngress = bpf_attach_type(46);
constexpr uint32_t kBpfLinkTypeTcx = 11;

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

const UniqueFd& Datapath::tcxProgram(XdpProgram p) const {
    return p == XdpProgram::L3 ? tcx_l3_prog_ : tcx_prog_;
}

namespace {

// Auto on a virtual device is tcx; elsewhere the request stands.
bool wantsTcx(const LinkFacts& facts, XdpRequest req) {
    return req == XdpRequest::Tcx || (req == XdpRequest::Auto && isVirtualDevice(facts));
}

}  // namespace

std::string Datapath::ingressProgramFor(const std::string& ifname, XdpRequest req) const {
    LinkFacts facts = linkFactsOf(ifname);
    XdpProgram program = xdpProgramFor(facts);
    if (wantsTcx(facts, req) && tcxProgram(program)) {
        return std::string(tcxProgramName(program));
    }
    return std::string(xdpProgramName(program));
}

XdpMode Datapath::attachXdp(const std::string& ifname, XdpRequest req,
                            std::string* fallback_reason) {
    unsigned ifindex = if_nametoindex(ifname.c_str());
    if (ifindex == 0) {
        throw Error("attach XDP: interface '" + ifname + "' not found");
    }
    // Where the device's frames start decides the program; a link type
    // neither program parses (and loopback) is refused here, before anything
    // is detached or attached.
    LinkFacts facts = linkFactsOf(ifname);
    XdpProgram program = xdpProgramFor(facts);
    std::string pin = pins::xdpLinkPin(opts_.pin_dir, ifname);
    auto pinOrThrow = [&](UniqueFd link, const char* what) {
        if (bpf_obj_pin(link.get(), pin.c_str()) != 0) {
            int err = errno;
            bpf_link_detach(link.get());
            throwErrno(std::string("pin ") + what + " link of " + ifname + " at " + pin, err);
        }
    };
    if (fallback_reason != nullptr) {
        fallback_reason->clear();
    }
    // Virtual devices: tc at tcx ingress, on the kernel's own skb. Native XDP
    // on a veth would turn off segmentation offload on its peer (every TCP
    // sender behind it segments in software) and generic XDP works on a
    // private linear copy of every cloned or non-linear skb. A tcx link is
    // made before the link pinned here (XDP or tcx, from a previous run) is
    // removed: the interface is never unenforced in between.
    if (wantsTcx(facts, req)) {
        std::string why;
        if (!tcxProgram(program)) {
            why = "the pinned datapath predates the tcx programs (reinstall to get them)";
        } else {
            int fd =
                bpf_link_create(tcxProgram(program).get(), int(ifindex), kBpfTcxIngress, nullptr);
            if (fd >= 0) {
                UniqueFd link(fd);
                if (fs::exists(pin)) {
                    pins::detachPinnedLink(pin);
                }
                pinOrThrow(std::move(link), "tcx");
                spdlog::info("tcx ingress attached to {} (ifindex {}, {}, {})", ifname, ifindex,
                             tcxProgramName(program),
                             facts.driver.empty() ? "virtual device" : facts.driver);
                return XdpMode::Tcx;
            }
            why = std::string("tcx attach failed: ") + std::strerror(errno);
        }
        // Fail closed: never leave the interface unenforced. Generic XDP
        // judges exactly the same, on a copy of the packet.
        spdlog::warn("interface {}: {}; falling back to generic XDP", ifname, why);
        if (fallback_reason != nullptr) {
            *fallback_reason = why;
        }
        req = XdpRequest::Generic;
    }
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
    pinOrThrow(UniqueFd(fd), "XDP");
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
    return pinnedXdpAttachments(opts_.pin_dir, {progIdOf(xdp_prog_), progIdOf(xdp_l3_prog_),
                                                progIdOf(tcx_prog_), progIdOf(tcx_l3_prog_)});
}

std::vector<XdpAttachment> pinnedXdpAttachments(const std::string& pin_dir,
                                                const IngressProgIds& ids) {
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
        // A tcx link's info (ifindex, attach_type) overlays the XDP one's
        // (ifindex) in bpf_link_info's union.
        a.ifindex = int(info.xdp.ifindex);
        if (a.ifindex == 0) {
            continue;  // interface vanished; the link is defunct
        }
        auto is = [&](uint32_t id) { return id != 0 && info.prog_id == id; };
        a.program = is(ids.xdp)      ? kXdpEthernetProg
                    : is(ids.xdp_l3) ? kXdpL3Prog
                    : is(ids.tcx)    ? kTcxEthernetProg
                    : is(ids.tcx_l3) ? kTcxL3Prog
                                     : "";
        if (info.type == kBpfLinkTypeTcx) {
            a.mode = XdpMode::Tcx;
            out.push_back(a);
            continue;
        }
        LIBBPF_OPTS(bpf_xdp_query_opts, q);
        if (bpf_xdp_query(a.ifindex, 0, &q) == 0) {
            a.mode = q.attach_mode == XDP_ATTACHED_SKB ? XdpMode::Generic : XdpMode::Native;
        }
        out.push_back(a);
    }
    return out;
}

}  // namespace ztseg
