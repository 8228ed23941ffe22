#include "proc_stats.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/error.hpp"
#include "common/httplib_quiet.hpp"

namespace ztseg::bench {

ProcStats procStats(pid_t pid) {
    const std::string dir = "/proc/" + std::to_string(pid);
    ProcStats r;
    std::ifstream stat(dir + "/stat");
    std::string line;
    if (!std::getline(stat, line)) {
        throw Error("read " + dir + "/stat: process gone");
    }
    // Fields after the command (which may hold spaces): state is field 3,
    // utime and stime are fields 14 and 15.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14)
            utime = std::stod(field);
        if (i == 15)
            stime = std::stod(field);
    }
    r.cpu_s = (utime + stime) / double(::sysconf(_SC_CLK_TCK));
    std::ifstream status(dir + "/status");
    while (std::getline(status, line)) {
        std::istringstream s(line);
        std::string key;
        double kb = 0;
        s >> key >> kb;
        if (key == "VmRSS:")
            r.rss_mib = kb / 1024;
        if (key == "VmHWM:")
            r.peak_mib = kb / 1024;
    }
    return r;
}

std::map<std::string, double> scrapeMetrics(const std::string& host, int port) {
    httplib::Client client(host, port);
    client.set_read_timeout(10, 0);
    auto res = client.Get("/metrics");
    if (!res || res->status != 200) {
        throw Error(
            "scrape http://" + host + ":" + std::to_string(port) + "/metrics: " +
            (res ? "HTTP " + std::to_string(res->status) : httplib::to_string(res.error())));
    }
    std::map<std::string, double> out;
    std::istringstream in(res->body);
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#')
            continue;
        size_t name_end = line.find_first_of("{ ");
        size_t value_at = line.rfind(' ');
        if (name_end == std::string::npos || value_at == std::string::npos)
            continue;
        try {
            out[line.substr(0, name_end)] += std::stod(line.substr(value_at + 1));
        } catch (const std::exception&) {
            // NaN/Inf spellings stod refuses: not a counter we read
        }
    }
    return out;
}

}  // namespace ztseg::bench
