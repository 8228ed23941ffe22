// Removing rules from policy YAML sources, as text: the edited files and the
// unified diff an operator reviews and applies (`ztsegctl rules --unused
// --suggest-removal`). Pure: no file system, no process.
//
// What is removed for a rule (a block list item `- from: ...` of an `ingress:`
// or `egress:` list of a policy):
//   - the item's lines: from its `- ` line through its last line indented
//     deeper than the `-` (comment and blank lines between them included);
//   - comment lines directly above the `- ` (no blank line between) whose `#`
//     is in the same column as the `-`: they describe the item;
//   - comment lines directly below the item (no blank line between) indented
//     deeper than the `-`: they are inside it (e.g. a commented-out field).
// Everything else stays byte for byte: blank lines after the item, other
// comments, quoting, CRLF line endings. When every rule of a list goes, the
// list is written as `ingress: []` / `egress: []` (the policy then admits
// nothing in that direction: default deny) and a note says so.
//
// Refused with ztseg::Error naming file:line, never guessed: a file not in
// the sources, a line where no rule starts, a rule in a flow-style list
// (`ingress: [{from: ...}]`), and any edit that would change more of the YAML
// than the removed rules (checked by re-reading the edited file).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace ztseg::policy {

// A rule's SourceLocation as the parser records it (RuleSpec::loc, and
// RuleSource::loc in the compiled bundle): the line of the rule mapping's
// first key, which is the `- ` line for `- from: ...`. The column is not
// needed: at most one block rule starts on a line.
struct RuleRemoval {
    std::string file;
    int line = 0;
};

struct RemovalResult {
    std::map<std::string, std::string> edited;  // file -> new content (only files that changed)
    std::string diff;                // unified diff, `--- a/<file>` `+++ b/<file>`, 3 lines of
                                     // context, files in sorted order; applies with patch -p1
    std::vector<std::string> notes;  // "policy db keeps no ingress rule: ..."
};

// `sources`: file name (as in the rules' locations) -> text. Removing the
// same location twice is removing it once.
RemovalResult removeRules(const std::map<std::string, std::string>& sources,
                          const std::vector<RuleRemoval>& rules);

}  // namespace ztseg::policy
