#include "policy/labels.hpp"

#include <algorithm>

#include "common/error.hpp"

namespace ztseg::policy {

std::string canonical(const LabelSet& labels) {
    std::string out;
    for (const auto& [k, v] : labels) {
        if (!out.empty()) {
            out += ',';
        }
        out += k + "=" + v;
    }
    return out;
}

LabelSet parseLabels(const std::string& text) {
    LabelSet out;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t comma = text.find(',', pos);
        std::string item =
            text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        size_t eq = item.find('=');
        if (eq == std::string::npos || eq == 0) {
            throw Error("invalid label '" + item + "' in '" + text + "': expected key=value");
        }
        out[item.substr(0, eq)] = item.substr(eq + 1);
        if (comma == std::string::npos) {
            break;
        }
        pos = comma + 1;
    }
    return out;
}

bool Selector::matches(const LabelSet& labels) const {
    for (const auto& [k, v] : match_labels) {
        auto it = labels.find(k);
        if (it == labels.end() || it->second != v) {
            return false;
        }
    }
    for (const LabelRequirement& r : match_expressions) {
        auto it = labels.find(r.key);
        bool has = it != labels.end();
        bool in = has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
        switch (r.op) {
            case LabelRequirement::Op::In:
                if (!in)
                    return false;
                break;
            case LabelRequirement::Op::NotIn:
                if (in)
                    return false;
                break;
            case LabelRequirement::Op::Exists:
                if (!has)
                    return false;
                break;
            case LabelRequirement::Op::DoesNotExist:
                if (has)
                    return false;
                break;
        }
    }
    return true;
}

std::string Selector::str() const {
    std::string out = canonical(match_labels);
    for (const LabelRequirement& r : match_expressions) {
        if (!out.empty()) {
            out += ",";
        }
        switch (r.op) {
            case LabelRequirement::Op::In:
            case LabelRequirement::Op::NotIn: {
                std::string vals;
                for (const auto& v : r.values) {
                    vals += (vals.empty() ? "" : ",") + v;
                }
                out +=
                    r.key + (r.op == LabelRequirement::Op::In ? " in (" : " notin (") + vals + ")";
                break;
            }
            case LabelRequirement::Op::Exists:
                out += r.key;
                break;
            case LabelRequirement::Op::DoesNotExist:
                out += "!" + r.key;
                break;
        }
    }
    return out.empty() ? "{}" : out;
}

}  // namespace ztseg::policy
