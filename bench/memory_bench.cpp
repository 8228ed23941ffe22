// Daemon and map memory (issue 7, item 5): the real ztsegd, started with a
// bundle of N rules (the benchmark policy, compiled from its YAML form),
// then the conntrack map filled with M real entries by running ztseg's own
// cgroup ingress program on M distinct allowed SYNs (BPF_PROG_TEST_RUN from
// inside the workload's cgroup: exactly the entries live traffic would make).
// Reports the daemon's RSS and the kernel memory of every map the ztseg
// programs use, inner (per-generation) maps included. Prints Markdown.
#include <bpf/bpf.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_policy.hpp"
#include "common/error.hpp"
#include "common/lab.hpp"
#include "common/packet_builder.hpp"
#include "datapath/datapath.hpp"
#include "interrupt.hpp"
#include "policy/bundle.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"
#include "proc_stats.hpp"

using namespace ztseg;
using namespace ztseg::bench;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct Config {
    uint32_t rules = 100'000;
    uint32_t conntrack = 1'000'000;
    bool smoke = false;
};

const char* kPrograms[] = {"ztseg_xdp",      "ztseg_cg_ingress", "ztseg_cg_egress",
                           "ztseg_connect4", "ztseg_connect6",   "ztseg_sendmsg4",
                           "ztseg_sendmsg6"};

struct Rss {
    double rss_mib = 0, peak_mib = 0;
    double bpf_mib = 0;   // mmapped BPF maps (ring buffer): kernel memory, in map memory too
    double heap_mib = 0;  // private anonymous memory: what ztsegd's own data costs
};

// Splits the RSS by mapping, so the daemon's own data is told apart from
// shared libraries and from BPF maps it merely maps.
void splitRss(pid_t pid, Rss& r) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/smaps");
    bool bpf = false, anon = false;
    for (std::string line; std::getline(in, line);) {
        std::istringstream s(line);
        std::string first;
        s >> first;
        if (!first.empty() && first.back() != ':') {  // a mapping's header line
            std::string perms, off, dev, inode, name;
            s >> perms >> off >> dev >> inode;
            std::getline(s >> std::ws, name);
            bpf = name.starts_with("anon_inode:bpf-map");
            anon = inode == "0" && (name.empty() || name == "[heap]" || name == "[stack]");
        } else if (first == "Rss:") {
            double kb = 0;
            s >> kb;
            if (bpf)
                r.bpf_mib += kb / 1024;
            if (anon)
                r.heap_mib += kb / 1024;
        }
    }
}

// VmRSS and VmHWM of the running daemon, split by mapping.
Rss rssOf(pid_t pid) {
    ProcStats p = procStats(pid);
    Rss r{p.rss_mib, p.peak_mib};
    if (r.rss_mib == 0) {
        throw Error("read memory of ztsegd (pid " + std::to_string(pid) + "): not running?");
    }
    splitRss(pid, r);
    return r;
}

struct MapUse {
    std::string name;
    uint32_t type = 0, max_entries = 0, count = 0;
    uint64_t memlock = 0;
};

uint64_t memlockOf(int fd) {
    std::ifstream in("/proc/self/fdinfo/" + std::to_string(fd));
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("memlock:", 0) == 0) {
            return std::stoull(line.substr(8));
        }
    }
    throw Error("no memlock in fdinfo of map fd " + std::to_string(fd));
}

// Every map the ztseg programs use, and the inner maps of map-in-map outers.
std::vector<MapUse> mapsOf(const Datapath& dp) {
    std::set<uint32_t> ids;
    for (const char* name : kPrograms) {
        int fd = dp.programFd(name);
        if (fd < 0) {
            continue;
        }
        bpf_prog_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
            throwErrno(std::string("read program info of ") + name, errno);
        }
        std::vector<uint32_t> map_ids(info.nr_map_ids);
        info = {};
        info.nr_map_ids = uint32_t(map_ids.size());
        info.map_ids = uint64_t(uintptr_t(map_ids.data()));
        len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
            throwErrno(std::string("read map ids of ") + name, errno);
        }
        ids.insert(map_ids.begin(), map_ids.end());
    }
    std::vector<MapUse> out;
    std::set<uint32_t> done;
    while (!ids.empty()) {
        uint32_t id = *ids.begin();
        ids.erase(ids.begin());
        if (!done.insert(id).second) {
            continue;
        }
        UniqueFd fd(bpf_map_get_fd_by_id(id));
        if (!fd) {
            throwErrno("open map id " + std::to_string(id), errno);
        }
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) {
            throwErrno("read map info of id " + std::to_string(id), errno);
        }
        MapUse m{info.name, info.type, info.max_entries, 0, memlockOf(fd.get())};
        if (info.type == BPF_MAP_TYPE_ARRAY_OF_MAPS || info.type == BPF_MAP_TYPE_HASH_OF_MAPS) {
            std::vector<uint8_t> key(info.key_size), next(info.key_size);
            void* prev = nullptr;
            while (bpf_map_get_next_key(fd.get(), prev, next.data()) == 0) {
                uint32_t inner = 0;
                if (bpf_map_lookup_elem(fd.get(), next.data(), &inner) == 0 && inner) {
                    ids.insert(inner);
                }
                key = next;
                prev = key.data();
            }
        }
        out.push_back(m);
    }
    return out;
}

std::string mib(double bytes) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.2f", bytes / (1024.0 * 1024.0));
    return buf;
}

// M distinct allowed SYNs through the cgroup ingress program, from a child
// inside the workload cgroup (the test run's socket takes the caller's cgroup).
void fillConntrack(const DatapathOptions& opts, test::Cgroup2& workload, const BenchPolicy& p,
                   uint32_t entries) {
    test::Child c(nullptr, &workload, [&] {
        Datapath dp = Datapath::adopt(opts);
        int prog = dp.programFd("ztseg_cg_ingress");
        const uint32_t ports = 60000;
        for (uint32_t i = 0; i < entries; ++i) {
            auto frame = test::PacketBuilder::ipv4(p.sourceV4((i / ports) % p.rules),
                                                   BenchPolicy::serverV4())
                             .tcp(uint16_t(1024 + i % ports), kBulkPort)
                             .build();
            LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame.data(),
                        .data_size_in = uint32_t(frame.size()), .repeat = 1);
            if (bpf_prog_test_run_opts(prog, &o) != 0 || o.retval != 1) {
                return 1;
            }
        }
        return 0;
    });
    if (c.wait(600s) != 0) {
        throw Error("filling conntrack: the cgroup ingress program refused an allowed SYN");
    }
}

int run(const Config& c) {
    spdlog::set_level(spdlog::level::warn);
    if (c.conntrack > 0 && uint64_t(c.conntrack) > uint64_t(c.rules) * 60000) {
        throw Error("--conntrack needs at most 60000 flows per rule source");
    }
    std::string tag = test::uniqueName("zbmem");
    fs::path dir = fs::temp_directory_path() / tag;
    fs::create_directories(dir);
    struct Cleanup {
        fs::path dir;
        std::string pin;
        ~Cleanup() {
            Datapath::uninstall(pin);
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    } cleanup{dir, "/sys/fs/bpf/" + tag};
    test::Cgroup2 root(tag);
    test::Cgroup2 workload(tag + "/server");
    test::NetNs ns(test::uniqueName("zbmn"));  // private loopback for /metrics

    BenchPolicy policy{c.rules, 0};
    auto t0 = std::chrono::steady_clock::now();
    std::string rel = workload.path().substr(test::Cgroup2::mountPoint().size() + 1);
    policy::Diagnostics d;
    auto cp =
        policy::compile(policy::parsePolicies({{"bench.yaml", policy.toPolicyYaml(rel)}}, d), 1, d);
    if (d.hasErrors()) {
        throw Error("benchmark policy does not compile:\n" + d.str());
    }
    std::string bundle = policy::serializeBundle(cp);
    double compile_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::ofstream(dir / "bundle.pb", std::ios::binary) << bundle;

    DatapathOptions opts;
    opts.pin_dir = cleanup.pin;
    uint32_t ct_capacity =
        std::max<uint32_t>(ZTSEG_DEFAULT_CT_CAPACITY, c.conntrack + c.conntrack / 20);
    std::ofstream(dir / "ztsegd.yaml")
        << "host_name: bench\n"
        << "state_dir: " << (dir / "state").string() << "\n"
        << "pin_dir: " << opts.pin_dir << "\n"
        << "cgroup_root: " << root.path() << "\n"
        << "cgroup_only: true\n"  // memory of the daemon and maps: no XDP needed
        << "bundle: " << (dir / "bundle.pb").string() << "\n"
        << "flows: {file: " << (dir / "flows.jsonl").string() << "}\n"
        << "api: {unix_socket: " << (dir / "api.sock").string() << "}\n"
        << "metrics: {listen: 127.0.0.1:9962}\n"
        << "datapath: {conntrack_capacity: " << ct_capacity << "}\n";
    std::string cfg = (dir / "ztsegd.yaml").string();
    test::Child daemon(&ns, nullptr, [cfg] {
        execl(ZTSEGD_PATH, "ztsegd", "--config", cfg.c_str(), "--log-level", "warn",
              static_cast<char*>(nullptr));
        return 127;
    });
    auto t1 = std::chrono::steady_clock::now();
    std::optional<Datapath> dp;
    for (int i = 0; i < 1200 && !(dp && dp->activeGeneration() == 1); ++i) {
        checkInterrupted();
        if (!daemon.running()) {
            throw Error("ztsegd exited during start (see its log above)");
        }
        std::this_thread::sleep_for(100ms);
        if (!dp && Datapath::isPinned(opts.pin_dir)) {
            try {
                dp.emplace(Datapath::adopt(opts));
            } catch (const Error&) {
                // still being pinned
            }
        }
    }
    if (!dp || dp->activeGeneration() != 1) {
        throw Error("ztsegd did not apply the bundle within 120 s");
    }
    double start_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    std::this_thread::sleep_for(1s);  // let it settle (endpoint sync, watchers)
    Rss applied = rssOf(daemon.pid());
    auto maps_applied = mapsOf(*dp);

    auto t2 = std::chrono::steady_clock::now();
    if (c.conntrack) {
        fillConntrack(opts, workload, policy, c.conntrack);
    }
    double fill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t2).count();
    uint32_t ct_entries = dp->conntrackEntries();
    std::this_thread::sleep_for(500ms);
    Rss filled = rssOf(daemon.pid());
    auto maps_filled = mapsOf(*dp);

    auto total = [](const std::vector<MapUse>& v) {
        uint64_t s = 0;
        for (const auto& m : v) s += m.memlock;
        return s;
    };
    std::cout << "The real ztsegd (own network namespace, cgroup hooks on a test cgroup tree, no "
                 "XDP interface) started with a bundle of "
              << c.rules << " rules (bundle " << bundle.size() / 1024 << " KiB, compiled in "
              << std::fixed << std::setprecision(2) << compile_s << " s; the daemon had it applied "
              << start_s
              << " s after start). Conntrack then filled by running ztseg's cgroup ingress "
                 "program on "
              << c.conntrack << " distinct allowed SYNs (" << fill_s
              << " s). Map memory = the kernel's `memlock` for every map the ztseg programs "
                 "use, per-generation inner maps included.\n\n"
              << "RSS splits into the daemon's private anonymous memory (its own data), mmapped "
                 "BPF maps (the event ring: kernel memory, also in the map column) and shared "
                 "libraries (the rest).\n\n"
              << "| state | rules | conntrack entries | ztsegd RSS MiB | of which private "
                 "anonymous MiB | of which mmapped BPF maps MiB | ztsegd peak RSS MiB | BPF map "
                 "memory MiB |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
              << "| bundle applied | " << c.rules << " | 0 | " << std::setprecision(1)
              << applied.rss_mib << " | " << applied.heap_mib << " | " << applied.bpf_mib << " | "
              << applied.peak_mib << " | " << mib(double(total(maps_applied))) << " |\n"
              << "| conntrack filled | " << c.rules << " | " << ct_entries << " | "
              << filled.rss_mib << " | " << filled.heap_mib << " | " << filled.bpf_mib << " | "
              << filled.peak_mib << " | " << mib(double(total(maps_filled))) << " |\n\n";
    std::map<std::string, MapUse> by_name;
    for (const auto& m : maps_filled) {
        auto& e = by_name[m.name];
        e.name = m.name;
        e.type = m.type;
        e.max_entries += m.max_entries;
        e.memlock += m.memlock;
        e.count++;
    }
    std::cout << "| map | maps | capacity (sum) | memory MiB |\n|---|---:|---:|---:|\n";
    for (const auto& [name, m] : by_name) {
        std::cout << "| " << name << " | " << m.count << " | " << m.max_entries << " | "
                  << mib(double(m.memlock)) << " |\n";
    }
    if (c.conntrack && ct_entries < c.conntrack * 95 / 100) {
        std::cout << "\nNote: the LRU conntrack map kept " << ct_entries << " of " << c.conntrack
                  << " flows (capacity " << ct_capacity << ").\n";
    }
    if (c.smoke) {
        bool ok = applied.rss_mib > 0 && total(maps_applied) > 0 &&
                  total(maps_filled) >= total(maps_applied) && ct_entries > 0 &&
                  ct_entries <= c.conntrack;
        if (!ok) {
            std::cerr << "smoke: implausible memory numbers\n";
            return 1;
        }
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Config c;
    bool smoke = false;
    CLI::App app{
        "Memory of the real ztsegd and of the ztseg BPF maps at N rules and M "
        "conntrack entries; prints Markdown"};
    app.add_flag("--smoke", smoke, "1000 rules, 10000 entries: proves the harness works");
    app.add_option("--rules", c.rules, "rules in the bundle")->check(CLI::PositiveNumber);
    app.add_option("--conntrack", c.conntrack, "conntrack entries to create");
    CLI11_PARSE(app, argc, argv);
    if (smoke) {
        c.smoke = true;
        c.rules = 1000;
        c.conntrack = 10'000;
    }
    try {
        watchInterrupts();
        return run(c);
    } catch (const std::exception& e) {
        std::cerr << "ztseg_bench_memory: " << e.what() << "\n";
        return 1;
    }
}
