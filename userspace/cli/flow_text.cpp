#include "cli/flow_text.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "cli/flow_output.hpp"

namespace ztseg::cli {

namespace {

// strftime(fmt) of the second, then ".mmm" and suffix.
std::string timeText(std::chrono::system_clock::time_point t, bool utc, const char* fmt,
                     const char* suffix) {
    using namespace std::chrono;
    auto secs = floor<seconds>(t);
    std::time_t s = system_clock::to_time_t(secs);
    std::tm tm{};
    utc ? gmtime_r(&s, &tm) : localtime_r(&s, &tm);
    char buf[48];
    size_t n = std::strftime(buf, sizeof(buf), fmt, &tm);
    std::snprintf(buf + n, sizeof(buf) - n, ".%03lld%s",
                  static_cast<long long>(duration_cast<milliseconds>(t - secs).count()), suffix);
    return buf;
}

}  // namespace

std::string flowTime(std::chrono::system_clock::time_point t) {
    return timeText(t, false, "%b %d %H:%M:%S", "");
}

std::string isoTime(std::chrono::system_clock::time_point t) {
    return timeText(t, true, "%Y-%m-%dT%H:%M:%S", "Z");
}

std::string endpointText(const flows::FlowEndpoint& ep) {
    std::string who = ep.name.empty()
                          ? (ep.identity == 0 ? "unlabeled" : "id " + std::to_string(ep.identity))
                          : ep.name;
    if ((ep.ip == "0.0.0.0" || ep.ip == "::") && ep.port == 0) {
        return "(" + who + ")";  // connect() refused before the socket had an address
    }
    std::string addr = ep.ip;
    if (ep.port != 0) {
        addr = (ep.ip.find(':') != std::string::npos ? "[" + ep.ip + "]" : ep.ip) + ":" +
               std::to_string(ep.port);
    }
    return addr + " (" + who + ")";
}

std::string sourceText(const flows::FlowRecord& r) {
    std::string s = endpointText(r.src);
    if (r.proven && !s.empty() && s.back() == ')') {
        s.insert(s.size() - 1, ", proven");
    }
    return s;
}

std::string protocolText(const flows::FlowRecord& r) {
    std::string proto = r.protocol_name;
    if (r.protocol == 1 || r.protocol == 58) {
        proto += " " + std::to_string(r.icmp_type) + "/" + std::to_string(r.icmp_code);
    }
    return proto;
}

namespace {

// "summary: 700 drops on 312 ports in 3.0 s" (ports estimated, see
// flows::summaryPorts).
std::string summaryText(const flows::FlowRecord& r) {
    using namespace std::chrono;
    const double secs = double(duration_cast<milliseconds>(r.time - r.window_start).count()) / 1000;
    char span[32];
    std::snprintf(span, sizeof(span), "%.1f s", secs < 0 ? 0.0 : secs);
    return "summary: " + std::to_string(r.suppressed) + " drops on " +
           std::to_string(r.distinct_dst_ports) + " ports in " + span;
}

}  // namespace

std::string ruleText(const flows::FlowRecord& r) {
    if (r.summary) {
        return summaryText(r);
    }
    if (r.rule_id == 0) {
        return "";
    }
    std::string rule = std::to_string(r.rule_id);
    if (!r.policy.empty()) {
        rule += " " + r.policy;
    }
    if (!r.rule_location.empty()) {
        rule += " (" + r.rule_location + ")";
    }
    return rule;
}

FlowTable::FlowTable(std::ostream& out, bool streaming, bool color, bool show_node)
    : out_(out), streaming_(streaming), color_(color), show_node_(show_node) {}

std::vector<std::string> FlowTable::header() const {
    std::vector<std::string> h = {"TIME",    "SOURCE", "DESTINATION", "PROTO",
                                  "VERDICT", "REASON", "HOOK",        "RULE"};
    if (show_node_) {
        h.insert(h.begin() + 1, "NODE");
    }
    return h;
}

std::vector<std::string> FlowTable::row(const flows::FlowRecord& r) const {
    std::string rule = ruleText(r);
    std::vector<std::string> cells = {
        flowTime(r.time), sourceText(r), endpointText(r.dst),      protocolText(r), r.verdict,
        r.reason,         r.hook,        rule.empty() ? "-" : rule};
    if (show_node_) {
        cells.insert(cells.begin() + 1, r.host.empty() ? "?" : r.host);
    }
    return cells;
}

void FlowTable::print(const std::vector<std::string>& cells, const std::vector<size_t>& widths) {
    std::string line;
    size_t verdict_column = show_node_ ? 5 : 4;
    for (size_t i = 0; i < cells.size(); ++i) {
        // Rows hold the verdict as recorded; the header holds "VERDICT".
        bool verdict = i == verdict_column && cells[i] != "VERDICT";
        line += verdict ? verdictText(cells[i], color_) : cells[i];
        if (i + 1 < cells.size()) {
            line += std::string(std::max(widths[i], cells[i].size()) - cells[i].size() + 2, ' ');
        }
    }
    out_ << line << "\n";
}

void FlowTable::add(const flows::FlowRecord& r) {
    if (!streaming_) {
        rows_.push_back(row(r));
        return;
    }
    std::vector<size_t> widths = {19, 30, 30, 5, 10, 14, 14, 0};
    if (show_node_) {
        widths.insert(widths.begin() + 1, 12);
    }
    if (!header_done_) {
        print(header(), widths);
        header_done_ = true;
    }
    print(row(r), widths);
    out_.flush();
}

void FlowTable::finish() {
    if (streaming_) {
        return;
    }
    std::vector<size_t> widths(header().size(), 0);
    for (size_t i = 0; i < widths.size(); ++i) {
        widths[i] = header()[i].size();
        for (const auto& r : rows_) widths[i] = std::max(widths[i], r[i].size());
    }
    print(header(), widths);
    for (const auto& r : rows_) print(r, widths);
    rows_.clear();
}

}  // namespace ztseg::cli
