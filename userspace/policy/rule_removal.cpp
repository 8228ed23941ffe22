#include "policy/rule_removal.hpp"

#include <algorithm>
#include <optional>
#include <set>
#include <string_view>

#include "common/error.hpp"
#include "common/yaml_doc.hpp"

namespace ztseg::policy {
namespace {

constexpr int kContext = 3;  // lines of context around each change in the diff

std::string where(const std::string& file, int line) {
    return file + ":" + std::to_string(line);
}

// One line of a file: its text and its line break ("\n", "\r\n" or "" for a
// last line without one), so that untouched lines are written back as they were.
struct Line {
    std::string text;
    std::string eol;
};

std::vector<Line> splitLines(const std::string& file, const std::string& content) {
    std::vector<Line> out;
    size_t pos = 0;
    while (pos < content.size()) {
        size_t nl = content.find('\n', pos);
        size_t end = nl == std::string::npos ? content.size() : nl;
        Line l;
        l.text = content.substr(pos, end - pos);
        l.eol = nl == std::string::npos ? "" : "\n";
        if (!l.text.empty() && l.text.back() == '\r') {
            l.text.pop_back();
            l.eol = "\r" + l.eol;
        }
        if (l.text.find('\r') != std::string::npos) {
            // YAML counts a lone CR as a line break: our line numbers would differ.
            throw Error(where(file, int(out.size()) + 1) +
                        ": a carriage return that ends no line; cannot edit this file");
        }
        out.push_back(std::move(l));
        pos = end + (nl == std::string::npos ? 0 : 1);
    }
    return out;
}

enum class LineKind { Blank, Comment, Content };

LineKind kindOf(const std::string& text) {
    size_t first = text.find_first_not_of(" \t");
    if (first == std::string::npos) {
        return LineKind::Blank;
    }
    return text[first] == '#' ? LineKind::Comment : LineKind::Content;
}

int indentOf(const std::string& text) {
    size_t first = text.find_first_not_of(' ');
    return first == std::string::npos ? int(text.size()) : int(first);
}

// libyaml columns count characters; the byte offset of 1-based `column`.
size_t byteOffset(const std::string& text, int column) {
    size_t pos = 0;
    for (int c = 1; c < column && pos < text.size(); ++c) {
        ++pos;
        while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) {
            ++pos;
        }
    }
    return pos;
}

// A rule list as the YAML tree has it: policies[].ingress / .egress.
struct RuleList {
    std::string policy;
    std::string key;  // "ingress" or "egress"
    const yaml::Node* key_node = nullptr;
    std::vector<const yaml::Node*> items;  // the rule mappings, in order
};

// The rule lists the policy reader (document_reader.cpp) reads rules from.
std::vector<RuleList> ruleLists(const std::vector<yaml::Node>& docs) {
    std::vector<RuleList> out;
    for (const yaml::Node& doc : docs) {
        const yaml::Node* policies = doc.get("policies");
        if (!policies || !policies->isSequence()) {
            continue;
        }
        for (const yaml::Node& p : policies->items()) {
            const yaml::Node* name = p.get("name");
            for (const auto& [key, value] : p.entries()) {
                if (!key.isScalar() || (key.scalar() != "ingress" && key.scalar() != "egress") ||
                    !value.isSequence()) {
                    continue;
                }
                RuleList list;
                list.policy = name && name->isScalar() ? name->scalar() : "";
                list.key = key.scalar();
                list.key_node = &key;
                for (const yaml::Node& item : value.items()) {
                    if (item.isMap()) {
                        list.items.push_back(&item);
                    }
                }
                out.push_back(std::move(list));
            }
        }
    }
    return out;
}

// The YAML tree without marks, leaving out `skip`: what must not change.
void canonical(const yaml::Node& n, const std::set<const yaml::Node*>& skip, std::string& out) {
    switch (n.kind()) {
        case yaml::Node::Kind::Null:
            out += "~";
            break;
        case yaml::Node::Kind::Scalar:
            out += "s" + std::to_string(n.scalar().size()) + ":" + n.scalar();
            break;
        case yaml::Node::Kind::Sequence:
            out += "[";
            for (const yaml::Node& item : n.items()) {
                if (!skip.count(&item)) {
                    canonical(item, skip, out);
                    out += ",";
                }
            }
            out += "]";
            break;
        case yaml::Node::Kind::Map:
            out += "{";
            for (const auto& [key, value] : n.entries()) {
                canonical(key, skip, out);
                out += ":";
                canonical(value, skip, out);
                out += ",";
            }
            out += "}";
            break;
    }
}

std::string canonical(const std::vector<yaml::Node>& docs,
                      const std::set<const yaml::Node*>& skip) {
    std::string out;
    for (const yaml::Node& doc : docs) {
        canonical(doc, skip, out);
        out += "\n";
    }
    return out;
}

std::vector<yaml::Node> parseYaml(const std::string& file, const std::string& text) {
    try {
        return yaml::parseAll(text);
    } catch (const yaml::ParseError& e) {
        throw Error(file + ":" + std::to_string(e.mark.line) + ":" + std::to_string(e.mark.column) +
                    ": invalid YAML: " + e.what());
    }
}

// Lines [first, first + count) (1-based) of the original are replaced by `with`.
struct Edit {
    int first = 0;
    int count = 0;
    std::vector<Line> with;
};

// The lines of the block list item whose mapping starts at `mark`, with the
// comments that belong to it (see rule_removal.hpp).
Edit itemLines(const std::string& file, const std::vector<Line>& lines, const yaml::Mark& mark) {
    const int n = int(lines.size());
    const std::string& at = lines[mark.line - 1].text;
    std::string_view before = std::string_view(at).substr(0, byteOffset(at, mark.column));
    auto notBlock = [&] {
        return Error(where(file, mark.line) +
                     ": the rule is not a block list item ('- ' on its own line or before its "
                     "first key); rules in flow-style lists ([...]) are not edited: remove it by "
                     "hand");
    };
    // The '-' is before the first key on the same line, or alone on a line
    // above it (only blank and comment lines between).
    int dash_line = mark.line;
    size_t dash = before.find_first_not_of(' ');
    if (dash == std::string_view::npos) {
        dash_line = mark.line - 1;
        while (dash_line >= 1 && kindOf(lines[dash_line - 1].text) != LineKind::Content) {
            --dash_line;
        }
        if (dash_line < 1) {
            throw notBlock();
        }
        std::string_view t = lines[dash_line - 1].text;
        dash = t.find_first_not_of(' ');
        size_t after = t.find_first_not_of(" \t", dash + 1);
        if (t[dash] != '-' || (dash + 1 < t.size() && t[dash + 1] != ' ') ||
            (after != std::string_view::npos && t[after] != '#')) {
            throw notBlock();
        }
    } else if (before[dash] != '-' ||
               before.find_first_not_of(' ', dash + 1) != std::string::npos ||
               dash + 1 == before.size()) {
        throw notBlock();
    }
    const int d = int(dash);
    // Through the last line indented deeper than the '-' before a content
    // line at the '-' or left of it, then comment lines indented under it.
    int last = dash_line;
    for (int i = dash_line + 1; i <= n; ++i) {
        LineKind k = kindOf(lines[i - 1].text);
        if (k == LineKind::Content) {
            if (indentOf(lines[i - 1].text) <= d) {
                break;
            }
            last = i;
        }
    }
    while (last + 1 <= n && kindOf(lines[last].text) == LineKind::Comment &&
           indentOf(lines[last].text) > d) {
        ++last;
    }
    int first = dash_line;
    while (first - 1 >= 1 && kindOf(lines[first - 2].text) == LineKind::Comment &&
           indentOf(lines[first - 2].text) == d) {
        --first;
    }
    return Edit{first, last - first + 1, {}};
}

// `ingress:` -> `ingress: []`, keeping a trailing comment.
Edit emptyList(const std::string& file, const std::vector<Line>& lines, const yaml::Node& key) {
    const Line& line = lines[key.mark().line - 1];
    const std::string& t = line.text;
    size_t pos = byteOffset(t, key.mark().column);
    if (pos < t.size() && (t[pos] == '"' || t[pos] == '\'')) {
        pos = t.find(t[pos], pos + 1);
        pos = pos == std::string::npos ? t.size() : pos + 1;
    } else if (t.compare(pos, key.scalar().size(), key.scalar()) == 0) {
        pos += key.scalar().size();
    } else {
        pos = t.size();
    }
    size_t colon = t.find_first_not_of(' ', pos);
    size_t rest = colon == std::string::npos ? colon : t.find_first_not_of(" \t", colon + 1);
    if (colon == std::string::npos || t[colon] != ':' ||
        (rest != std::string::npos && t[rest] != '#')) {
        throw Error(where(file, key.mark().line) + ": cannot find the end of '" + key.scalar() +
                    ":' to write the emptied list as []; edit it by hand");
    }
    Line out{t.substr(0, colon + 1) + " []" + t.substr(colon + 1), line.eol};
    return Edit{key.mark().line, 1, {out}};
}

std::string joinLines(const std::vector<Line>& lines) {
    std::string out;
    for (const Line& l : lines) {
        out += l.text + l.eol;
    }
    return out;
}

std::vector<Line> applyEdits(const std::vector<Line>& lines, const std::vector<Edit>& edits) {
    std::vector<Line> out;
    int next = 1;
    for (const Edit& e : edits) {
        out.insert(out.end(), lines.begin() + (next - 1), lines.begin() + (e.first - 1));
        out.insert(out.end(), e.with.begin(), e.with.end());
        next = e.first + e.count;
    }
    out.insert(out.end(), lines.begin() + (next - 1), lines.end());
    return out;
}

void diffLine(char sign, const Line& l, std::string& out) {
    out += sign + l.text + l.eol;
    if (l.eol.empty()) {
        out += "\n\\ No newline at end of file\n";
    }
}

std::string hunkRange(int start, int count) {
    // An empty range names the line before it, as diff does.
    return std::to_string(count == 0 ? start - 1 : start) + "," + std::to_string(count);
}

// Unified diff of one file from its sorted, disjoint edits; edits whose
// contexts touch share a hunk.
std::string unifiedDiff(const std::string& file, const std::vector<Line>& lines,
                        const std::vector<Edit>& edits) {
    const int n = int(lines.size());
    std::string out = "--- a/" + file + "\n+++ b/" + file + "\n";
    int shift = 0;  // new line number - old line number before the current hunk
    for (size_t i = 0; i < edits.size();) {
        size_t j = i + 1;
        while (j < edits.size() &&
               edits[j].first - (edits[j - 1].first + edits[j - 1].count) <= 2 * kContext) {
            ++j;
        }
        int start = std::max(1, edits[i].first - kContext);
        int end = std::min(n, edits[j - 1].first + edits[j - 1].count - 1 + kContext);
        int old_count = end - start + 1, new_count = old_count;
        for (size_t k = i; k < j; ++k) {
            new_count += int(edits[k].with.size()) - edits[k].count;
        }
        out += "@@ -" + hunkRange(start, old_count) + " +" + hunkRange(start + shift, new_count) +
               " @@\n";
        int at = start;
        for (size_t k = i; k < j; ++k) {
            for (; at < edits[k].first; ++at) {
                diffLine(' ', lines[at - 1], out);
            }
            for (; at < edits[k].first + edits[k].count; ++at) {
                diffLine('-', lines[at - 1], out);
            }
            for (const Line& l : edits[k].with) {
                diffLine('+', l, out);
            }
        }
        for (; at <= end; ++at) {
            diffLine(' ', lines[at - 1], out);
        }
        shift += new_count - old_count;
        i = j;
    }
    return out;
}

struct FileResult {
    std::string content;
    std::string diff;
    std::vector<std::string> notes;
};

FileResult removeFromFile(const std::string& file, const std::string& text,
                          const std::set<int>& rule_lines) {
    std::vector<Line> lines = splitLines(file, text);
    std::vector<yaml::Node> docs = parseYaml(file, text);
    std::vector<RuleList> lists = ruleLists(docs);

    FileResult result;
    std::vector<Edit> edits;
    std::set<const yaml::Node*> removed;
    for (int line : rule_lines) {
        const yaml::Node* item = nullptr;
        for (const RuleList& l : lists) {
            for (const yaml::Node* it : l.items) {
                if (it->mark().line == line && !item) {
                    item = it;
                }
            }
        }
        if (!item) {
            throw Error(where(file, line) +
                        ": no ingress or egress rule of a policy starts on this line");
        }
        edits.push_back(itemLines(file, lines, item->mark()));
        removed.insert(item);
    }
    for (const RuleList& l : lists) {
        bool all = !l.items.empty() && std::all_of(l.items.begin(), l.items.end(),
                                                   [&](auto* it) { return removed.count(it); });
        if (all) {
            edits.push_back(emptyList(file, lines, *l.key_node));
            result.notes.push_back("policy " + l.policy + " keeps no " + l.key + " rule (" +
                                   where(file, l.key_node->mark().line) + ": " + l.key +
                                   ": []): it now denies all " + l.key +
                                   " (default deny) unless another policy selecting its "
                                   "workloads allows it");
        }
    }
    std::sort(edits.begin(), edits.end(),
              [](const Edit& a, const Edit& b) { return a.first < b.first; });
    for (size_t i = 1; i < edits.size(); ++i) {
        if (edits[i].first < edits[i - 1].first + edits[i - 1].count) {
            throw Error(where(file, edits[i].first) +
                        ": the rules to remove overlap in the text; remove them by hand");
        }
    }

    std::vector<Line> edited = applyEdits(lines, edits);
    result.content = joinLines(edited);
    // The edited file must read as the original without the removed rules.
    std::optional<std::string> now;
    try {
        now = canonical(yaml::parseAll(result.content), {});
    } catch (const yaml::ParseError&) {
    }
    if (now != canonical(docs, removed)) {
        std::string at;
        for (int line : rule_lines) {
            at += (at.empty() ? "" : ", ") + where(file, line);
        }
        throw Error("removing the rules at " + at +
                    " as text would change more than those rules; remove them by hand");
    }
    result.diff = unifiedDiff(file, lines, edits);
    return result;
}

}  // namespace

RemovalResult removeRules(const std::map<std::string, std::string>& sources,
                          const std::vector<RuleRemoval>& rules) {
    std::map<std::string, std::set<int>> by_file;
    for (const RuleRemoval& r : rules) {
        if (!sources.count(r.file)) {
            throw Error(where(r.file, r.line) + ": no such policy file among the sources");
        }
        by_file[r.file].insert(r.line);
    }
    RemovalResult out;
    for (const auto& [file, lines] : by_file) {
        FileResult f = removeFromFile(file, sources.at(file), lines);
        out.edited[file] = std::move(f.content);
        out.diff += f.diff;
        out.notes.insert(out.notes.end(), f.notes.begin(), f.notes.end());
    }
    return out;
}

}  // namespace ztseg::policy
