#include "agent/xdp_interfaces.hpp"

#include <fnmatch.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/error.hpp"
#include "datapath/link_type.hpp"

namespace ztseg::agent {

XdpInterfaces::XdpInterfaces(Datapath& dp, std::vector<std::string> patterns, XdpRequest mode)
    : dp_(dp), patterns_(patterns), mode_(mode), links_(std::move(patterns)) {}

void XdpInterfaces::start() {
    std::vector<XdpAttachment> current = dp_.xdpAttachments();
    std::vector<LinkInfo> links = links_.dump();
    // A typo in an exact name would otherwise leave an interface silently
    // unprotected: say which configured names match nothing (yet).
    for (const std::string& pattern : patterns_) {
        bool glob = isGlob(pattern);
        bool found = std::any_of(links.begin(), links.end(), [&](const LinkInfo& l) {
            return glob ? fnmatch(pattern.c_str(), l.name.c_str(), 0) == 0 : l.name == pattern;
        });
        if (!found) {
            spdlog::warn(
                "interfaces: no interface {} '{}' exists now; XDP is attached as soon as one "
                "appears",
                glob ? "matches" : "named", pattern);
        }
    }
    // XDP a previous run left where the config no longer wants it (another
    // interfaces setting, cgroup_only) goes.
    for (const XdpAttachment& a : current) {
        bool wanted = std::any_of(links.begin(), links.end(),
                                  [&](const LinkInfo& l) { return l.ifindex == a.ifindex; });
        if (!wanted) {
            detach(a.ifname, "the interfaces setting does not name it");
        }
    }
    for (const LinkInfo& l : links) {
        auto have = std::find_if(current.begin(), current.end(),
                                 [&](const XdpAttachment& a) { return a.ifindex == l.ifindex; });
        if (have == current.end()) {
            attach(l);
            continue;
        }
        // Adopted: keep it when it runs the program this link type needs.
        try {
            if (have->program == dp_.ingressProgramFor(l.name, mode_)) {
                std::lock_guard lock(mu_);
                attached_[l.name] = std::string(xdpModeName(have->mode));
                continue;
            }
            spdlog::warn("interface {}: pinned ingress link runs {}, replacing it", l.name,
                         have->program.empty() ? "an unknown program" : have->program);
            if (have->ifname != l.name) {  // pinned under an older name of this interface
                detach(have->ifname, "it runs the wrong program for its link type");
            }
            // attach() replaces the pinned link (make-before-break for tcx).
        } catch (const Error& e) {
            // Now refused (e.g. loopback attached by an older build): not kept.
            spdlog::error("interface {}: {}", l.name, e.what());
            detach(have->ifname, "its link type is not supported");
            continue;
        }
        attach(l);
    }
}

void XdpInterfaces::attach(const LinkInfo& link) {
    try {
        std::string fallback;
        XdpMode m = dp_.attachXdp(link.name, mode_, &fallback);
        std::string shown(xdpModeName(m));
        if (!fallback.empty()) {
            shown += " (tcx fallback: " + fallback + ")";  // fail closed, and visibly so
        }
        std::lock_guard lock(mu_);
        attached_[link.name] = shown;
    } catch (const Error& e) {
        spdlog::error("interface {}: {}", link.name, e.what());
    }
}

void XdpInterfaces::detach(const std::string& ifname, const char* why) {
    try {
        dp_.detachXdp(ifname);
        spdlog::info("interface {}: XDP detached ({})", ifname, why);
    } catch (const Error& e) {
        spdlog::error("interface {}: {}", ifname, e.what());
    }
    std::lock_guard lock(mu_);
    attached_.erase(ifname);
}

void XdpInterfaces::process() {
    links_.process([this](const LinkEvent& ev) {
        if (ev.kind == LinkEvent::Added) {
            attach(ev.link);
            return;
        }
        try {
            dp_.detachXdp(ev.link.name);
        } catch (const Error& e) {
            spdlog::debug("interface {} gone: {}", ev.link.name, e.what());
        }
        std::lock_guard lock(mu_);
        attached_.erase(ev.link.name);
    });
}

std::map<std::string, std::string> XdpInterfaces::attached() const {
    std::lock_guard lock(mu_);
    return attached_;
}

}  // namespace ztseg::agent
