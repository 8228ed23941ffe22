// The raw-socket guard: bpf/lsm_socket.c, a BPF LSM program on
// socket_create that refuses raw IP, AF_PACKET and AF_XDP sockets to enforced
// workloads (their packets bypass the connect/sendmsg hooks, AF_PACKET frames
// the cgroup egress hook too). It is attached once for the whole host (the
// task's cgroup names the workload) and its link is pinned like every other
// ztseg link, so it outlives the loader and is found again on adopt.
//
// Without BPF LSM in the running kernel the same verdict runs from two other
// host-wide programs (the fallback, DatapathOptions::raw_socket_fallback): a
// cgroup/sock_create program at the cgroup2 root refuses raw IP sockets with
// EPERM, and a kprobe on security_socket_create (or, on kernels without
// kprobes, the socket(2) syscall's entry tracepoint) kills (SIGKILL) a task
// that asks for an AF_PACKET or AF_XDP socket, which no other hook can refuse.
// With the fallback turned off too, Datapath loads without a guard, logs a
// warning saying so and reports it (Datapath::rawSocketGuard) instead of
// failing; see docs/datapath.md, "Raw and packet sockets".
#pragma once

#include <string>

namespace ztseg {

inline constexpr const char* kSockCreateProg = "ztseg_sock_create";           // BPF LSM
inline constexpr const char* kSockCreateInetProg = "ztseg_sock_create_inet";  // fallback: raw IP
// Fallback, packet sockets: the kprobe or the tracepoint program, pinned
// under this one name whichever of the two was loaded.
inline constexpr const char* kSockCreateKillProg = "ztseg_sock_create_kill";
inline constexpr const char* kDefaultLsmList = "/sys/kernel/security/lsm";

// Where the socket_create link is pinned under a datapath pin dir.
std::string lsmLinkPin(const std::string& pin_dir);
// Where the fallback's links are pinned: cgroup/sock_create at the cgroup2
// root, and the kprobe on security_socket_create.
std::string fallbackInetLinkPin(const std::string& pin_dir);
std::string fallbackKillLinkPin(const std::string& pin_dir);

enum class RawGuardKind { None, Lsm, Fallback };

// Where the fallback kills a task asking for a packet socket: a kprobe on
// security_socket_create (every socket the kernel creates for a task,
// io_uring's too), or, on kernels without kprobes, the tracepoint
// syscalls/sys_enter_socket (socket(2) only). Auto: the kprobe if the kernel
// has kprobe perf events, else the tracepoint.
enum class RawKillHook { Auto, Kprobe, SyscallTracepoint };

// Which guard a datapath created with these options gets, and why.
struct RawGuardPlan {
    RawGuardKind kind = RawGuardKind::None;
    RawKillHook kill_hook = RawKillHook::Auto;  // kind Fallback: Kprobe or SyscallTracepoint
    std::string lsm_missing;                    // why BPF LSM is not usable ("" if it is)
    std::string problem;                        // kind None: why raw sockets stay unconfined
};
struct DatapathOptions;
RawGuardPlan planRawSocketGuard(const DatapathOptions& opts);

// How a guard of this kind confines raw sockets, for status and logs.
std::string rawGuardModeText(RawGuardKind kind, RawKillHook kill_hook);

// "" if the kernel can attach the fallback's kill to `hook` (Kprobe or
// SyscallTracepoint); otherwise why not. Mounts tracefs at /sys/kernel/tracing
// when no tracefs is mounted (as systemd does at boot).
std::string rawKillHookMissing(RawKillHook hook);

// "" if the running kernel runs BPF LSM programs: "bpf" is in the active LSM
// list read from `lsm_list`, and a probe program loads and attaches to
// socket_create. Otherwise why not, in words for the operator.
std::string bpfLsmMissing(const std::string& lsm_list);

// Attach the loaded LSM program `prog_fd` to its hook and pin the link at
// `pin`. If another process pinned one there meanwhile, that one is kept.
// Throws Error.
void attachLsmPinned(int prog_fd, const std::string& pin);

// The fallback's attachments, pinned at `pin` (an existing pin is kept):
// `prog_fd` (cgroup/sock_create) at the cgroup2 root, or `prog_fd` (a kprobe
// or tracepoint program: its type says which) on its hook. Throw Error.
void attachFallbackInetPinned(int prog_fd, const std::string& pin);
void attachFallbackKillPinned(int prog_fd, const std::string& pin);
// The hook a loaded kill program is for (Kprobe or SyscallTracepoint).
RawKillHook rawKillHookOf(int prog_fd);

// The warning for a datapath that does not confine raw sockets, and why.
void warnRawSocketsUnconfined(const std::string& why);

}  // namespace ztseg
