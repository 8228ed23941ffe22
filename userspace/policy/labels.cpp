#include "policy/labels.hpp"

#include <algorithm>
#include <cctype>

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

bool validLabelText(const std::string& s, bool key) {
    if (key ? (s.empty() || s.size() > 253) : s.size() > 63) {
        return false;
    }
    return std::all_of(s.begin(), s.end(), [key](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
               (key && c == '/');
    });
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
        std::string key = item.substr(0, eq), value = item.substr(eq + 1);
        if (!validLabelText(key, true) || !validLabelText(value, false)) {
            throw Error("invalid label '" + item + "' in '" + text +
                        "': keys are 1-253 characters of letters, digits, '-', '_', '.', '/'; "
                        "values up to 63 of letters, digits, '-', '_', '.'");
        }
        out[key] = value;
        if (comma == std::string::npos) {
            break;
        }
        pos = comma + 1;
    }
    return out;
}

LabelSet minimalLabels(const LabelSet& labels, const std::vector<LabelSet>& known) {
    std::vector<std::pair<std::string, std::string>> keys(labels.begin(), labels.end());
    std::stable_partition(keys.begin(), keys.end(),
                          [](const auto& kv) { return kv.first == "app"; });
    auto identifies = [&](const LabelSet& subset) {
        return std::none_of(known.begin(), known.end(), [&](const LabelSet& other) {
            return other != labels &&
                   std::all_of(subset.begin(), subset.end(), [&](const auto& kv) {
                       auto it = other.find(kv.first);
                       return it != other.end() && it->second == kv.second;
                   });
        });
    };
    // Subsets by size, each size in key order (bit i = keys[i]); label sets are small.
    const size_t n = keys.size();
    if (n == 0 || n > 16) {
        return labels;
    }
    for (size_t size = 1; size <= n; ++size) {
        for (uint32_t mask = 1; mask < (1u << n); ++mask) {
            if (size_t(__builtin_popcount(mask)) != size) {
                continue;
            }
            LabelSet subset;
            for (size_t i = 0; i < n; ++i) {
                if (mask & (1u << i)) {
                    subset.insert(keys[i]);
                }
            }
            if (identifies(subset)) {
                return subset;
            }
        }
    }
    return labels;
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
