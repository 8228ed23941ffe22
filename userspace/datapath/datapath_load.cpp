// Datapath: loading the BPF object, pinning every program and map under one
// bpffs directory, adopting what an earlier process pinned, and removing it.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>

#include "common/cgroup.hpp"
#include "common/error.hpp"
#include "datapath/cgroup_hooks.hpp"
#include "datapath/datapath.hpp"
#include "datapath/grace_period.hpp"
#include "datapath/link_type.hpp"
#include "datapath/pins.hpp"
#include "datapath/policy_entries.hpp"
#include "datapath/raw_socket_guard.hpp"
#include "datapath/slot_content.hpp"
#include "ztseg.skel.h"

namespace fs = std::filesystem;

namespace ztseg {
namespace {

using pins::detachPinnedLink;
using pins::linksDir;
using pins::mapsDir;
using pins::mkdirOrThrow;
using pins::openPinnedObject;
using pins::progsDir;

struct MapSpec {
    const char* name;
    BpfMap Datapath::*member;
};

// Programs attached once per host (not per cgroup or interface).
struct GlobalProgram {
    const char* prog;
    const char* link_pin;  // under links/
    const char* what;      // for errors
};
constexpr std::array<GlobalProgram, 1> kGlobalPrograms = {{
    {"ztseg_cg_mkdir", "global-cgroup-mkdir", "the cgroup_mkdir tracepoint (pending cgroups)"},
}};

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

// The cookie of the network namespace this process runs in (SO_NETNS_COOKIE).
uint64_t ownNetnsCookie() {
    UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    uint64_t cookie = 0;
    socklen_t len = sizeof(cookie);
    if (!s || ::getsockopt(s.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) {
        throw Error(std::string("read this network namespace's cookie: ") + std::strerror(errno));
    }
    return cookie;
}

UniqueFd dupFd(int fd, const std::string& what) {
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (d < 0) {
        throwErrno("duplicate fd of " + what, errno);
    }
    return UniqueFd(d);
}
}  // namespace

// The pin table: every map of the object, pinned at maps/<name>. The shared
// maps are listed here (pointers to members need the friendship); the
// per-generation ones come from kSlotMaps.
struct DatapathMaps {
    static const std::array<MapSpec, 22>& shared() {
        static const std::array<MapSpec, 22> k = {{
            {"ztseg_config", &Datapath::config_},
            {"ztseg_slots", &Datapath::slots_},
            {"ztseg_ct", &Datapath::ct_},
            {"ztseg_frags", &Datapath::frags_},
            {"ztseg_flowcache", &Datapath::flowcache_},
            {"ztseg_counters", &Datapath::counters_},
            {"ztseg_evstats", &Datapath::evstats_},
            {"ztseg_ratelimit", &Datapath::ratelimit_},
            {"ztseg_srclimit", &Datapath::srclimit_},
            {"ztseg_events", &Datapath::events_},
            {"ztseg_ct_new", &Datapath::ct_new_},
            {"ztseg_ctstats", &Datapath::ctstats_},
            {"ztseg_cg_pending", &Datapath::cg_pending_},
            {"ztseg_cg_names", &Datapath::cg_names_},
            {"ztseg_cg_guards", &Datapath::cg_guards_},
            {"ztseg_rule_hits", &Datapath::rule_hits_},
            {"ztseg_rule_slots", &Datapath::rule_slots_},
            {"ztseg_failsafe", &Datapath::failsafe_},
            {"ztseg_wire_addrs", &Datapath::wire_addrs_},
            {"ztseg_wire_peers", &Datapath::wire_peers_},
            {"ztseg_wire_idents", &Datapath::wire_idents_},
            {"ztseg_sk_proofs", &Datapath::sk_proofs_},
        }};
        return k;
    }
    template <typename Fn>
    static void forEach(Datapath& dp, Fn&& fn) {
        for (const MapSpec& s : shared()) {
            fn(s.name, dp.*(s.member));
        }
        for (const SlotMapSpec& s : kSlotMaps) {
            fn(s.name, dp.slot_maps_[s.id]);
        }
    }
    static bool lists(const std::string& name) {
        bool listed = false;
        for (const MapSpec& s : shared()) {
            listed = listed || name == s.name;
        }
        for (const SlotMapSpec& s : kSlotMaps) {
            listed = listed || name == s.name;
        }
        return listed;
    }
};

namespace {

std::vector<std::string> mapNamesOf(const bpf_object* obj) {
    std::vector<std::string> names;
    const bpf_map* m = nullptr;
    bpf_object__for_each_map(m, obj) {
        names.emplace_back(bpf_map__name(m));
    }
    return names;
}
}  // namespace

std::vector<std::string> Datapath::mapsMissingFromPinTable(
    const std::vector<std::string>& object_maps) {
    std::vector<std::string> missing;
    for (const std::string& name : object_maps) {
        // libbpf's own: .rodata/.bss/.data/.kconfig and map-in-map inner templates.
        if (name.find('.') != std::string::npos) {
            continue;
        }
        if (!DatapathMaps::lists(name)) {
            missing.push_back(name);
        }
    }
    return missing;
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
    setMax(skel->maps.ztseg_ct_new, opts.conntrack_new_capacity);
    setMax(skel->maps.ztseg_events, opts.ringbuf_bytes);
    setMax(skel->maps.ztseg_rule_hits, opts.rule_capacity);
    setMax(skel->maps.ztseg_rule_slots, opts.rule_capacity);
    // One raw-socket guard: BPF LSM where the kernel runs it (elsewhere it
    // could not even load), else the fallback, else none.
    const RawGuardPlan raw_guard = planRawSocketGuard(opts);
    if (raw_guard.kind != RawGuardKind::Lsm) {
        bpf_program__set_autoload(skel->progs.ztseg_sock_create, false);
    }
    // The fallback's kill: the kprobe or the tracepoint program, never both.
    bpf_program* kill_prog = raw_guard.kill_hook == RawKillHook::Kprobe
                                 ? skel->progs.ztseg_sock_create_kill
                                 : skel->progs.ztseg_sock_create_kill_tp;
    for (bpf_program* p : {skel->progs.ztseg_sock_create_inet, skel->progs.ztseg_sock_create_kill,
                           skel->progs.ztseg_sock_create_kill_tp}) {
        const bool used = raw_guard.kind == RawGuardKind::Fallback &&
                          (p == skel->progs.ztseg_sock_create_inet || p == kill_prog);
        bpf_program__set_autoload(p, used);
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
    // A map the pin table does not list would be recreated empty by every
    // restart (and read by nobody): refuse to load such an object.
    if (auto missing = mapsMissingFromPinTable(mapNamesOf(skel->obj)); !missing.empty()) {
        throw Error("BPF object map " + missing.front() +
                    " is not in the datapath's pin table (DatapathMaps in datapath_load.cpp, or "
                    "ZTSEG_SLOT_MAPS)");
    }
    DatapathMaps::forEach(dp, [&](const char* name, BpfMap& map) {
        bpf_map* m = bpf_object__find_map_by_name(skel->obj, name);
        if (m == nullptr) {
            throw Error(std::string("BPF object lacks map ") + name);
        }
        map = BpfMap(dupFd(bpf_map__fd(m), name), name);
    });
    dp.xdp_prog_ = dupFd(bpf_program__fd(skel->progs.ztseg_xdp), kXdpEthernetProg);
    dp.xdp_l3_prog_ = dupFd(bpf_program__fd(skel->progs.ztseg_xdp_l3), kXdpL3Prog);
    dp.tcx_prog_ = dupFd(bpf_program__fd(skel->progs.ztseg_tcx), kTcxEthernetProg);
    dp.tcx_l3_prog_ = dupFd(bpf_program__fd(skel->progs.ztseg_tcx_l3), kTcxL3Prog);
    for (size_t i = 0; i < kCgroupHooks.size(); ++i) {
        bpf_program* p = bpf_object__find_program_by_name(skel->obj, kCgroupHooks[i].prog);
        if (p == nullptr) {
            throw Error(std::string("BPF object lacks program ") + kCgroupHooks[i].prog);
        }
        dp.cgroup_progs_[i] = dupFd(bpf_program__fd(p), kCgroupHooks[i].prog);
    }
    if (raw_guard.kind == RawGuardKind::Lsm) {
        dp.lsm_prog_ = dupFd(bpf_program__fd(skel->progs.ztseg_sock_create), kSockCreateProg);
    } else if (raw_guard.kind == RawGuardKind::Fallback) {
        dp.raw_inet_prog_ =
            dupFd(bpf_program__fd(skel->progs.ztseg_sock_create_inet), kSockCreateInetProg);
        dp.raw_kill_prog_ = dupFd(bpf_program__fd(kill_prog), kSockCreateKillProg);
        dp.raw_kill_hook_ = raw_guard.kill_hook;
    }
    dp.raw_guard_kind_ = raw_guard.kind;
    dp.raw_guard_problem_ = raw_guard.problem;
    dp.writeConfig(ZTSEG_CFG_ABI_VERSION, ZTSEG_ABI_VERSION);
    dp.writeConfig(ZTSEG_CFG_DROP_EVENT_INTERVAL_NS, opts.drop_event_interval_ns);
    dp.writeHostNetns();

    // Pin everything; on any failure leave no half-pinned state behind.
    try {
        mkdirOrThrow(opts.pin_dir);
        mkdirOrThrow(mapsDir(opts.pin_dir));
        mkdirOrThrow(progsDir(opts.pin_dir));
        mkdirOrThrow(linksDir(opts.pin_dir));
        DatapathMaps::forEach(dp, [&](const char* name, BpfMap& map) {
            map.pin(mapsDir(opts.pin_dir) + "/" + name);
        });
        auto pinProg = [&](const UniqueFd& fd, const char* name) {
            std::string path = progsDir(opts.pin_dir) + "/" + name;
            if (bpf_obj_pin(fd.get(), path.c_str()) != 0) {
                throwErrno(std::string("pin program ") + name + " at " + path, errno);
            }
        };
        pinProg(dp.xdp_prog_, kXdpEthernetProg);
        pinProg(dp.xdp_l3_prog_, kXdpL3Prog);
        pinProg(dp.tcx_prog_, kTcxEthernetProg);
        pinProg(dp.tcx_l3_prog_, kTcxL3Prog);
        for (size_t i = 0; i < kCgroupHooks.size(); ++i) {
            pinProg(dp.cgroup_progs_[i], kCgroupHooks[i].prog);
        }
        // Host-wide programs: attached once, for as long as the pins exist.
        for (const GlobalProgram& g : kGlobalPrograms) {
            bpf_program* p = bpf_object__find_program_by_name(skel->obj, g.prog);
            if (p == nullptr) {
                throw Error(std::string("BPF object lacks program ") + g.prog);
            }
            bpf_link* link = bpf_program__attach(p);
            if (link == nullptr) {
                throwErrno(std::string("attach ") + g.what, errno);
            }
            std::string pin = linksDir(opts.pin_dir) + "/" + g.link_pin;
            int err = bpf_link__pin(link, pin.c_str());
            bpf_link__destroy(link);  // the pin keeps it attached
            if (err != 0) {
                throwErrno(std::string("pin link of ") + g.what + " at " + pin, -err);
            }
        }
        if (dp.lsm_prog_) {
            pinProg(dp.lsm_prog_, kSockCreateProg);
            attachLsmPinned(dp.lsm_prog_.get(), lsmLinkPin(opts.pin_dir));
        }
        if (dp.raw_inet_prog_) {
            pinProg(dp.raw_inet_prog_, kSockCreateInetProg);
            pinProg(dp.raw_kill_prog_, kSockCreateKillProg);
            attachFallbackInetPinned(dp.raw_inet_prog_.get(), fallbackInetLinkPin(opts.pin_dir));
            attachFallbackKillPinned(dp.raw_kill_prog_.get(), fallbackKillLinkPin(opts.pin_dir));
        }
    } catch (...) {
        uninstall(opts.pin_dir);
        throw;
    }
    spdlog::info("datapath loaded and pinned at {}", opts.pin_dir);
    if (raw_guard.kind == RawGuardKind::None) {
        warnRawSocketsUnconfined(raw_guard.problem);
    } else {
        if (raw_guard.kind == RawGuardKind::Fallback) {
            spdlog::warn("BPF LSM is not usable ({}): raw-socket guard falls back",
                         raw_guard.lsm_missing);
        }
        spdlog::info("raw-socket guard attached ({})", dp.rawSocketGuardMode());
    }
    return dp;
}

void Datapath::writeHostNetns() const {
    writeConfig(ZTSEG_CFG_HOST_NETNS_COOKIE,
                opts_.host_netns_cookie ? opts_.host_netns_cookie : ownNetnsCookie());
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
    dp.writeHostNetns();
    spdlog::info("adopted pinned datapath at {} (generation {})", opts.pin_dir,
                 dp.activeGeneration());
    return dp;
}

void Datapath::openPinned() {
    if (!isPinned(opts_.pin_dir)) {
        throw Error("no ztseg datapath pinned at " + opts_.pin_dir);
    }
    DatapathMaps::forEach(*this, [&](const char* name, BpfMap& map) {
        const std::string pin = mapsDir(opts_.pin_dir) + "/" + name;
        if (!fs::exists(pin)) {  // a map added since (ztseg_srclimit: ABI 4)
            throw Error("pinned datapath at " + opts_.pin_dir + " lacks map " + name +
                        " (pinned by an older ztseg; uninstall, then start again)");
        }
        map = BpfMap::openPinned(pin, name);
    });
    xdp_prog_ = openPinnedObject(progsDir(opts_.pin_dir) + "/" + kXdpEthernetProg, "program");
    // State pinned by a build without the IP-first program cannot serve
    // devices without an Ethernet header: say so rather than a bare ENOENT.
    std::string l3 = progsDir(opts_.pin_dir) + "/" + kXdpL3Prog;
    if (!fs::exists(l3)) {
        throw Error("pinned datapath at " + opts_.pin_dir + " lacks program " + kXdpL3Prog +
                    " (pinned by an older ztseg; uninstall, then start again)");
    }
    xdp_l3_prog_ = openPinnedObject(l3, "program");
    // Pinned by a build without the tcx programs: virtual devices then keep
    // generic XDP (attachXdp says so) until the datapath is reinstalled.
    for (auto [fd, name] : {std::pair{&tcx_prog_, kTcxEthernetProg}, {&tcx_l3_prog_, kTcxL3Prog}}) {
        std::string path = progsDir(opts_.pin_dir) + "/" + name;
        if (fs::exists(path)) {
            *fd = openPinnedObject(path, "program");
        }
    }
    for (size_t i = 0; i < kCgroupHooks.size(); ++i) {
        cgroup_progs_[i] =
            openPinnedObject(progsDir(opts_.pin_dir) + "/" + kCgroupHooks[i].prog, "program");
    }
    // Each guard's programs are pinned only where that guard was chosen
    // (adoptRawSocketGuard says which, or that there is none).
    auto openIfPinned = [&](UniqueFd& fd, const char* name) {
        std::string path = progsDir(opts_.pin_dir) + "/" + name;
        if (fs::exists(path)) {
            fd = openPinnedObject(path, "program");
        }
    };
    openIfPinned(lsm_prog_, kSockCreateProg);
    openIfPinned(raw_inet_prog_, kSockCreateInetProg);
    openIfPinned(raw_kill_prog_, kSockCreateKillProg);
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

}  // namespace ztseg
