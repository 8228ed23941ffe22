#include "cli/rule_view.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <tuple>

#include "cli/flow_query.hpp"
#include "cli/flow_text.hpp"
#include "cli/status_text.hpp"
#include "common/error.hpp"

namespace ztseg::cli {
namespace {

using Clock = std::chrono::system_clock;

Clock::time_point fromUnixMs(int64_t ms) {
    return Clock::time_point(std::chrono::milliseconds(ms));
}

std::string where(const v1::RuleHits& r) {
    return r.file() + ":" + std::to_string(r.line());
}

// "3m ago", "2d ago", "never".
std::string ago(int64_t unix_ms, Clock::time_point now) {
    if (unix_ms == 0) {
        return "never";
    }
    auto s = std::chrono::duration_cast<std::chrono::seconds>(now - fromUnixMs(unix_ms)).count();
    s = std::max<int64_t>(s, 0);
    if (s < 120) {
        return std::to_string(s) + "s ago";
    }
    if (s < 7200) {
        return std::to_string(s / 60) + "m ago";
    }
    if (s < 2 * 86400) {
        return std::to_string(s / 3600) + "h ago";
    }
    return std::to_string(s / 86400) + "d ago";
}

// Packets, or for rules only socket hooks decided (a refused connect()), refusals.
uint64_t hits(const v1::RuleHits& r) {
    return std::max(r.packets(), r.refused());
}

}  // namespace

RuleSort parseRuleSort(const std::string& text) {
    if (text == "rule")
        return RuleSort::Rule;
    if (text == "hits")
        return RuleSort::Hits;
    if (text == "bytes")
        return RuleSort::Bytes;
    if (text == "last")
        return RuleSort::Last;
    if (text == "file")
        return RuleSort::File;
    throw Error("--sort " + text + ": expected rule, hits, bytes, last or file");
}

RuleUse ruleUse(const v1::RuleHits& r, std::optional<Clock::time_point> from) {
    if (!r.counted()) {
        return RuleUse::Uncounted;
    }
    if (!from) {
        return r.last_hit_unix_ms() == 0 ? RuleUse::Unused : RuleUse::Used;
    }
    if (r.last_hit_unix_ms() != 0 && fromUnixMs(r.last_hit_unix_ms()) >= *from) {
        return RuleUse::Used;
    }
    return fromUnixMs(r.counting_since_unix_ms()) > *from ? RuleUse::TooNew : RuleUse::Unused;
}

RuleListing listRules(const v1::RulesReply& reply, RuleSort sort, bool unused_only,
                      const std::string& since, Clock::time_point now) {
    RuleListing l;
    l.unused_only = unused_only;
    l.window = since;
    std::optional<Clock::time_point> from;
    if (!since.empty()) {
        from = parseSince(since, now);
    }
    for (const v1::RuleHits& r : reply.rules()) {
        if (!unused_only) {
            l.rules.push_back(r);
            continue;
        }
        switch (ruleUse(r, from)) {
            case RuleUse::Unused:
                l.rules.push_back(r);
                break;
            case RuleUse::TooNew:
                l.too_new.push_back(r);
                break;
            default:
                break;
        }
    }
    auto key = [sort](const v1::RuleHits& r) {
        switch (sort) {
            case RuleSort::Hits:
                return std::make_tuple(-int64_t(hits(r)), std::string(), r.rule_id());
            case RuleSort::Bytes:
                return std::make_tuple(-int64_t(r.bytes()), std::string(), r.rule_id());
            case RuleSort::Last:
                return std::make_tuple(-r.last_hit_unix_ms(), std::string(), r.rule_id());
            case RuleSort::File:
                return std::make_tuple(int64_t(r.line()), r.file(), r.rule_id());
            case RuleSort::Rule:
                break;
        }
        return std::make_tuple(int64_t(0), std::string(), r.rule_id());
    };
    auto byFile = [](const v1::RuleHits& a, const v1::RuleHits& b) {
        return std::make_tuple(a.file(), a.line(), a.rule_id()) <
               std::make_tuple(b.file(), b.line(), b.rule_id());
    };
    if (sort == RuleSort::File) {
        std::stable_sort(l.rules.begin(), l.rules.end(), byFile);
    } else {
        std::stable_sort(
            l.rules.begin(), l.rules.end(),
            [&](const v1::RuleHits& a, const v1::RuleHits& b) { return key(a) < key(b); });
    }
    return l;
}

std::string rulesText(const RuleListing& l, const std::string& holder, Clock::time_point now) {
    std::string out;
    const std::string window =
        l.window.empty() ? "since counting began" : "in the last " + l.window;
    if (l.unused_only) {
        out = holder + ": " + std::to_string(l.rules.size()) + " rule" +
              (l.rules.size() == 1 ? "" : "s") + " no traffic used " + window + "\n";
    } else {
        out = holder + ": " + std::to_string(l.rules.size()) + " rules\n";
    }
    if (!l.rules.empty()) {
        std::vector<std::vector<std::string>> rows{{"RULE", "POLICY", "DIRECTION", "ACTION",
                                                    "SOURCE", "PACKETS", "BYTES", "ADMITTED",
                                                    "REFUSED", "LAST HIT", "COUNTING SINCE"}};
        for (const v1::RuleHits& r : l.rules) {
            rows.push_back({std::to_string(r.rule_id()), r.policy(), r.direction(), r.action(),
                            where(r), r.counted() ? std::to_string(r.packets()) : "-",
                            r.counted() ? std::to_string(r.bytes()) : "-",
                            r.counted() ? std::to_string(r.admitted()) : "-",
                            r.counted() ? std::to_string(r.refused()) : "-",
                            r.counted() ? ago(r.last_hit_unix_ms(), now) : "not counted",
                            r.counted() ? isoTime(fromUnixMs(r.counting_since_unix_ms())) : "-"});
        }
        out += statusTable(rows);
    }
    if (!l.too_new.empty()) {
        out += std::to_string(l.too_new.size()) +
               " more without a hit, but counted for less than " + l.window +
               " (too new to call unused):";
        for (const v1::RuleHits& r : l.too_new) {
            out += " " + std::to_string(r.rule_id()) + " (" + where(r) + ")";
        }
        out += "\n";
    }
    return out;
}

std::string rulesJson(const RuleListing& l, const v1::RulesReply& reply) {
    using json = nlohmann::json;
    auto one = [](const v1::RuleHits& r) {
        json j = {{"rule_id", r.rule_id()},
                  {"policy", r.policy()},
                  {"file", r.file()},
                  {"line", r.line()},
                  {"direction", r.direction()},
                  {"action", r.action()},
                  {"description", r.description()},
                  {"counted", r.counted()},
                  {"packets", r.packets()},
                  {"bytes", r.bytes()},
                  {"admitted", r.admitted()},
                  {"refused", r.refused()}};
        j["last_hit"] = r.last_hit_unix_ms() == 0 ? json(nullptr)
                                                  : json(isoTime(fromUnixMs(r.last_hit_unix_ms())));
        j["counting_since"] =
            r.counted() ? json(isoTime(fromUnixMs(r.counting_since_unix_ms()))) : json(nullptr);
        return j;
    };
    json out = {{"host", reply.host()},
                {"generation", reply.generation()},
                {"uncounted", reply.uncounted()},
                {"rules", json::array()}};
    if (reply.hosts() != 0 || reply.unanswered_size() != 0) {  // the fleet's sum
        out["hosts"] = reply.hosts();
        out["unanswered"] = json::array();
        for (const std::string& h : reply.unanswered()) {
            out["unanswered"].push_back(h);
        }
    }
    for (const v1::RuleHits& r : l.rules) {
        out["rules"].push_back(one(r));
    }
    if (l.unused_only) {
        out["unused_since"] = l.window.empty() ? json("counting began") : json(l.window);
        out["too_new"] = json::array();
        for (const v1::RuleHits& r : l.too_new) {
            out["too_new"].push_back(one(r));
        }
    }
    return out.dump(2) + "\n";
}

}  // namespace ztseg::cli
