// Datapath: the per-cgroup hooks (cgroup_skb, connect, sendmsg), attached by
// links pinned under links/ so they outlive the process.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "common/cgroup.hpp"
#include "common/error.hpp"
#include "datapath/cgroup_hooks.hpp"
#include "datapath/datapath.hpp"
#include "datapath/pins.hpp"

namespace fs = std::filesystem;

namespace ztseg {

using pins::cgroupLinkPin;
using pins::detachPinnedLink;
using pins::linksDir;

void Datapath::attachCgroup(const std::string& cgroup_path) {
    int cfd = ::open(cgroup_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cfd < 0) {
        throwErrno("open cgroup " + cgroup_path, errno);
    }
    UniqueFd cg(cfd);
    uint64_t cgid = cgroupIdOf(cgroup_path);
    std::vector<std::string> pinned;
    try {
        for (size_t i = 0; i < kCgroupHooks.size(); ++i) {
            std::string pin = cgroupLinkPin(opts_.pin_dir, cgid, kCgroupHooks[i].short_);
            if (fs::exists(pin)) {
                detachPinnedLink(pin);
            }
            int fd =
                bpf_link_create(cgroup_progs_[i].get(), cg.get(), kCgroupHooks[i].type, nullptr);
            if (fd < 0) {
                throwErrno(
                    "attach " + std::string(kCgroupHooks[i].short_) + " to cgroup " + cgroup_path,
                    errno);
            }
            UniqueFd link(fd);
            if (bpf_obj_pin(link.get(), pin.c_str()) != 0) {
                throwErrno("pin cgroup link at " + pin, errno);
            }
            pinned.push_back(pin);
        }
    } catch (...) {
        for (const auto& p : pinned) {
            detachPinnedLink(p);
        }
        throw;
    }
    spdlog::info("cgroup hooks attached to {} (cgroup id {})", cgroup_path, cgid);
}

void Datapath::detachCgroup(const std::string& cgroup_path) {
    uint64_t cgid = cgroupIdOf(cgroup_path);
    bool any = false;
    for (const auto& h : kCgroupHooks) {
        std::string pin = cgroupLinkPin(opts_.pin_dir, cgid, h.short_);
        if (fs::exists(pin)) {
            detachPinnedLink(pin);
            any = true;
        }
    }
    if (!any) {
        throw Error("detach cgroup: ztseg is not attached to " + cgroup_path);
    }
}

std::vector<uint64_t> Datapath::attachedCgroups() const {
    std::vector<uint64_t> out;
    for (const auto& e : fs::directory_iterator(linksDir(opts_.pin_dir))) {
        std::string name = e.path().filename().string();
        std::string suffix = std::string("-") + kCgroupHooks[0].short_;
        if (name.rfind("cg-", 0) == 0 && name.size() > suffix.size() &&
            name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
            out.push_back(std::stoull(name.substr(3, name.size() - 3 - suffix.size())));
        }
    }
    return out;
}

}  // namespace ztseg
