#include "datapath/raw_socket_guard.hpp"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.hpp"
#include "common/unique_fd.hpp"
#include "datapath/datapath.hpp"

namespace fs = std::filesystem;

namespace ztseg {

std::string lsmLinkPin(const std::string& pin_dir) {
    return pin_dir + "/links/lsm-socket_create";
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

std::string rawSocketGuardMissing(const DatapathOptions& opts) {
    if (!opts.raw_socket_guard) {
        return "the raw-socket guard is turned off (DatapathOptions::raw_socket_guard)";
    }
    return bpfLsmMissing(opts.lsm_list);
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

// After adopt: the pinned link is the guard. A datapath loaded with the
// program whose link is gone (removed by hand) gets it attached again.
void Datapath::adoptRawSocketGuard() {
    const std::string pin = lsmLinkPin(opts_.pin_dir);
    std::error_code ec;
    if (fs::exists(pin, ec)) {
        raw_guard_problem_.clear();
        return;
    }
    std::string missing = rawSocketGuardMissing(opts_);
    if (!lsm_prog_) {
        raw_guard_problem_ = "the datapath pinned at " + opts_.pin_dir +
                             " was loaded without the socket_create program" +
                             (missing.empty() ? "" : " (" + missing + ")") +
                             "; uninstall and start again on a kernel with BPF LSM";
    } else if (!missing.empty()) {
        raw_guard_problem_ = missing;
    } else {
        attachLsmPinned(lsm_prog_.get(), pin);
        spdlog::info("raw-socket guard (BPF LSM socket_create) attached again at {}", pin);
        raw_guard_problem_.clear();
        return;
    }
    warnRawSocketsUnconfined(raw_guard_problem_);
}

}  // namespace ztseg
