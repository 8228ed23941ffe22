// Flow event pipeline throughput: the XDP program emits drop events (via
// BPF_PROG_TEST_RUN, rate limiting off) while a consumer thread reads the ring
// buffer, enriches each event and writes OCSF JSON lines to a file. Reports
// events/s produced, written, and lost (counted, never silent).
#include <bpf/bpf.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include "common/error.hpp"
#include "common/packet_builder.hpp"
#include "datapath/datapath.hpp"
#include "datapath/event_reader.hpp"
#include "flows/enrich.hpp"
#include "flows/jsonl_sink.hpp"

using namespace ztseg;
using Clock = std::chrono::steady_clock;

namespace {

struct Result {
    double seconds;
    uint64_t emitted, lost_ring, written, lost_sink;
};

// Produce at full speed for `duration` with `producers` threads; one consumer.
Result run(double duration_s, uint32_t batch, const std::string& out_path) {
    DatapathOptions o;
    o.pin_dir = "/sys/fs/bpf/ztseg-bench-flows-" + std::to_string(getpid());
    o.drop_event_interval_ns = 0;
    o.ringbuf_bytes = 16u << 20;
    Datapath::uninstall(o.pin_dir);
    Datapath dp = Datapath::create(o);
    struct Cleanup {
        std::string dir;
        ~Cleanup() { Datapath::uninstall(dir); }
    } cleanup{o.pin_dir};
    Generation g;
    g.number = 1;
    dp.apply(g);  // no identities: every source is unlabeled, every packet an event

    auto policy = std::make_shared<const policy::CompiledPolicy>();
    flows::Enricher enricher(policy, "bench-host");
    flows::JsonlSink sink({out_path, 256ull << 20, 2});
    std::atomic<bool> stop{false};
    uint64_t consumed = 0;
    EventReader reader(dp.eventsFd(), [&](const ztseg_flow_event& e) {
        sink.write(enricher.enrich(e));
        ++consumed;
    });
    std::thread consumer([&] {
        while (!stop) {
            reader.poll(std::chrono::milliseconds(50));
        }
        reader.drain();
    });

    auto frame = test::PacketBuilder::ipv4("192.0.2.1", "10.1.0.20").udp(1000, 53).build();
    int prog = dp.programFd("ztseg_xdp");
    auto t0 = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - t0).count() < duration_s) {
        LIBBPF_OPTS(bpf_test_run_opts, r, .data_in = frame.data(),
                    .data_size_in = uint32_t(frame.size()), .repeat = int(batch));
        if (bpf_prog_test_run_opts(prog, &r) != 0) {
            throwErrno("BPF_PROG_TEST_RUN", errno);
        }
    }
    double produced_s = std::chrono::duration<double>(Clock::now() - t0).count();
    stop = true;
    consumer.join();
    sink.flush();
    Counters c = dp.counters();
    std::filesystem::remove(out_path);
    std::filesystem::remove(out_path + ".1");
    std::filesystem::remove(out_path + ".2");
    return {produced_s, c.events[ZTSEG_EVSTAT_EMITTED], c.events[ZTSEG_EVSTAT_LOST_RINGBUF],
            sink.written(), sink.lost()};
}

}  // namespace

int main(int argc, char** argv) {
    bool smoke = argc > 1 && std::string(argv[1]) == "--smoke";
    spdlog::set_level(spdlog::level::warn);
    try {
        std::string path = std::filesystem::temp_directory_path() /
                           ("ztseg-flows-bench-" + std::to_string(getpid()) + ".jsonl");
        std::cout << "| producer batch | seconds | events emitted | emitted/s | written/s | "
                     "lost (ring full) | lost (sink) |\n|---:|---:|---:|---:|---:|---:|---:|\n";
        for (uint32_t batch :
             smoke ? std::vector<uint32_t>{100} : std::vector<uint32_t>{1000, 10000, 100000}) {
            Result r = run(smoke ? 0.2 : 3.0, batch, path);
            std::printf("| %u | %.2f | %llu | %.0f | %.0f | %llu | %llu |\n", batch, r.seconds,
                        (unsigned long long)r.emitted, r.emitted / r.seconds, r.written / r.seconds,
                        (unsigned long long)r.lost_ring, (unsigned long long)r.lost_sink);
            if (r.written != r.emitted) {
                std::cerr << "every emitted event must be written: " << r.written << " vs "
                          << r.emitted << "\n";
                return 1;
            }
        }
        std::cout << "\nEvents: XDP drop of an unlabeled source, per-flow rate limiting off; "
                     "consumer: ring buffer -> enrich -> OCSF JSON line -> file (one thread).\n";
    } catch (const std::exception& e) {
        std::cerr << "ztseg_bench_flows: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
