// The verifier's cost of every program (Cilium keeps the same guard): each
// program's verified instruction count stays within its budget in
// tests/bpf/verifier_budgets.txt, and the list names exactly the programs of
// the datapath object. Programs the kernel cannot load here (BPF LSM without
// BPF LSM, the kprobe without kprobes) are reported, not judged.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "common/lab.hpp"
#include "common/unique_fd.hpp"
#include "datapath/datapath.hpp"
#include "datapath/pins.hpp"
#include "datapath/raw_socket_guard.hpp"
#include "ztseg.skel.h"

namespace fs = std::filesystem;

namespace ztseg::test {
namespace {

std::map<std::string, uint64_t> readBudgets(const std::string& path) {
    std::ifstream in(path);
    EXPECT_TRUE(in) << "cannot read " << path;
    std::map<std::string, uint64_t> budgets;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        if (line.empty() || line[0] == '#') {
            continue;
        }
        std::istringstream fields(line);
        std::string name;
        uint64_t budget = 0;
        EXPECT_TRUE(fields >> name >> budget) << path << ":" << n << ": want <program> <budget>";
        EXPECT_TRUE(budgets.emplace(name, budget).second)
            << path << ":" << n << ": " << name << " listed twice";
    }
    return budgets;
}

// Every program of the object, by name (from the skeleton, nothing loaded).
std::vector<std::string> objectPrograms() {
    std::vector<std::string> names;
    ztseg_bpf* skel = ztseg_bpf__open();
    EXPECT_NE(skel, nullptr);
    if (skel == nullptr) {
        return names;
    }
    bpf_program* p = nullptr;
    bpf_object__for_each_program(p, skel->obj) {
        names.emplace_back(bpf_program__name(p));
    }
    ztseg_bpf__destroy(skel);
    return names;
}

// Create a datapath with `opts`, read verified_insns of every program it
// pinned into `out` (largest seen per name), uninstall it.
void record(std::map<std::string, uint64_t>& out, const std::string& name, uint64_t n) {
    uint64_t& v = out[name];
    v = std::max(v, n);
}

// Programs that are only linked, not pinned (the cgroup_mkdir tracepoint):
// found through their links. The kernel keeps 15 characters of a program's
// name; the object's program with that prefix is the one.
void measureLinked(const std::string& pin_dir, const std::vector<std::string>& programs,
                   std::map<std::string, uint64_t>& out) {
    for (const auto& entry : fs::directory_iterator(pins::linksDir(pin_dir))) {
        UniqueFd link(bpf_obj_get(entry.path().c_str()));
        bpf_link_info li{};
        uint32_t len = sizeof(li);
        if (!link || bpf_obj_get_info_by_fd(link.get(), &li, &len) != 0) {
            continue;  // XDP links are pinned per interface: none here
        }
        UniqueFd prog(bpf_prog_get_fd_by_id(li.prog_id));
        bpf_prog_info info{};
        len = sizeof(info);
        ASSERT_TRUE(prog) << entry.path();
        ASSERT_EQ(bpf_obj_get_info_by_fd(prog.get(), &info, &len), 0);
        const std::string short_name = info.name;
        std::vector<std::string> unpinned_matches;
        for (const std::string& p : programs) {
            if (p.compare(0, short_name.size(), short_name) == 0 &&
                !fs::exists(pins::progsDir(pin_dir) + "/" + p)) {
                unpinned_matches.push_back(p);
            }
        }
        if (unpinned_matches.size() == 1 && short_name.size() < 15) {  // a whole name
            record(out, unpinned_matches[0], info.verified_insns);
        }
    }
}

void measure(DatapathOptions opts, const std::vector<std::string>& programs,
             std::map<std::string, uint64_t>& out) {
    opts.pin_dir = "/sys/fs/bpf/" + uniqueName("ztvb");
    {
        Datapath dp = Datapath::create(opts);
        ASSERT_NO_FATAL_FAILURE(measureLinked(opts.pin_dir, programs, out));
        for (const auto& entry : fs::directory_iterator(pins::progsDir(opts.pin_dir))) {
            UniqueFd fd(bpf_obj_get(entry.path().c_str()));
            ASSERT_TRUE(fd) << entry.path();
            bpf_prog_info info{};
            uint32_t len = sizeof(info);
            ASSERT_EQ(bpf_obj_get_info_by_fd(fd.get(), &info, &len), 0);
            ASSERT_GT(info.verified_insns, 0u) << entry.path() << ": kernel reports no count";
            // One pin name for both kill variants: the type tells which one.
            std::string name = entry.path().filename();
            if (name == kSockCreateKillProg && info.type == BPF_PROG_TYPE_TRACEPOINT) {
                name = "ztseg_sock_create_kill_tp";
            }
            record(out, name, info.verified_insns);
        }
    }
    Datapath::uninstall(opts.pin_dir);
}

TEST(VerifierBudget, EveryProgramStaysWithinItsRecordedBudget) {
    const std::string list = std::string(ZTSEG_SOURCE_DIR) + "/tests/bpf/verifier_budgets.txt";
    const auto budgets = readBudgets(list);
    const auto programs = objectPrograms();
    ASSERT_FALSE(programs.empty());
    for (const std::string& p : programs) {
        EXPECT_TRUE(budgets.count(p))
            << p << " (a program of the object) has no budget in " << list;
    }
    for (const auto& [name, budget] : budgets) {
        EXPECT_NE(std::find(programs.begin(), programs.end(), name), programs.end())
            << list << " names " << name << ", which is no program of the object";
    }

    // Every program this kernel loads: the default guard, then the fallback
    // with each kill hook the kernel has. The guard's programs touch no
    // workload here (no generation is applied).
    std::map<std::string, uint64_t> measured;
    DatapathOptions base;
    ASSERT_NO_FATAL_FAILURE(measure(base, programs, measured));
    const std::string no_lsm = "/tmp/" + uniqueName("ztlsm");
    std::ofstream(no_lsm) << "capability\n";
    for (RawKillHook hook : {RawKillHook::Kprobe, RawKillHook::SyscallTracepoint}) {
        if (!rawKillHookMissing(hook).empty()) {
            continue;
        }
        DatapathOptions o = base;
        o.lsm_list = no_lsm;
        o.raw_socket_kill_hook = hook;
        ASSERT_NO_FATAL_FAILURE(measure(o, programs, measured));
    }
    fs::remove(no_lsm);
    std::cout << "program                      verified  budget\n";
    for (const auto& [name, budget] : budgets) {
        auto it = measured.find(name);
        if (it == measured.end()) {
            std::cout << "  " << name << ": not loaded on this kernel (budget " << budget << ")\n";
            continue;
        }
        std::cout << "  " << name << " " << it->second << " / " << budget << "\n";
        EXPECT_LE(it->second, budget) << name << " grew past its verifier budget (" << list << ")";
        RecordProperty(name, std::to_string(it->second));
    }
    for (const auto& [name, n] : measured) {
        EXPECT_TRUE(budgets.count(name))
            << name << " was loaded (" << n << " instructions verified) but has no budget";
    }
    EXPECT_GE(measured.size(), 9u) << "fewer programs loaded than XDP x2, cgroup x6, mkdir";
}

}  // namespace
}  // namespace ztseg::test
