// OCSF Network Activity lines (what ocsf.hpp writes: the flow file, the API's
// ocsf_json) back into FlowRecords, for `ztsegctl flows --file`, `explain`,
// `whatif` and `suggest`. Time has the file's millisecond precision.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "flows/flow_record.hpp"

namespace ztseg::flows {

// One line; throws Error saying which field is missing or malformed.
FlowRecord parseOcsfLine(std::string_view line);

// How a flow file is read. Strict: the first bad line is an error (a CI gate
// wants that). Otherwise a bad line is skipped, counted and named, and a last
// line without its newline that does not parse (a file being appended to, or
// cut by a crash) is skipped with a warning of its own.
struct FlowReadOptions {
    bool strict = false;
};

// What a lenient read skipped.
struct FlowReadReport {
    std::string path;               // as given ("-" is standard input)
    size_t events = 0;              // lines read as events
    size_t skipped = 0;             // bad lines skipped (the partial last line not counted)
    std::vector<size_t> bad_lines;  // their numbers, the first kMaxNamed
    std::string first_error;        // "LINE: why" of the first one
    size_t partial_line = 0;        // an unterminated last line skipped, or 0
    static constexpr size_t kMaxNamed = 20;

    // One warning line per problem ("" when the file was read whole).
    std::vector<std::string> warnings() const;
};

// Every non-empty line of a flow file (or "-" for standard input). Throws
// Error "read flows FILE:LINE: ..." on the first bad line when strict, and
// when the file cannot be read.
std::vector<FlowRecord> readFlowFile(const std::string& path, const FlowReadOptions& opts = {},
                                     FlowReadReport* report = nullptr);
// The same, one event at a time, with the line it came from.
FlowReadReport forEachFlowLine(const std::string& path,
                               const std::function<void(const FlowRecord&, const std::string&)>& fn,
                               const FlowReadOptions& opts = {});

}  // namespace ztseg::flows
