// The programs Datapath attaches to every workload cgroup, in the order of
// Datapath::cgroup_progs_ (internal to the datapath library).
#pragma once

#include <linux/bpf.h>

#include <array>

namespace ztseg {

struct CgroupHook {
    const char* prog;    // pinned program name
    const char* short_;  // link pin suffix
    bpf_attach_type type;
};
inline constexpr std::array<CgroupHook, 7> kCgroupHooks = {{
    {"ztseg_cg_ingress", "ingress", BPF_CGROUP_INET_INGRESS},
    {"ztseg_cg_egress", "egress", BPF_CGROUP_INET_EGRESS},
    {"ztseg_connect4", "connect4", BPF_CGROUP_INET4_CONNECT},
    {"ztseg_connect6", "connect6", BPF_CGROUP_INET6_CONNECT},
    {"ztseg_sendmsg4", "sendmsg4", BPF_CGROUP_UDP4_SENDMSG},
    {"ztseg_sendmsg6", "sendmsg6", BPF_CGROUP_UDP6_SENDMSG},
    {"ztseg_sock_ops", "sockops", BPF_CGROUP_SOCK_OPS},
}};

inline constexpr size_t kCgroupHookCount = kCgroupHooks.size();

}  // namespace ztseg
