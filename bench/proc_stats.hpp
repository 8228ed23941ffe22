// CPU time and memory of a process from /proc/<pid>, and the counters of a
// Prometheus text endpoint (etcd's /metrics), for the fleet benchmark.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>

namespace ztseg::bench {

struct ProcStats {
    double cpu_s = 0;     // user + system
    double rss_mib = 0;   // VmRSS
    double peak_mib = 0;  // VmHWM
};
// Throws Error if the process is gone.
ProcStats procStats(pid_t pid);

// Every sample of http://host:port/metrics, summed over labels: name -> value.
// Throws Error if it cannot be read.
std::map<std::string, double> scrapeMetrics(const std::string& host, int port);

}  // namespace ztseg::bench
