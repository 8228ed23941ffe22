// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cgroup_mkdir tracepoint: runs synchronously inside mkdir(2) of every cgroup,
 * before any process can join it. A new cgroup whose name a workload pattern
 * gives literally ("db", "web.service"), or whose parent a glob pattern
 * guards ("ztlab/web-*" guards ztlab), is entered as pending: the hooks judge
 * it as the workload it will be (or quarantine it when that is not known)
 * until ztsegd has classified it. So neither a start race nor a workload
 * re-created while ztsegd is down ever runs unjudged.
 */
#include <linux/bpf.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "maps.h"

/* Just the fields read here; CO-RE relocates them against the kernel's BTF. */
struct kernfs_node {
    const char* name;
    __u64 id;
} __attribute__((preserve_access_index));

struct cgroup;
struct cgroup_subsys_state {
    struct cgroup* cgroup;
    struct cgroup_subsys_state* parent;
} __attribute__((preserve_access_index));

struct cgroup {
    struct cgroup_subsys_state self;
    struct kernfs_node* kn;
    int level;
} __attribute__((preserve_access_index));

static __always_inline int ztseg_has_prefix(const char* name, const char* prefix) {
    for (int i = 0; i < ZTSEG_CG_PREFIX_LEN; i++) {
        if (prefix[i] == 0)
            return 1;
        if (name[i] != prefix[i])
            return 0;
    }
    return 1;
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(ztseg_cg_mkdir, struct cgroup* cgrp, const char* path) {
    struct ztseg_cg_name_key name = {};
    struct ztseg_pending_cgroup pending = {};
    struct ztseg_identity_info* info;
    __u64 id, parent_id = 0;
    __u32 level, cfg = ZTSEG_CFG_PENDING_LEVELS;
    __u64* levels;

    id = BPF_CORE_READ(cgrp, kn, id);
    level = BPF_CORE_READ(cgrp, level);
    bpf_probe_read_kernel_str(name.name, sizeof(name.name), BPF_CORE_READ(cgrp, kn, name));
    info = bpf_map_lookup_elem(&ztseg_cg_names, &name);
    if (!info) {
        struct ztseg_cg_guard* g;
        parent_id = BPF_CORE_READ(cgrp, self.parent, cgroup, kn, id);
        g = bpf_map_lookup_elem(&ztseg_cg_guards, &parent_id);
        if (g && ztseg_has_prefix(name.name, g->prefix))
            info = &g->info;
    }
    if (!info || level >= ZTSEG_CG_MAX_LEVEL)
        return 0;
    pending.info = *info;
    pending.created_ns = bpf_ktime_get_ns();
    /* the level first: a hook that finds the entry must also look at its level */
    levels = bpf_map_lookup_elem(&ztseg_config, &cfg);
    if (levels)
        __sync_fetch_and_or(levels, 1ull << level);
    bpf_map_update_elem(&ztseg_cg_pending, &id, &pending, BPF_ANY);
    return 0;
}
