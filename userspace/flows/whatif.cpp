#include "flows/whatif.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <tuple>

#include "flows/flow_judge.hpp"

namespace ztseg::flows {
namespace {

std::optional<Change> changeOf(const std::string& before, const std::string& after) {
    if (before == after) {
        return std::nullopt;
    }
    if (after == "dropped") {
        return Change::NewlyDenied;
    }
    if (after == "allowed") {
        return Change::NewlyAllowed;
    }
    return before == "allowed" ? Change::NewlyWouldDrop : Change::NewlyAudited;
}

}  // namespace

std::string_view changeName(Change c) {
    switch (c) {
        case Change::NewlyDenied:
            return "newly-denied";
        case Change::NewlyWouldDrop:
            return "newly-would-drop";
        case Change::NewlyAllowed:
            return "newly-allowed";
        case Change::NewlyAudited:
            return "newly-audited";
    }
    return "unknown";
}

size_t WhatifReport::count(Change c) const {
    size_t n = 0;
    for (const auto& g : changes) {
        n += g.change == c ? g.flows : 0;
    }
    return n;
}

WhatifReport whatif(const policy::PolicySet& candidate, const std::vector<FlowRecord>& flows) {
    FlowJudge judge(candidate);
    WhatifReport rep;
    using Key = std::tuple<Change, std::string, std::string, std::string, std::string, std::string,
                           std::string, std::string>;
    std::map<Key, WhatifGroup> groups;
    for (const FlowRecord& r : flows) {
        ++rep.events;
        if (!isPolicyDecision(r)) {
            ++rep.not_judged;
            continue;
        }
        ++rep.judged;
        Judgement j = judge.judge(r);
        rep.covered += j.by_policy ? 1 : 0;
        std::optional<Change> c = changeOf(r.verdict, j.verdict);
        if (!c) {
            ++rep.unchanged;
            continue;
        }
        auto [src, dst] = judge.parties(r);
        std::string service = policy::serviceText(r.protocol, r.dst.port);
        Key key{*c, src.text, dst.text, service, j.at, r.verdict, j.verdict, j.because};
        auto [it, fresh] = groups.try_emplace(key);
        WhatifGroup& g = it->second;
        if (fresh) {
            g = {*c,        src.text, dst.text,  service, j.at,   r.verdict,
                 j.verdict, j.reason, j.because, 0,       r.time, r.time};
        }
        ++g.flows;
        g.first = std::min(g.first, r.time);
        g.last = std::max(g.last, r.time);
    }
    for (auto& [key, g] : groups) {
        rep.changes.push_back(std::move(g));
    }
    std::stable_sort(rep.changes.begin(), rep.changes.end(),
                     [](const WhatifGroup& a, const WhatifGroup& b) {
                         if (a.change != b.change) {
                             return a.change < b.change;
                         }
                         return a.flows > b.flows;
                     });
    return rep;
}

}  // namespace ztseg::flows
