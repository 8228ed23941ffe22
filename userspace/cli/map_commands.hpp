// `ztsegctl map` and `ztsegctl fleet map`: the selected flows drawn as a
// graph of who talks to whom (flows/flow_map.hpp), as DOT or through
// Graphviz's `dot` as SVG/PNG.
#pragma once

#include <CLI/CLI.hpp>
#include <deque>
#include <string>

#include "cli/flow_output.hpp"

namespace ztseg::cli {

struct MapOutputArgs {
    std::string format = "dot";  // dot, svg, png
    std::string out;             // "" = stdout (dot only)
    std::string group_by;        // a label key, or ""
};
// -o/--output dot|svg|png, --out FILE, --group-by KEY.
void addMapOutputOptions(CLI::App* cmd, MapOutputArgs& a);

// False (and says why on stderr: a usage error, exit 2) for svg/png without
// --out. Checked before any flow is read.
bool mapOutputUsable(const MapOutputArgs& a);

// The exit code: kExitFailed when the file cannot be written or Graphviz is
// missing or fails (stderr says why).
int writeMap(const MapOutputArgs& a, const std::deque<ShownFlow>& flows, const std::string& title);

}  // namespace ztseg::cli
