// `ztsegctl rules` (and `fleet rules`): per-rule hit counts as a table or
// JSON, sorted, and the least-privilege cleanup list (--unused). Pure
// functions over the API's RulesReply; no I/O.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "agent.pb.h"

namespace ztseg::cli {

enum class RuleSort { Rule, Hits, Bytes, Last, File };
RuleSort parseRuleSort(const std::string& text);  // throws Error naming --sort

// Whether a rule was used in the window [from, now]. A rule counted only
// for part of the window cannot be called unused: it is "too new".
enum class RuleUse { Used, Unused, TooNew, Uncounted };
// `from`: nullopt = since counting began (unused: never hit).
RuleUse ruleUse(const v1::RuleHits& r, std::optional<std::chrono::system_clock::time_point> from);

struct RuleListing {
    std::vector<v1::RuleHits> rules;    // sorted as asked
    std::vector<v1::RuleHits> too_new;  // --unused: counted for less than the window
    bool unused_only = false;
    std::string window;  // "7d", or "" (since counting began)
};

RuleListing listRules(const v1::RulesReply& reply, RuleSort sort, bool unused_only,
                      const std::string& since, std::chrono::system_clock::time_point now);
// `holder`: "ztsegd on web-1 (generation 7)", "the fleet (12 hosts)".
std::string rulesText(const RuleListing& l, const std::string& holder,
                      std::chrono::system_clock::time_point now);
std::string rulesJson(const RuleListing& l, const v1::RulesReply& reply);

}  // namespace ztseg::cli
