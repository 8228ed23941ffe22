// inspectPinned: the pinned datapath's state, read through read-only fds.
#include "datapath/datapath_inspect.hpp"

#include <bpf/bpf.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>

#include "common/cgroup.hpp"
#include "common/error.hpp"
#include "datapath/bpf_map.hpp"
#include "datapath/cgroup_hooks.hpp"
#include "datapath/pins.hpp"
#include "datapath/raw_socket_guard.hpp"
#include "datapath/slot_maps.hpp"

namespace fs = std::filesystem;

namespace ztseg {
namespace {

BpfMap openMap(const std::string& pin_dir, const char* name) {
    return BpfMap::openPinnedReadOnly(pins::mapsDir(pin_dir) + "/" + name, name);
}

// The id of a pinned program, 0 if it is not pinned. Opening a program's pin
// only takes a reference.
uint32_t pinnedProgId(const std::string& pin_dir, const char* name) {
    std::string path = pins::progsDir(pin_dir) + "/" + name;
    std::error_code ec;
    if (!fs::exists(path, ec)) {
        return 0;
    }
    UniqueFd prog = pins::openPinnedObject(path, "program");
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog.get(), &info, &len) != 0) {
        throwErrno("read the info of program " + path, errno);
    }
    return info.id;
}

std::string pathOfCgroup(uint64_t id) {
    return cgroupPathOfId(id).value_or("");
}

// Active and previous generation, as Datapath::activeGeneration and
// previousGeneration read them.
void readGenerations(const std::string& pin_dir, PinnedDatapath& out, uint32_t& active_raw) {
    BpfMap config = openMap(pin_dir, "ztseg_config");
    BpfMap slots = openMap(pin_dir, "ztseg_slots");
    uint32_t key = ZTSEG_CFG_ABI_VERSION;
    uint64_t v = 0;
    config.lookup(&key, &v);
    if (v != ZTSEG_ABI_VERSION) {
        throw Error("pinned datapath at " + pin_dir + " has ABI " + std::to_string(v) +
                    ", this ztsegctl reads " + std::to_string(ZTSEG_ABI_VERSION) +
                    " (use the ztsegctl of the ztseg that pinned it)");
    }
    key = ZTSEG_CFG_ACTIVE_SLOT;
    v = 0;
    config.lookup(&key, &v);
    active_raw = uint32_t(v);
    if (active_raw == 0) {
        return;
    }
    uint32_t slot = active_raw - 1, other = active_raw == 1 ? 1 : 0;
    ztseg_slot_meta m{};
    slots.lookup(&slot, &m);
    out.active_generation = m.generation;
    m = {};
    slots.lookup(&other, &m);
    out.previous_generation = (m.flags & ZTSEG_SLOTF_BUILDING) ? 0 : m.generation;
}

std::vector<PinnedEndpoint> readEndpoints(const std::string& pin_dir, uint32_t active_raw) {
    std::vector<PinnedEndpoint> out;
    if (active_raw == 0) {
        return out;
    }
    const SlotMapSpec& spec = kSlotMaps[ZTSEG_SLOT_ENDPOINTS];
    BpfMap outer = openMap(pin_dir, spec.name);
    uint32_t slot = active_raw - 1, id = 0;
    if (!outer.lookup(&slot, &id) || id == 0) {
        return out;
    }
    BpfMap inner = BpfMap::openByIdReadOnly(id, std::string(spec.inner_name) + "(active)");
    ztseg_endpoint_key k{}, next{};
    for (const void* prev = nullptr; inner.nextKey(prev, &next); prev = &k) {
        k = next;
        ztseg_identity_info v{};
        if (!inner.lookup(&k, &v)) {
            continue;  // removed meanwhile
        }
        PinnedEndpoint e;
        e.cgroup_id = k.cgroup_id;
        e.identity = v.identity;
        e.mode = (v.flags & ZTSEG_IDF_ENFORCE) ? WorkloadMode::Enforce
                 : (v.flags & ZTSEG_IDF_AUDIT) ? WorkloadMode::Audit
                                               : WorkloadMode::Unmanaged;
        e.raw_sockets = (v.flags & ZTSEG_IDF_RAW_SOCKETS) != 0;
        e.cgroup_path = pathOfCgroup(e.cgroup_id);
        out.push_back(std::move(e));
    }
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.cgroup_id < b.cgroup_id; });
    return out;
}

// links/cg-<id>-<hook>, grouped by cgroup.
std::vector<PinnedCgroupHooks> readCgroupHooks(const std::string& pin_dir) {
    std::map<uint64_t, PinnedCgroupHooks> by_id;
    for (const auto& e : fs::directory_iterator(pins::linksDir(pin_dir))) {
        const std::string name = e.path().filename().string();
        if (name.rfind("cg-", 0) != 0) {
            continue;
        }
        for (const CgroupHook& h : kCgroupHooks) {
            const std::string suffix = std::string("-") + h.short_;
            if (name.size() > 3 + suffix.size() &&
                name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
                uint64_t id = std::stoull(name.substr(3, name.size() - 3 - suffix.size()));
                by_id[id].cgroup_id = id;
                by_id[id].hooks.push_back(h.short_);
            }
        }
    }
    std::vector<PinnedCgroupHooks> out;
    for (auto& [id, c] : by_id) {
        c.cgroup_path = pathOfCgroup(id);
        // In kCgroupHooks order, whatever order the directory listed them in.
        std::vector<std::string> ordered;
        for (const CgroupHook& h : kCgroupHooks) {
            if (std::find(c.hooks.begin(), c.hooks.end(), h.short_) != c.hooks.end()) {
                ordered.push_back(h.short_);
            }
        }
        c.hooks = std::move(ordered);
        out.push_back(std::move(c));
    }
    return out;
}

// Which raw-socket guard is linked, as Datapath::adoptRawSocketGuard finds
// it (without attaching what is missing).
void readRawGuard(const std::string& pin_dir, PinnedDatapath& out) {
    std::error_code ec;
    if (fs::exists(lsmLinkPin(pin_dir), ec)) {
        out.raw_guard = RawGuardKind::Lsm;
        out.raw_guard_mode = rawGuardModeText(RawGuardKind::Lsm, RawKillHook::Auto);
        return;
    }
    std::string kill_prog = pins::progsDir(pin_dir) + "/" + kSockCreateKillProg;
    if (fs::exists(fallbackInetLinkPin(pin_dir), ec) &&
        fs::exists(fallbackKillLinkPin(pin_dir), ec) && fs::exists(kill_prog, ec)) {
        UniqueFd prog = pins::openPinnedObject(kill_prog, "program");
        out.raw_guard = RawGuardKind::Fallback;
        out.raw_guard_mode = rawGuardModeText(RawGuardKind::Fallback, rawKillHookOf(prog.get()));
    }
}

}  // namespace

std::optional<PinnedDatapath> inspectPinned(const std::string& pin_dir) {
    if (!Datapath::isPinned(pin_dir)) {
        return std::nullopt;
    }
    PinnedDatapath out;
    out.pin_dir = pin_dir;
    uint32_t active_raw = 0;
    readGenerations(pin_dir, out, active_raw);
    out.endpoints = readEndpoints(pin_dir, active_raw);
    out.xdp = pinnedXdpAttachments(
        pin_dir, {pinnedProgId(pin_dir, kXdpEthernetProg), pinnedProgId(pin_dir, kXdpL3Prog),
                  pinnedProgId(pin_dir, kTcxEthernetProg), pinnedProgId(pin_dir, kTcxL3Prog)});
    out.cgroups = readCgroupHooks(pin_dir);
    readRawGuard(pin_dir, out);
    return out;
}

}  // namespace ztseg
