#include "datapath/raw_socket_guard.hpp"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/cgroup.hpp"
#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "datapath/datapath.hpp"

namespace fs = std::filesystem;

namespace ztseg {

std::string lsmLinkPin(const std::string& pin_dir) {
    return pin_dir + "/links/lsm-socket_create";
}

std::string fallbackInetLinkPin(const std::string& pin_dir) {
    return pin_dir + "/links/global-sock_create";
}

std::string fallbackKillLinkPin(const std::string& pin_dir) {
    return pin_dir + "/links/fallback-socket_create-kill";
}

namespace {

// Listed is not enough: BPF LSM programs run from BPF trampolines, which some
// kernels refuse (seen: EPERM at load on a locked-down VM kernel that lists
// bpf). Load and attach a program that returns 0 (changes nothing) and drop it.
std::string probeLsmProgram() {
    btf* vmlinux = btf__load_vmlinux_btf();
    if (vmlinux == nullptr) {
        return "the kernel has no BTF (/sys/kernel/btf/vmlinux), which BPF LSM programs need";
    }
    int btf_id = btf__find_by_name_kind(vmlinux, "bpf_lsm_socket_create", BTF_KIND_FUNC);
    btf__free(vmlinux);
    if (btf_id < 0) {
        return "the kernel's BTF has no bpf_lsm_socket_create hook";
    }
    const bpf_insn insns[] = {
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},  // r0 = 0
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
    };
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_LSM_MAC,
                .attach_btf_id = uint32_t(btf_id));
    UniqueFd prog(bpf_prog_load(BPF_PROG_TYPE_LSM, "ztseg_lsm_probe", "GPL", insns, 2, &opts));
    if (!prog) {
        return std::string(
                   "the kernel lists bpf among its LSMs but refuses BPF LSM programs "
                   "(loading a probe on socket_create: ") +
               std::strerror(errno) + ")";
    }
    UniqueFd link(bpf_link_create(prog.get(), 0, BPF_LSM_MAC, nullptr));
    if (!link) {
        return std::string(
                   "the kernel lists bpf among its LSMs but cannot attach BPF LSM "
                   "programs (attaching a probe to socket_create: ") +
               std::strerror(errno) + ")";
    }
    return "";
}

}  // namespace

std::string bpfLsmMissing(const std::string& lsm_list) {
    std::ifstream in(lsm_list);
    if (!in) {
        return "cannot read the kernel's active LSM list at " + lsm_list + " (" +
               std::strerror(errno) +
               "; is securityfs mounted? mount -t securityfs securityfs /sys/kernel/security)";
    }
    std::string list;
    std::getline(in, list);
    std::istringstream names(list);
    for (std::string name; std::getline(names, name, ',');) {
        if (name == "bpf") {
            return probeLsmProgram();
        }
    }
    return "the kernel's active LSMs (" + list +
           ") do not include bpf (needs CONFIG_BPF_LSM=y and bpf in the lsm= boot parameter)";
}

RawGuardPlan planRawSocketGuard(const DatapathOptions& opts) {
    RawGuardPlan plan;
    if (!opts.raw_socket_guard) {
        plan.problem = "the raw-socket guard is turned off (DatapathOptions::raw_socket_guard)";
        return plan;
    }
    plan.lsm_missing = bpfLsmMissing(opts.lsm_list);
    if (plan.lsm_missing.empty()) {
        plan.kind = RawGuardKind::Lsm;
        return plan;
    }
    if (!opts.raw_socket_fallback) {
        plan.problem = plan.lsm_missing + ", and the fallback (raw_socket_fallback) is turned off";
        return plan;
    }
    RawKillHook hook = opts.raw_socket_kill_hook;
    std::string kprobe_missing;
    if (hook == RawKillHook::Auto) {
        kprobe_missing = rawKillHookMissing(RawKillHook::Kprobe);
        hook = kprobe_missing.empty() ? RawKillHook::Kprobe : RawKillHook::SyscallTracepoint;
    }
    if (std::string missing = rawKillHookMissing(hook); !missing.empty()) {
        plan.problem = plan.lsm_missing + ", and the fallback cannot kill packet-socket callers (" +
                       (kprobe_missing.empty() ? "" : kprobe_missing + "; ") + missing + ")";
        return plan;
    }
    plan.kind = RawGuardKind::Fallback;
    plan.kill_hook = hook;
    return plan;
}

std::string rawGuardModeText(RawGuardKind kind, RawKillHook kill_hook) {
    switch (kind) {
        case RawGuardKind::Lsm:
            return "BPF LSM socket_create: raw IP, packet and XDP sockets refused (EPERM)";
        case RawGuardKind::Fallback:
            return std::string(
                       "without BPF LSM: raw IP sockets refused (EPERM, cgroup sock_create); a "
                       "task asking for a packet or XDP socket is killed (SIGKILL, ") +
                   (kill_hook == RawKillHook::Kprobe
                        ? "kprobe security_socket_create)"
                        : "tracepoint syscalls/sys_enter_socket; io_uring sockets not seen)");
        case RawGuardKind::None:
            break;
    }
    return "none";
}

namespace {

// Pin a freshly created link fd; an existing pin (another adopter's) wins.
void pinLink(UniqueFd link, const std::string& pin, const std::string& what) {
    if (bpf_obj_pin(link.get(), pin.c_str()) != 0 && errno != EEXIST) {
        throwErrno("pin link of " + what + " at " + pin, errno);
    }
}

constexpr const char* kKprobePmuType = "/sys/bus/event_source/devices/kprobe/type";
constexpr const char* kSocketTracepoint = "events/syscalls/sys_enter_socket/id";
constexpr const char* kTracefsDefault = "/sys/kernel/tracing";

// The PMU type of kprobe perf events (dynamic, read from sysfs); -1 if none.
int kprobePmuType() {
    std::ifstream in(kKprobePmuType);
    int type = -1;
    return (in >> type) ? type : -1;
}

// The tracefs directory holding the syscall tracepoints: a mounted tracefs,
// else tracefs mounted at its usual place now. "" and `why` if neither.
std::string tracefsDir(std::string& why) {
    std::string dir = mountPointOfType("tracefs");
    if (!dir.empty()) {
        return dir;
    }
    std::error_code ec;
    if (!fs::is_directory(kTracefsDefault, ec)) {
        why = std::string("no tracefs mounted and no ") + kTracefsDefault + " to mount it on";
        return "";
    }
    if (::mount("tracefs", kTracefsDefault, "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) !=
        0) {
        why = std::string("no tracefs mounted, and mounting one at ") + kTracefsDefault +
              " failed: " + std::strerror(errno);
        return "";
    }
    spdlog::info("mounted tracefs at {} (for the raw-socket guard's tracepoint)", kTracefsDefault);
    return kTracefsDefault;
}

// The id of the tracepoint syscalls/sys_enter_socket; -1 and `why` if none.
int socketTracepointId(std::string& why) {
    const std::string dir = tracefsDir(why);
    if (dir.empty()) {
        return -1;
    }
    const std::string path = dir + "/" + kSocketTracepoint;
    std::ifstream in(path);
    int id = -1;
    if (!(in >> id)) {
        why = "cannot read " + path + " (a kernel without CONFIG_FTRACE_SYSCALLS?)";
        return -1;
    }
    return id;
}

}  // namespace

std::string rawKillHookMissing(RawKillHook hook) {
    if (hook == RawKillHook::Kprobe) {
        return kprobePmuType() < 0 ? std::string("the kernel has no kprobe perf events (no ") +
                                         kKprobePmuType + "; CONFIG_KPROBE_EVENTS)"
                                   : "";
    }
    std::string why;
    return socketTracepointId(why) < 0 ? why : "";
}

RawKillHook rawKillHookOf(int prog_fd) {
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) {
        throwErrno("read the info of " + std::string(kSockCreateKillProg), errno);
    }
    return info.type == BPF_PROG_TYPE_KPROBE ? RawKillHook::Kprobe : RawKillHook::SyscallTracepoint;
}

namespace {

UniqueFd openKillEvent(RawKillHook hook) {
    perf_event_attr attr{};
    attr.size = sizeof(attr);
    static const char kFunc[] = "security_socket_create";
    if (hook == RawKillHook::Kprobe) {
        int type = kprobePmuType();
        if (type < 0) {
            throw Error(rawKillHookMissing(RawKillHook::Kprobe));
        }
        attr.type = uint32_t(type);
        attr.config1 = reinterpret_cast<uint64_t>(kFunc);  // kprobe_func
    } else {
        std::string why;
        int id = socketTracepointId(why);
        if (id < 0) {
            throw Error(why);
        }
        attr.type = PERF_TYPE_TRACEPOINT;
        attr.config = uint64_t(id);
    }
    UniqueFd event(int(::syscall(SYS_perf_event_open, &attr, -1 /* any pid */, 0 /* cpu */,
                                 -1 /* group */, PERF_FLAG_FD_CLOEXEC)));
    if (!event) {
        throwErrno(hook == RawKillHook::Kprobe ? "create a kprobe on security_socket_create"
                                               : "open the tracepoint syscalls/sys_enter_socket",
                   errno);
    }
    return event;
}

}  // namespace

void attachFallbackInetPinned(int prog_fd, const std::string& pin) {
    const std::string root = cgroup2MountPoint();
    UniqueFd cg(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cg) {
        throwErrno("open cgroup2 root " + root, errno);
    }
    UniqueFd link(bpf_link_create(prog_fd, cg.get(), BPF_CGROUP_INET_SOCK_CREATE, nullptr));
    if (!link) {
        throwErrno(
            "attach " + std::string(kSockCreateInetProg) + " (cgroup/sock_create) at " + root,
            errno);
    }
    pinLink(std::move(link), pin, kSockCreateInetProg);
}

// A kprobe or tracepoint perf event with the program linked to it
// (BPF_PERF_EVENT): the link holds the event, so only the pin keeps it. A
// perf event on cpu 0 and any pid still fires on every CPU for a tracing
// program attached through a link.
void attachFallbackKillPinned(int prog_fd, const std::string& pin) {
    UniqueFd event = openKillEvent(rawKillHookOf(prog_fd));
    UniqueFd link(bpf_link_create(prog_fd, event.get(), BPF_PERF_EVENT, nullptr));
    if (!link) {
        throwErrno("attach " + std::string(kSockCreateKillProg) + " to its perf event", errno);
    }
    pinLink(std::move(link), pin, kSockCreateKillProg);
}

void attachLsmPinned(int prog_fd, const std::string& pin) {
    int fd = bpf_link_create(prog_fd, 0, BPF_LSM_MAC, nullptr);
    if (fd < 0) {
        throwErrno("attach BPF LSM program " + std::string(kSockCreateProg) + " to socket_create",
                   errno);
    }
    UniqueFd link(fd);  // closing it detaches the link unless it is pinned
    if (bpf_obj_pin(link.get(), pin.c_str()) != 0) {
        if (errno == EEXIST) {
            return;  // another adopter attached it first: keep theirs, drop this one
        }
        throwErrno("pin BPF LSM link at " + pin, errno);
    }
}

void warnRawSocketsUnconfined(const std::string& why) {
    spdlog::warn(
        "raw sockets are NOT confined: {}. Enforced workloads with CAP_NET_RAW can open raw IP, "
        "AF_PACKET and AF_XDP sockets and send packets that bypass egress policy.",
        why);
}

// After adopt: the pinned links are the guard. A datapath loaded with the
// programs whose links are gone (removed by hand) gets them attached again.
void Datapath::adoptRawSocketGuard() {
    std::error_code ec;
    if (fs::exists(lsmLinkPin(opts_.pin_dir), ec)) {
        raw_guard_kind_ = RawGuardKind::Lsm;
        raw_guard_problem_.clear();
        return;
    }
    if (raw_inet_prog_ && raw_kill_prog_) {
        if (!fs::exists(fallbackInetLinkPin(opts_.pin_dir), ec)) {
            attachFallbackInetPinned(raw_inet_prog_.get(), fallbackInetLinkPin(opts_.pin_dir));
        }
        if (!fs::exists(fallbackKillLinkPin(opts_.pin_dir), ec)) {
            attachFallbackKillPinned(raw_kill_prog_.get(), fallbackKillLinkPin(opts_.pin_dir));
        }
        raw_guard_kind_ = RawGuardKind::Fallback;
        raw_kill_hook_ = rawKillHookOf(raw_kill_prog_.get());
        raw_guard_problem_.clear();
        return;
    }
    raw_guard_kind_ = RawGuardKind::None;
    const RawGuardPlan plan = planRawSocketGuard(opts_);
    if (!lsm_prog_) {
        raw_guard_problem_ =
            "the datapath pinned at " + opts_.pin_dir + " was loaded without a raw-socket guard" +
            (plan.problem.empty() ? "" : " (" + plan.problem + ")") + "; uninstall and start again";
    } else if (plan.kind != RawGuardKind::Lsm) {
        raw_guard_problem_ = plan.problem.empty() ? plan.lsm_missing : plan.problem;
    } else {
        attachLsmPinned(lsm_prog_.get(), lsmLinkPin(opts_.pin_dir));
        spdlog::info("raw-socket guard (BPF LSM socket_create) attached again");
        raw_guard_kind_ = RawGuardKind::Lsm;
        raw_guard_problem_.clear();
        return;
    }
    warnRawSocketsUnconfined(raw_guard_problem_);
}

}  // namespace ztseg
