#include "cli/flow_output.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "cli/status_text.hpp"
#include "shared/flow_stream.hpp"

namespace ztseg::cli {
namespace {

std::string directionText(Direction d) {
    return d == Direction::Ingress ? "ingress" : "egress";
}

}  // namespace

void addFlowOutputOptions(CLI::App* cmd, FlowOutputArgs& a) {
    cmd->add_option("-o,--output", a.format,
                    "table (for people), compact (one line per flow), dict (KEY: value "
                    "blocks), json (OCSF lines, as in the flow file), jsonpb (the API's "
                    "FlowEvent as protobuf JSON)")
        ->check(CLI::IsMember({"table", "compact", "dict", "json", "jsonpb"}))
        ->capture_default_str();
    cmd->add_option("--color", a.color, "colour verdicts: auto (on a terminal), always, never")
        ->check(CLI::IsMember({"auto", "always", "never"}))
        ->capture_default_str();
}

bool useColor(const std::string& when) {
    if (when == "always") {
        return true;
    }
    if (when == "never") {
        return false;
    }
    const char* term = std::getenv("TERM");
    return ::isatty(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr &&
           !(term && std::string(term) == "dumb");
}

std::string verdictText(const std::string& verdict, bool color) {
    std::string text = verdict;
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return char(std::toupper(c)); });
    if (!color) {
        return text;
    }
    const char* code = verdict == "allowed"      ? "\033[32m"
                       : verdict == "dropped"    ? "\033[31m"
                       : verdict == "would-drop" ? "\033[33m"
                                                 : "";
    return *code ? code + text + "\033[0m" : text;
}

std::string compactLine(const flows::FlowRecord& r, bool color, bool show_node) {
    std::string line = flowTime(r.time);
    if (show_node) {
        line += " [" + (r.host.empty() ? std::string("?") : r.host) + "]";
    }
    line += ": " + sourceText(r) + " -> " + endpointText(r.dst) + " " + protocolText(r) + " " +
            directionText(r.direction) + " " + verdictText(r.verdict, color) + " (" + r.reason +
            " at " + r.hook;
    if (std::string rule = ruleText(r); !rule.empty()) {
        line += (r.summary ? ", " : ", rule ") + rule;
    }
    return line + ")";
}

std::string dictBlock(const flows::FlowRecord& r, bool color, bool show_node) {
    std::vector<std::pair<std::string, std::string>> rows;
    rows.push_back({"TIME", flowTime(r.time)});
    if (show_node) {
        rows.push_back({"NODE", r.host.empty() ? "?" : r.host});
    }
    rows.push_back({"SOURCE", sourceText(r)});
    rows.push_back({"DESTINATION", endpointText(r.dst)});
    rows.push_back({"PROTOCOL", protocolText(r)});
    rows.push_back({"DIRECTION", directionText(r.direction)});
    rows.push_back({"VERDICT", verdictText(r.verdict, color)});
    rows.push_back({"REASON", r.reason});
    rows.push_back({"HOOK", r.hook});
    if (std::string rule = ruleText(r); !rule.empty()) {
        rows.push_back({r.summary ? "SUMMARY" : "RULE", rule});
    }
    if (!r.workload.empty()) {
        rows.push_back({"WORKLOAD", r.workload});
    }
    if (r.generation != 0) {
        rows.push_back({"GENERATION", std::to_string(r.generation)});
    }
    std::string out;
    for (const auto& [k, v] : rows) {
        out += std::string(11 - k.size(), ' ') + k + ": " + v + "\n";
    }
    return out;
}

FlowPrinter::FlowPrinter(const FlowOutputArgs& a, bool streaming, bool show_node)
    : format_(a.format),
      color_(useColor(a.color)),
      show_node_(show_node),
      table_(std::cout, streaming, color_, show_node) {}

void FlowPrinter::print(const ShownFlow& s) {
    if (format_ == "table") {
        table_.add(s.record);
        return;
    }
    if (format_ == "compact") {
        std::cout << compactLine(s.record, color_, show_node_) << "\n";
    } else if (format_ == "dict") {
        std::cout << (first_ ? "" : "------------\n") << dictBlock(s.record, color_, show_node_);
    } else if (format_ == "json") {
        std::cout << s.ocsf << "\n";
    } else {
        v1::FlowEvent ev = s.event ? *s.event : toFlowEvent(s.record);
        std::cout << protoJson(ev, false) << "\n";
    }
    first_ = false;
    std::cout.flush();
}

void FlowPrinter::finish() {
    if (format_ == "table") {
        table_.finish();
    }
}

bool FlowWindow::add(ShownFlow s) {
    if (first_ && kept_.size() >= first_) {
        return false;
    }
    kept_.push_back(std::move(s));
    if (last_ && kept_.size() > last_) {
        kept_.pop_front();
    }
    return !first_ || kept_.size() < first_;
}

}  // namespace ztseg::cli
