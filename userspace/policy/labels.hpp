// Labels and label selectors, as Kubernetes users know them: matchLabels plus
// matchExpressions with In, NotIn, Exists, DoesNotExist.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace ztseg::policy {

// Sorted key -> value. Equal sets compare equal whatever order they were written in.
using LabelSet = std::map<std::string, std::string>;

// Label keys and values: what Kubernetes users can write (keys 1-253
// characters of [A-Za-z0-9._/-], values up to 63 of [A-Za-z0-9._-]).
bool validLabelText(const std::string& s, bool key);

// "app=db,env=prod": the canonical text form, used for identity hashing and output.
std::string canonical(const LabelSet& labels);
// Parses "app=db,env=prod" (also used by the CLI); throws Error on bad syntax
// or a key or value validLabelText refuses.
LabelSet parseLabels(const std::string& text);

// The fewest of `labels` that no other label set in `known` carries all of
// (so matchLabels with them selects exactly this set among `known`): "app"
// first, then keys in order. If no subset does (another set carries all of
// `labels`), returns `labels` whole.
LabelSet minimalLabels(const LabelSet& labels, const std::vector<LabelSet>& known);

struct LabelRequirement {
    enum class Op { In, NotIn, Exists, DoesNotExist };
    std::string key;
    Op op = Op::Exists;
    std::vector<std::string> values;  // In / NotIn
};

struct Selector {
    LabelSet match_labels;
    std::vector<LabelRequirement> match_expressions;
    // An empty selector matches every labeled workload/external.
    bool matches(const LabelSet& labels) const;
    std::string str() const;
};

}  // namespace ztseg::policy
