// How `ztsegctl flows` and `ztsegctl fleet flows` print what they selected:
// -o table|compact|dict|json|jsonpb, verdicts in colour on a terminal
// (--color=auto|always|never), and --first/--last.
#pragma once

#include <CLI/CLI.hpp>
#include <deque>
#include <optional>
#include <string>

#include "agent.pb.h"
#include "cli/flow_query.hpp"
#include "cli/flow_text.hpp"
#include "flows/flow_record.hpp"

namespace ztseg::cli {

struct FlowOutputArgs {
    std::string format = "table";
    std::string color = "auto";
};
void addFlowOutputOptions(CLI::App* cmd, FlowOutputArgs& a);

// One flow as given (a file's OCSF line, or the daemon's event).
struct ShownFlow {
    flows::FlowRecord record;
    std::string ocsf;  // the OCSF line
    std::optional<v1::FlowEvent> event;
};

class FlowPrinter {
  public:
    // show_node: a NODE column / field (flows of several hosts).
    FlowPrinter(const FlowOutputArgs& a, bool streaming, bool show_node);
    void print(const ShownFlow& s);
    void finish();

  private:
    std::string format_;
    bool color_;
    bool show_node_;
    bool first_ = true;
    FlowTable table_;
};

// --first N keeps the first N, --last N the last N, neither all.
class FlowWindow {
  public:
    explicit FlowWindow(const FlowQuery& q) : first_(q.first), last_(q.last) {}
    // False once --first N flows are kept: the caller may stop reading.
    bool add(ShownFlow s);
    std::deque<ShownFlow>& kept() { return kept_; }

  private:
    size_t first_, last_;
    std::deque<ShownFlow> kept_;
};

// --color: auto is colour only on a terminal (and never with NO_COLOR set).
bool useColor(const std::string& when);
// The verdict in capitals, coloured (green allowed, red dropped, yellow would-drop) if asked.
std::string verdictText(const std::string& verdict, bool color);
// "Dec 02 03:10:01.123: 10.0.0.1:41000 (web) -> 10.0.0.3:5432 (db) tcp ingress ALLOWED ..."
std::string compactLine(const flows::FlowRecord& r, bool color, bool show_node);
// KEY: value lines, aligned on the colon.
std::string dictBlock(const flows::FlowRecord& r, bool color, bool show_node);

}  // namespace ztseg::cli
