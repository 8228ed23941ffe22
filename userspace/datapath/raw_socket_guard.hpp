// The raw-socket guard: bpf/lsm_socket.c, a BPF LSM program on
// socket_create that refuses raw IP, AF_PACKET and AF_XDP sockets to enforced
// workloads (their packets bypass the connect/sendmsg hooks, AF_PACKET frames
// the cgroup egress hook too). It is attached once for the whole host (the
// task's cgroup names the workload) and its link is pinned like every other
// ztseg link, so it outlives the loader and is found again on adopt.
//
// Without BPF LSM in the running kernel nothing can confine raw sockets:
// Datapath then loads without the program, logs a warning saying so, and
// reports it (Datapath::rawSocketGuard) instead of failing; see
// docs/datapath.md, "Raw and packet sockets".
#pragma once

#include <string>

namespace ztseg {

inline constexpr const char* kSockCreateProg = "ztseg_sock_create";
inline constexpr const char* kDefaultLsmList = "/sys/kernel/security/lsm";

// Where the socket_create link is pinned under a datapath pin dir.
std::string lsmLinkPin(const std::string& pin_dir);

// "" if the running kernel runs BPF LSM programs: "bpf" is in the active LSM
// list read from `lsm_list`, and a probe program loads and attaches to
// socket_create. Otherwise why not, in words for the operator.
std::string bpfLsmMissing(const std::string& lsm_list);

// Why a datapath with these options cannot have the guard, "" if it can:
// bpfLsmMissing(), or the option turned it off.
struct DatapathOptions;
std::string rawSocketGuardMissing(const DatapathOptions& opts);

// Attach the loaded LSM program `prog_fd` to its hook and pin the link at
// `pin`. If another process pinned one there meanwhile, that one is kept.
// Throws Error.
void attachLsmPinned(int prog_fd, const std::string& pin);

// The warning for a datapath that does not confine raw sockets, and why.
void warnRawSocketsUnconfined(const std::string& why);

}  // namespace ztseg
