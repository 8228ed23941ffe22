#include "datapath/datapath.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include "common/cgroup.hpp"
#include "common/error.hpp"
#include "datapath/grace_period.hpp"
#include "datapath/policy_entries.hpp"
#include "datapath/raw_socket_guard.hpp"
#include "datapath/slot_content.hpp"
#include "ztseg.skel.h"

namespace fs = std::filesystem;

namespace ztseg {
namespace {

struct MapSpec {
    const char* name;
    BpfMap Datapath::*member;
};

struct CgroupHook {
    const char* prog;    // pinned program name
    const char* short_;  // link pin suffix
    bpf_attach_type type;
};
constexpr std::array<CgroupHook, 6> kCgroupHooks = {{
    {"ztseg_cg_ingress", "ingress", BPF_CGROUP_INET_INGRESS},
    {"ztseg_cg_egress", "egress", BPF_CGROUP_INET_EGRESS},
    {"ztseg_connect4", "connect4", BPF_CGROUP_INET4_CONNECT},
    {"ztseg_connect6", "connect6", BPF_CGROUP_INET6_CONNECT},
    {"ztseg_sendmsg4", "sendmsg4", BPF_CGROUP_UDP4_SENDMSG},
    {"ztseg_sendmsg6", "sendmsg6", BPF_CGROUP_UDP6_SENDMSG},
}};
constexpr const char* kXdpProg = "ztseg_xdp";

// libbpf's messages go to spdlog; the last ones are kept so a failed load can
// quote the verifier.
std::mutex g_log_mu;
std::string g_log_tail;

int libbpfPrint(libbpf_print_level level, const char* fmt, va_list args) {
    char buf[4096];
    int n = vsnprintf(buf, sizeof(buf), fmt, args);
    std::string line(buf, n > 0 ? std::min<size_t>(size_t(n), sizeof(buf) - 1) : 0);
    while (!line.empty() && line.back() == '\n') {
        line.pop_back();
    }
    if (level == LIBBPF_WARN) {
        spdlog::warn("libbpf: {}", line);
    } else {
        spdlog::debug("libbpf: {}", line);
    }
    std::lock_guard lock(g_log_mu);
    g_log_tail += line + "\n";
    if (g_log_tail.size() > 16384) {
        g_log_tail.erase(0, g_log_tail.size() - 16384);
    }
    return n;
}

void installLibbpfLogger() {
    static std::once_flag once;
    std::call_once(once, [] { libbpf_set_print(libbpfPrint); });
}

std::string takeLibbpfLog() {
    std::lock_guard lock(g_log_mu);
    return std::exchange(g_log_tail, {});
}

std::string mapsDir(const std::string& pin) {
    return pin + "/maps";
}
std::string progsDir(const std::string& pin) {
    return pin + "/progs";
}
std::string linksDir(const std::string& pin) {
    return pin + "/links";
}
std::string xdpLinkPin(const std::string& pin, const std::string& ifname) {
    return linksDir(pin) + "/xdp-" + ifname;
}
std::string cgroupLinkPin(const std::string& pin, uint64_t cgid, const char* hook) {
    return linksDir(pin) + "/cg-" + std::to_string(cgid) + "-" + hook;
}

void mkdirOrThrow(const std::string& path) {
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
        throwErrno("create directory " + path, errno);
    }
}

UniqueFd openPinnedObject(const std::string& path, const std::string& what) {
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) {
        throwErrno("open pinned " + what + " at " + path, errno);
    }
    return UniqueFd(fd);
}

UniqueFd dupFd(int fd, const std::string& what) {
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (d < 0) {
        throwErrno("duplicate fd of " + what, errno);
    }
    return UniqueFd(d);
}

// Detach a pinned link whoever holds it, then remove the pin. Links that
// cannot be detached explicitly (BPF LSM: EOPNOTSUPP) go with their last
// reference, the pin: ztseg never keeps their fds open.
void detachPinnedLink(const std::string& path) {
    int fd = bpf_obj_get(path.c_str());
    if (fd >= 0) {
        UniqueFd link(fd);
        if (bpf_link_detach(link.get()) != 0 && errno != ENOLINK && errno != EINVAL &&
            errno != EOPNOTSUPP) {
            throwErrno("detach link " + path, errno);
        }
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        throwErrno("remove pin " + path, errno);
    }
}

}  // namespace

// The pointer-to-member table needs the private members (friend of Datapath).
struct DatapathMaps {
    static const std::array<MapSpec, 15>& specs() {
        static const std::array<MapSpec, 15> k = {{
            {"ztseg_config", &Datapath::config_},
            {"ztseg_slots", &Datapath::slots_},
            {"ztseg_ident4", &Datapath::ident4_},
            {"ztseg_ident6", &Datapath::ident6_},
            {"ztseg_host4", &Datapath::host4_},
            {"ztseg_host6", &Datapath::host6_},
            {"ztseg_endpoints", &Datapath::endpoints_},
            {"ztseg_policy", &Datapath::policy_},
            {"ztseg_ct", &Datapath::ct_},
            {"ztseg_frags", &Datapath::frags_},
            {"ztseg_flowcache", &Datapath::flowcache_},
            {"ztseg_counters", &Datapath::counters_},
            {"ztseg_evstats", &Datapath::evstats_},
            {"ztseg_ratelimit", &Datapath::ratelimit_},
            {"ztseg_events", &Datapath::events_},
        }};
        return k;
    }
};

namespace {
const std::array<MapSpec, 15>& mapSpecs() {
    return DatapathMaps::specs();
}
}  // namespace

Datapath::Datapath(Datapath&&) noexcept = default;
Datapath& Datapath::operator=(Datapath&&) noexcept = default;
Datapath::~Datapath() = default;
Datapath::Datapath() = default;

std::string_view xdpModeName(XdpMode m) {
    return m == XdpMode::Native ? "native" : "generic";
}

bool Datapath::isPinned(const std::string& pin_dir) {
    return fs::exists(mapsDir(pin_dir) + "/ztseg_config");
}

Datapath Datapath::create(const DatapathOptions& opts) {
    installLibbpfLogger();
    if (isPinned(opts.pin_dir)) {
        throw Error("ztseg datapath already pinned at " + opts.pin_dir +
                    " (adopt it, or uninstall first)");
    }
    // Pins only survive on bpffs; anywhere else they would silently vanish.
    std::string parent = fs::path(opts.pin_dir).parent_path().string();
    struct statfs st {};
    if (::statfs(parent.c_str(), &st) != 0 || st.f_type != BPF_FS_MAGIC) {
        throw Error("bpffs is not mounted at " + parent + " (mount it: mount -t bpf bpf " + parent +
                    ")");
    }
    using Skel = std::unique_ptr<ztseg_bpf, decltype(&ztseg_bpf__destroy)>;
    Skel skel(ztseg_bpf__open(), &ztseg_bpf__destroy);
    if (!skel) {
        throwErrno("open BPF object ztseg", errno);
    }
    auto setMax = [](bpf_map* m, uint32_t n) {
        if (int err = bpf_map__set_max_entries(m, n); err != 0) {
            throwErrno(std::string("size map ") + bpf_map__name(m), -err);
        }
    };
    setMax(skel->maps.ztseg_ct, opts.conntrack_capacity);
    setMax(skel->maps.ztseg_events, opts.ringbuf_bytes);
    // Without BPF LSM the program could not run (or even load): leave it out.
    const std::string lsm_missing = rawSocketGuardMissing(opts);
    if (!lsm_missing.empty()) {
        bpf_program__set_autoload(skel->progs.ztseg_sock_create, false);
    }
    takeLibbpfLog();
    if (int err = ztseg_bpf__load(skel.get()); err != 0) {
        std::string log = takeLibbpfLog();
        throw Error("load BPF programs: " + std::string(std::strerror(-err)) +
                    (log.empty() ? "" : "\nlibbpf/verifier output:\n" + log));
    }

    Datapath dp;
    dp.opts_ = opts;
    dp.grace_ = std::make_unique<GracePeriod>();
    for (const MapSpec& s : mapSpecs()) {
        bpf_map* m = bpf_object__find_map_by_name(skel->obj, s.name);
        if (m == nullptr) {
            throw Error(std::string("BPF object lacks map ") + s.name);
        }
        dp.*(s.member) = BpfMap(dupFd(bpf_map__fd(m), s.name), s.name);
    }
    dp.xdp_prog_ = dupFd(bpf_program__fd(skel->progs.ztseg_xdp), kXdpProg);
    for (size_t i = 0; i < kCgroupHooks.size(); ++i) {
        bpf_program* p = bpf_object__find_program_by_name(skel->obj, kCgroupHooks[i].prog);
        if (p == nullptr) {
            throw Error(std::string("BPF object lacks program ") + kCgroupHooks[i].prog);
        }
        dp.cgroup_progs_[i] = dupFd(bpf_program__fd(p), kCgroupHooks[i].prog);
    }
    if (lsm_missing.empty()) {
        dp.lsm_prog_ = dupFd(bpf_program__fd(skel->progs.ztseg_sock_create), kSockCreateProg);
    }
    dp.raw_guard_problem_ = lsm_missing;
    dp.writeConfig(ZTSEG_CFG_ABI_VERSION, ZTSEG_ABI_VERSION);
    dp.writeConfig(ZTSEG_CFG_DROP_EVENT_INTERVAL_NS, opts.drop_event_interval_ns);

    // Pin everything; on any failure leave no half-pinned state behind.
    try {
        mkdirOrThrow(opts.pin_dir);
        mkdirOrThrow(mapsDir(opts.pin_dir));
        mkdirOrThrow(progsDir(opts.pin_dir));
        mkdirOrThrow(linksDir(opts.pin_dir));
        for (const MapSpec& s : mapSpecs()) {
            (dp.*(s.member)).pin(mapsDir(opts.pin_dir) + "/" + s.name);
        }
        auto pinProg = [&](const UniqueFd& fd, const char* name) {
            std::string path = progsDir(opts.pin_dir) + "/" + name;
            if (bpf_obj_pin(fd.get(), path.c_str()) != 0) {
                throwErrno(std::string("pin program ") + name + " at " + path, errno);
            }
        };
        pinProg(dp.xdp_prog_, kXdpProg);
        for (size_t i = 0; i < kCgroupHooks.size(); ++i) {
            pinProg(dp.cgroup_progs_[i], kCgroupHooks[i].prog);
        }
        if (dp.lsm_prog_) {
            pinProg(dp.lsm_prog_, kSockCreateProg);
            attachLsmPinned(dp.lsm_prog_.get(), lsmLinkPin(opts.pin_dir));
        }
    } catch (...) {
        uninstall(opts.pin_dir);
        throw;
    }
    spdlog::info("datapath loaded and pinned at {}", opts.pin_dir);
    if (dp.lsm_prog_) {
        spdlog::info("raw-socket guard attached (BPF LSM socket_create)");
    } else {
        warnRawSocketsUnconfined(lsm_missing);
    }
    return dp;
}

Datapath Datapath::adopt(const DatapathOptions& opts) {
    installLibbpfLogger();
    Datapath dp;
    dp.opts_ = opts;
    dp.grace_ = std::make_unique<GracePeriod>();
    dp.openPinned();
    uint32_t key = ZTSEG_CFG_ABI_VERSION;
    uint64_t abi = 0;
    dp.config_.lookup(&key, &abi);
    if (abi != ZTSEG_ABI_VERSION) {
        throw Error("pinned datapath at " + opts.pin_dir + " has ABI " + std::to_string(abi) +
                    ", this build speaks " + std::to_string(ZTSEG_ABI_VERSION) +
                    " (uninstall, then start again)");
    }
    dp.adoptRawSocketGuard();
    spdlog::info("adopted pinned datapath at {} (generation {})", opts.pin_dir,
                 dp.activeGeneration());
    return dp;
}

void Datapath::openPinned() {
    if (!isPinned(opts_.pin_dir)) {
        throw Error("no ztseg datapath pinned at " + opts_.pin_dir);
    }
    for (const MapSpec& s : mapSpecs()) {
        this->*(s.member) = BpfMap::openPinned(mapsDir(opts_.pin_dir) + "/" + s.name, s.name);
    }
    xdp_prog_ = openPinnedObject(progsDir(opts_.pin_dir) + "/" + kXdpProg, "program");
    for (size_t i = 0; i < kCgroupHooks.size(); ++i) {
        cgroup_progs_[i] =
            openPinnedObject(progsDir(opts_.pin_dir) + "/" + kCgroupHooks[i].prog, "program");
    }
    // Absent when the loader's kernel lacked BPF LSM (adoptRawSocketGuard says so).
    std::string lsm = progsDir(opts_.pin_dir) + "/" + kSockCreateProg;
    if (fs::exists(lsm)) {
        lsm_prog_ = openPinnedObject(lsm, "program");
    }
}

void Datapath::uninstall(const std::string& pin_dir) {
    std::error_code ec;
    if (fs::exists(linksDir(pin_dir), ec)) {
        for (const auto& e : fs::directory_iterator(linksDir(pin_dir))) {
            detachPinnedLink(e.path().string());
        }
    }
    for (const std::string& d : {linksDir(pin_dir), progsDir(pin_dir), mapsDir(pin_dir)}) {
        if (!fs::exists(d, ec)) {
            continue;
        }
        for (const auto& e : fs::directory_iterator(d)) {
            if (::unlink(e.path().c_str()) != 0 && errno != ENOENT) {
                throwErrno("remove pin " + e.path().string(), errno);
            }
        }
        ::rmdir(d.c_str());
    }
    if (fs::exists(pin_dir, ec) && ::rmdir(pin_dir.c_str()) != 0) {
        throwErrno("remove " + pin_dir, errno);
    }
}

// ---------------------------------------------------------------- attach

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

}  // namespace

XdpMode Datapath::attachXdp(const std::string& ifname, XdpRequest req) {
    unsigned ifindex = if_nametoindex(ifname.c_str());
    if (ifindex == 0) {
        throw Error("attach XDP: interface '" + ifname + "' not found");
    }
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
    std::string pin = xdpLinkPin(opts_.pin_dir, ifname);
    if (fs::exists(pin)) {
        detachPinnedLink(pin);  // stale (interface re-created) or re-attach: start clean
    }
    auto tryAttach = [&](uint32_t flags) {
        LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = flags);
        return bpf_link_create(xdp_prog_.get(), int(ifindex), BPF_XDP, &lo);
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
    spdlog::info("XDP attached to {} (ifindex {}, {} mode)", ifname, ifindex, xdpModeName(mode));
    return mode;
}

void Datapath::detachXdp(const std::string& ifname) {
    std::string pin = xdpLinkPin(opts_.pin_dir, ifname);
    if (!fs::exists(pin)) {
        throw Error("detach XDP: ztseg is not attached to interface '" + ifname + "'");
    }
    detachPinnedLink(pin);
    spdlog::info("XDP detached from {}", ifname);
}

std::vector<XdpAttachment> Datapath::xdpAttachments() const {
    std::vector<XdpAttachment> out;
    for (const auto& e : fs::directory_iterator(linksDir(opts_.pin_dir))) {
        std::string name = e.path().filename().string();
        if (name.rfind("xdp-", 0) != 0) {
            continue;
        }
        XdpAttachment a;
        a.ifname = name.substr(4);
        UniqueFd link = openPinnedObject(e.path().string(), "XDP link");
        bpf_link_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(link.get(), &info, &len) != 0) {
            throwErrno("read XDP link info of " + a.ifname, errno);
        }
        a.ifindex = int(info.xdp.ifindex);
        if (a.ifindex == 0) {
            continue;  // interface vanished; the link is defunct
        }
        LIBBPF_OPTS(bpf_xdp_query_opts, q);
        if (bpf_xdp_query(a.ifindex, 0, &q) == 0) {
            a.mode = q.attach_mode == XDP_ATTACHED_SKB ? XdpMode::Generic : XdpMode::Native;
        }
        out.push_back(a);
    }
    return out;
}

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

// ---------------------------------------------------------------- generations

void Datapath::writeConfig(uint32_t index, uint64_t value) const {
    config_.update(&index, &value);
}

uint32_t Datapath::activeSlotRaw() const {
    uint32_t key = ZTSEG_CFG_ACTIVE_SLOT;
    uint64_t v = 0;
    config_.lookup(&key, &v);
    return uint32_t(v);
}

uint64_t Datapath::activeGeneration() const {
    uint32_t raw = activeSlotRaw();
    if (raw == 0) {
        return 0;
    }
    uint32_t slot = raw - 1;
    ztseg_slot_meta m{};
    slots_.lookup(&slot, &m);
    return m.generation;
}

uint64_t Datapath::previousGeneration() const {
    uint32_t raw = activeSlotRaw();
    if (raw == 0) {
        return 0;
    }
    uint32_t other = raw == 1 ? 1 : 0;
    ztseg_slot_meta m{};
    slots_.lookup(&other, &m);
    return (m.flags & ZTSEG_SLOTF_BUILDING) ? 0 : m.generation;
}

namespace {

// An fd for the inner map installed in outer[slot] (userspace reads map ids).
UniqueFd innerMapFd(const BpfMap& outer, uint32_t slot) {
    uint32_t id = 0;
    if (!outer.lookup(&slot, &id) || id == 0) {
        throw Error("map " + outer.name() + " has no inner map in slot " + std::to_string(slot));
    }
    int fd = bpf_map_get_fd_by_id(id);
    if (fd < 0) {
        throwErrno("open inner map " + std::to_string(id) + " of " + outer.name(), errno);
    }
    return UniqueFd(fd);
}

}  // namespace

void Datapath::flipTo(uint32_t slot) {
    // One 8-byte write: every packet from now on sees the new slot. Programs
    // still running against the old one are waited for in the background,
    // before anything rewrites that slot.
    writeConfig(ZTSEG_CFG_ACTIVE_SLOT, uint64_t(slot) + 1);
    grace_->start();
}

void Datapath::writeSlotMeta(uint32_t slot, uint64_t generation, const ProbeMasks& probes,
                             uint32_t flags) const {
    ztseg_slot_meta meta{};
    meta.generation = generation;
    meta.flags = flags;
    std::copy(probes.begin(), probes.end(), meta.probe_masks);
    slots_.update(&slot, &meta);
}

// Ids of the inner maps installed in `slot` (0 where none), in buildSlot's order.
std::array<uint32_t, 6> Datapath::slotMapIds(uint32_t slot) const {
    std::array<uint32_t, 6> ids{};
    const BpfMap* outers[] = {&policy_, &ident4_, &ident6_, &host4_, &host6_, &endpoints_};
    for (size_t i = 0; i < ids.size(); ++i) {
        if (!outers[i]->lookup(&slot, &ids[i])) {
            ids[i] = 0;
        }
    }
    return ids;
}

namespace {

uint32_t mapIdOf(const BpfMap& m) {
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(m.fd(), &info, &len) != 0) {
        throwErrno("get info of map " + m.name(), errno);
    }
    return info.id;
}

template <typename Entry>
void fillOneByOne(const BpfMap& m, const std::vector<Entry>& entries) {
    for (const Entry& e : entries) {
        m.update(&e.key, &e.value);
    }
}

template <typename Entry>
void fillBatch(const BpfMap& m, const std::vector<Entry>& entries) {
    using Key = decltype(Entry::key);
    std::vector<Key> keys;
    std::vector<ztseg_identity_info> values;
    keys.reserve(entries.size());
    values.reserve(entries.size());
    for (const Entry& e : entries) {
        keys.push_back(e.key);
        values.push_back(e.value);
    }
    m.updateBatch(keys.data(), values.data(), uint32_t(keys.size()), sizeof(Key),
                  sizeof(ztseg_identity_info));
}

template <typename Key, typename Value>
void writeDiff(const BpfMap& m, const MapDiff<Key, Value>& d, bool batch) {
    // Deletes first: a map at capacity must make room before it takes new keys.
    for (const Key& k : d.deletes) {
        m.erase(&k);
    }
    if (d.upsert_keys.empty()) {
        return;
    }
    if (batch) {
        m.updateBatch(d.upsert_keys.data(), d.upsert_values.data(), uint32_t(d.upsert_keys.size()),
                      sizeof(Key), sizeof(Value));
    } else {
        for (size_t i = 0; i < d.upsert_keys.size(); ++i) {
            m.update(&d.upsert_keys[i], &d.upsert_values[i]);
        }
    }
}

}  // namespace

// Fresh inner maps for `slot`, filled off to the side, then swapped in. Each
// outer-map update waits for an RCU grace period, so the six run in parallel.
void Datapath::buildSlot(uint32_t slot, const SlotContent& c) {
    BpfMap pol_map =
        BpfMap::create(BPF_MAP_TYPE_HASH, "ztseg_pol_gen", sizeof(ztseg_policy_key),
                       sizeof(ztseg_policy_value), opts_.policy_capacity, BPF_F_NO_PREALLOC);
    BpfMap id4_map =
        BpfMap::create(BPF_MAP_TYPE_LPM_TRIE, "ztseg_id4_gen", sizeof(ztseg_ident4_key),
                       sizeof(ztseg_identity_info), opts_.identity_capacity, BPF_F_NO_PREALLOC);
    BpfMap id6_map =
        BpfMap::create(BPF_MAP_TYPE_LPM_TRIE, "ztseg_id6_gen", sizeof(ztseg_ident6_key),
                       sizeof(ztseg_identity_info), opts_.identity_capacity, BPF_F_NO_PREALLOC);
    BpfMap h4_map =
        BpfMap::create(BPF_MAP_TYPE_HASH, "ztseg_h4_gen", sizeof(ztseg_host4_key),
                       sizeof(ztseg_identity_info), opts_.identity_capacity, BPF_F_NO_PREALLOC);
    BpfMap h6_map =
        BpfMap::create(BPF_MAP_TYPE_HASH, "ztseg_h6_gen", sizeof(ztseg_host6_key),
                       sizeof(ztseg_identity_info), opts_.identity_capacity, BPF_F_NO_PREALLOC);
    BpfMap ep_map =
        BpfMap::create(BPF_MAP_TYPE_HASH, "ztseg_ep_gen", sizeof(ztseg_endpoint_key),
                       sizeof(ztseg_identity_info), opts_.endpoint_capacity, BPF_F_NO_PREALLOC);
    {
        std::vector<ztseg_policy_key> keys;
        std::vector<ztseg_policy_value> vals;
        keys.reserve(c.policy_entries);
        vals.reserve(c.policy_entries);
        for (const auto& [key, g] : c.groups) {
            for (const auto& e : g->entries.entries) {
                keys.push_back(e.key);
                vals.push_back(e.value);
            }
        }
        pol_map.updateBatch(keys.data(), vals.data(), uint32_t(keys.size()), sizeof(keys[0]),
                            sizeof(vals[0]));
    }
    fillOneByOne(id4_map, c.identities->v4);  // LPM tries have no batch update
    fillOneByOne(id6_map, c.identities->v6);
    fillBatch(h4_map, c.identities->h4);
    fillBatch(h6_map, c.identities->h6);
    fillBatch(ep_map, c.endpoints);

    std::array<std::pair<const BpfMap*, const BpfMap*>, 6> installs = {{{&policy_, &pol_map},
                                                                        {&ident4_, &id4_map},
                                                                        {&ident6_, &id6_map},
                                                                        {&host4_, &h4_map},
                                                                        {&host6_, &h6_map},
                                                                        {&endpoints_, &ep_map}}};
    std::array<int, 6> errors{};
    {
        std::vector<std::jthread> threads;
        for (size_t i = 0; i < installs.size(); ++i) {
            threads.emplace_back([&, i] {
                uint32_t key = slot;
                uint32_t fd = uint32_t(installs[i].second->fd());
                if (bpf_map_update_elem(installs[i].first->fd(), &key, &fd, 0) != 0) {
                    errors[i] = errno;
                }
            });
        }
    }
    for (size_t i = 0; i < installs.size(); ++i) {
        if (errors[i] != 0) {
            throwErrno("install inner map into " + installs[i].first->name() + " slot " +
                           std::to_string(slot),
                       errors[i]);
        }
    }
    mirror_[slot].map_ids = {mapIdOf(pol_map), mapIdOf(id4_map), mapIdOf(id6_map),
                             mapIdOf(h4_map),  mapIdOf(h6_map),  mapIdOf(ep_map)};
}

// Rewrite `slot` in place from `from` to `to`: only the differing entries.
// The slot is inactive and a grace period has passed since it was last live.
size_t Datapath::patchSlot(uint32_t slot, const SlotContent& from, const SlotContent& to) {
    SlotDiff d = diffSlots(from, to);
    BpfMap pol(innerMapFd(policy_, slot), "ztseg_policy(slot)");
    BpfMap id4(innerMapFd(ident4_, slot), "ztseg_ident4(slot)");
    BpfMap id6(innerMapFd(ident6_, slot), "ztseg_ident6(slot)");
    BpfMap h4(innerMapFd(host4_, slot), "ztseg_host4(slot)");
    BpfMap h6(innerMapFd(host6_, slot), "ztseg_host6(slot)");
    BpfMap ep(innerMapFd(endpoints_, slot), "ztseg_endpoints(slot)");
    writeDiff(pol, d.policy, true);
    writeDiff(id4, d.ident4, false);
    writeDiff(id6, d.ident6, false);
    writeDiff(h4, d.host4, true);
    writeDiff(h6, d.host6, true);
    writeDiff(ep, d.endpoints, true);
    return d.size();
}

void Datapath::apply(const Generation& gen) {
    using Clock = std::chrono::steady_clock;
    if (gen.number == 0) {
        throw Error("apply: generation number 0 is reserved for 'no policy'");
    }
    for (const IdentityPrefix& ip : gen.identities) {
        if (ip.identity == kUnlabeled || ip.identity == kAnyIdentity) {
            throw Error("apply: prefix " + ip.prefix.str() + " maps to reserved identity " +
                        std::to_string(ip.identity));
        }
    }
    auto t0 = Clock::now();
    uint32_t raw = activeSlotRaw();
    uint32_t slot = raw == 1 ? 1 : 0;  // the inactive slot
    std::shared_ptr<const SlotContent> active_owner, target_owner = mirror_[slot].content;
    if (raw != 0) {
        active_owner = mirror_[raw - 1].content;
    }
    const SlotContent* active = active_owner.get();
    const SlotContent* target = target_owner.get();
    auto next = std::make_shared<const SlotContent>(buildSlotContent(gen, {target, active}));

    auto check = [](size_t need, uint32_t cap, const char* what, const char* option) {
        if (need > cap) {
            throw CapacityError("apply: " + std::string(what) + " needs " + std::to_string(need) +
                                " entries, capacity is " + std::to_string(cap) + " (raise " +
                                option + "); nothing changed");
        }
    };
    size_t policy_entries = next->policy_entries;
    check(policy_entries, opts_.policy_capacity, "policy map", "policy_capacity");
    check(next->identities->family4(), opts_.identity_capacity, "IPv4 identity map",
          "identity_capacity");
    check(next->identities->family6(), opts_.identity_capacity, "IPv6 identity map",
          "identity_capacity");
    check(next->endpoints.size(), opts_.endpoint_capacity, "endpoint map", "endpoint_capacity");

    // Patch in place only if the slot still holds what this process wrote
    // there, and the change is small next to the generation.
    bool incremental = false;
    if (target != nullptr) {
        ztseg_slot_meta meta{};
        slots_.lookup(&slot, &meta);
        incremental = meta.generation == target->generation &&
                      !(meta.flags & ZTSEG_SLOTF_BUILDING) &&
                      slotMapIds(slot) == mirror_[slot].map_ids;
    }
    size_t total = policy_entries + next->identities->family4() + next->identities->family6() +
                   next->endpoints.size();
    SlotDiff diff;
    if (incremental) {
        diff = diffSlots(*target, *next);
        incremental = diff.size() <= std::max<size_t>(4096, total / 2);
    }
    auto t1 = Clock::now();

    // Nothing may still read this slot (its metadata or maps): wait out the
    // grace period of the flip that made it inactive (usually long over).
    grace_->wait();
    // From here the slot is incomplete until its metadata says otherwise.
    mirror_[slot].content.reset();
    writeSlotMeta(slot, 0, {}, ZTSEG_SLOTF_BUILDING);
    size_t writes = 0;
    if (incremental) {
        writes = patchSlot(slot, *target, *next);
    } else {
        buildSlot(slot, *next);
        writes = total;
    }
    writeSlotMeta(slot, gen.number, next->probe_masks, next->identities->slotFlags());
    mirror_[slot].content = next;
    flipTo(slot);
    auto t2 = Clock::now();

    last_apply_ = {incremental, writes, policy_entries,
                   std::chrono::duration<double, std::milli>(t1 - t0).count(),
                   std::chrono::duration<double, std::milli>(t2 - t1).count()};
    spdlog::info(
        "generation {} active: {} policy entries, {}+{} identity prefixes, {} endpoints ({}, {} "
        "map writes, {:.2f} ms)",
        gen.number, policy_entries, next->identities->family4(), next->identities->family6(),
        next->endpoints.size(), incremental ? "incremental" : "full build", writes,
        last_apply_.build_ms + last_apply_.write_ms);
}

void Datapath::rollback() {
    uint32_t raw = activeSlotRaw();
    uint64_t prev = previousGeneration();
    if (raw == 0 || prev == 0) {
        throw Error("rollback: no previous generation to return to");
    }
    uint64_t cur = activeGeneration();
    flipTo(raw == 1 ? 1 : 0);
    spdlog::info("rolled back from generation {} to {}", cur, prev);
}

void Datapath::upsertEndpoint(const Endpoint& ep, WorkloadMode mode, bool raw_sockets) {
    uint32_t raw = activeSlotRaw();
    if (raw == 0) {
        throw Error("add endpoint: no policy generation loaded yet");
    }
    UniqueFd inner = innerMapFd(endpoints_, raw - 1);
    BpfMap m(std::move(inner), "ztseg_endpoints(active)");
    EndpointEntry e{{ep.cgroup_id}, {ep.identity, identityFlags(mode, raw_sockets)}};
    m.update(&e.key, &e.value);
    if (auto& mirror = mirror_[raw - 1].content) {
        auto next = std::make_shared<SlotContent>(*mirror);
        upsertEndpointEntry(next->endpoints, e);
        mirror = std::move(next);
    }
}

void Datapath::removeEndpoint(uint64_t cgroup_id) {
    uint32_t raw = activeSlotRaw();
    if (raw == 0) {
        return;
    }
    BpfMap m(innerMapFd(endpoints_, raw - 1), "ztseg_endpoints(active)");
    ztseg_endpoint_key k{cgroup_id};
    m.erase(&k);
    if (auto& mirror = mirror_[raw - 1].content) {
        auto next = std::make_shared<SlotContent>(*mirror);
        eraseEndpointEntry(next->endpoints, cgroup_id);
        mirror = std::move(next);
    }
}

// ---------------------------------------------------------------- observability

Counters Datapath::counters() const {
    Counters c;
    int cpus = possibleCpus();
    for (uint32_t hook = 0; hook < ZTSEG_HOOK_MAX; ++hook) {
        for (uint32_t reason = 0; reason < ZTSEG_REASON_MAX; ++reason) {
            uint32_t idx = hook * ZTSEG_REASON_MAX + reason;
            auto raw = counters_.lookupPerCpu(&idx, sizeof(ztseg_counter));
            CounterValue& out = c.by_hook[hook][reason];
            for (int cpu = 0; cpu < cpus; ++cpu) {
                ztseg_counter v;
                std::memcpy(&v, raw.data() + size_t(cpu) * sizeof(v), sizeof(v));
                out.packets += v.packets;
                out.bytes += v.bytes;
            }
        }
    }
    for (uint32_t i = 0; i < ZTSEG_EVSTAT_MAX; ++i) {
        auto raw = evstats_.lookupPerCpu(&i, sizeof(uint64_t));
        for (int cpu = 0; cpu < cpus; ++cpu) {
            uint64_t v;
            std::memcpy(&v, raw.data() + size_t(cpu) * sizeof(v), sizeof(v));
            c.events[i] += v;
        }
    }
    return c;
}

int Datapath::programFd(std::string_view name) const {
    if (name == kXdpProg) {
        return xdp_prog_.get();
    }
    for (size_t i = 0; i < kCgroupHooks.size(); ++i) {
        if (name == kCgroupHooks[i].prog) {
            return cgroup_progs_[i].get();
        }
    }
    if (name == kSockCreateProg) {
        return lsm_prog_.get();  // -1 without BPF LSM
    }
    return -1;
}

uint32_t Datapath::conntrackEntries() const {
    return ct_.countEntries(sizeof(ztseg_ct_key));
}

void Datapath::flushConntrack() {
    ztseg_ct_key k{};
    while (bpf_map_get_next_key(ct_.fd(), nullptr, &k) == 0) {
        ct_.erase(&k);
    }
    std::vector<ztseg_flowcache_entry> empty(static_cast<size_t>(possibleCpus()));
    for (uint32_t slot = 0; slot < ZTSEG_FLOWCACHE_SLOTS; ++slot) {
        flowcache_.update(&slot, empty.data());
    }
}

void Datapath::setDropEventInterval(uint64_t ns) {
    writeConfig(ZTSEG_CFG_DROP_EVENT_INTERVAL_NS, ns);
}

}  // namespace ztseg
