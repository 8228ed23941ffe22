// How ztsegctl shows flows to people: times, endpoints, and the aligned
// table of `ztsegctl flows` (in the spirit of `hubble observe`).
#pragma once

#include <chrono>
#include <ostream>
#include <string>
#include <vector>

#include "flows/flow_record.hpp"

namespace ztseg::cli {

// Local time, "Dec 02 03:10:01.123" (TZ decides the zone).
std::string flowTime(std::chrono::system_clock::time_point t);
// UTC, "2026-12-02T03:10:01.123Z", for JSON.
std::string isoTime(std::chrono::system_clock::time_point t);
// "10.10.1.10:41000 (web)", "10.0.0.9 (unlabeled)", IPv6 as "[fd00::1]:80 (web)".
std::string endpointText(const flows::FlowEndpoint& ep);
// The source as endpointText, marked "proven" when its identity came from a
// proof on the wire (docs/datapath.md#proven-identity), not from its address.
std::string sourceText(const flows::FlowRecord& r);

// "tcp", "icmp 8/0" (type/code).
std::string protocolText(const flows::FlowRecord& r);
// "3 web-to-db (policies/3tier.yaml:12)", "" when no rule decided.
std::string ruleText(const flows::FlowRecord& r);

// Rows of flows. Whole tables are aligned to their widest cell; streamed rows
// (--follow) use fixed widths so they line up without knowing what comes.
class FlowTable {
  public:
    // color: verdicts in colour; show_node: a NODE column (flows of several hosts).
    FlowTable(std::ostream& out, bool streaming, bool color = false, bool show_node = false);
    void add(const flows::FlowRecord& r);  // streaming: printed at once
    void finish();                         // whole table: printed now

  private:
    std::vector<std::string> header() const;
    std::vector<std::string> row(const flows::FlowRecord& r) const;
    void print(const std::vector<std::string>& cells, const std::vector<size_t>& widths);

    std::ostream& out_;
    bool streaming_;
    bool color_;
    bool show_node_;
    bool header_done_ = false;
    std::vector<std::vector<std::string>> rows_;
};

}  // namespace ztseg::cli
