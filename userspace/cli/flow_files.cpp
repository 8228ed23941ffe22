#include "cli/flow_files.hpp"

#include <iostream>

namespace ztseg::cli {

void forEachFlowInFiles(
    const std::vector<std::string>& files, bool strict,
    const std::function<void(const flows::FlowRecord&, const std::string&)>& fn) {
    for (const auto& f : files) {
        flows::FlowReadReport report = flows::forEachFlowLine(f, fn, {strict});
        for (const std::string& w : report.warnings()) {
            std::cerr << "ztsegctl: warning: " << w << "\n";
        }
    }
}

std::vector<flows::FlowRecord> readFlowFiles(const std::vector<std::string>& files, bool strict) {
    std::vector<flows::FlowRecord> all;
    forEachFlowInFiles(files, strict,
                       [&](const flows::FlowRecord& r, const std::string&) { all.push_back(r); });
    return all;
}

}  // namespace ztseg::cli
