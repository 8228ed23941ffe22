#include "cli/flow_query.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <map>

#include "common/error.hpp"
#include "model/ip_prefix.hpp"

namespace ztseg::cli {
namespace {

bool digits(const std::string& s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The filter options: their long names, what they take, the help text.
struct FilterOption {
    const char* name;
    const char* help;
};
constexpr FilterOption kFilterOptions[] = {
    {"--verdict", "allowed, dropped, would-drop"},
    {"--from", "source: labels k=v[,k=v], IP or CIDR, identity number, or workload name"},
    {"--to", "destination: as --from"},
    {"--from-label", "source labels k=v[,k=v]; a key alone (app) asks only that it exists"},
    {"--to-label", "destination labels, as --from-label"},
    {"--label", "labels of either side, as --from-label"},
    {"--from-ip", "source address or CIDR"},
    {"--to-ip", "destination address or CIDR"},
    {"--ip", "address or CIDR of either side"},
    {"--from-port", "source port"},
    {"--to-port", "destination port"},
    {"--port", "port of either side"},
    {"--protocol", "tcp, udp, icmp, icmpv6, sctp or a number"},
    {"--direction", "ingress or egress (at the local workload)"},
    {"--node", "host that observed the flow"},
};

// The filter options as given, in order: CLI11 keeps each option's values
// apart, parse_order() says in which order the occurrences came.
std::vector<std::string> filtersInOrder(const CLI::App& cmd) {
    std::vector<std::string> out;
    std::map<const CLI::Option*, size_t> used;
    for (const CLI::Option* o : cmd.parse_order()) {
        std::string name = "--" + o->get_single_name();
        if (name == "--not") {
            out.push_back(name);
            continue;
        }
        bool filter = std::any_of(std::begin(kFilterOptions), std::end(kFilterOptions),
                                  [&](const FilterOption& f) { return name == f.name; });
        size_t& i = used[o];
        if (filter && i < o->results().size()) {
            out.push_back(name);
            out.push_back(o->results()[i++]);
        }
    }
    return out;
}

}  // namespace

CLI::Validator countAtLeastOne(const std::string& option) {
    return CLI::Validator(
        [option](std::string& v) {
            if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos ||
                v.find_first_not_of("0") == std::string::npos) {
                return option + " " + v + ": give a count N >= 1, or leave " + option +
                       " out for every flow";
            }
            return std::string();
        },
        "N>=1");
}

void addFlowQueryOptions(CLI::App* cmd, FlowQueryArgs& a) {
    a.cmd = cmd;
    for (const FilterOption& f : kFilterOptions) {
        // The values are read back in command-line order (filtersInOrder).
        cmd->add_option(f.name, f.help)
            ->type_name("TEXT")
            ->expected(1)
            ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    }
    cmd->add_flag("--not")
        ->description("negate the next filter option: --not --verdict allowed")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    cmd->add_option("--since", a.since,
                    "only flows since: a duration (30s, 5m, 2h, 1d) or RFC 3339 time");
    cmd->add_option("--until", a.until, "only flows until: a duration ago or RFC 3339 time");
    auto* first = cmd->add_option("--first", a.first, "only the first N matching flows (N >= 1)")
                      ->check(countAtLeastOne("--first"));
    cmd->add_option("--last", a.last, "only the last N matching flows (N >= 1)")
        ->check(countAtLeastOne("--last"))
        ->excludes(first);
}

std::chrono::system_clock::time_point parseSince(const std::string& text,
                                                 std::chrono::system_clock::time_point now,
                                                 const std::string& option) {
    using namespace std::chrono;
    if (text.size() >= 2 && digits(text.substr(0, text.size() - 1))) {
        long n = std::stol(text.substr(0, text.size() - 1));
        switch (text.back()) {
            case 's':
                return now - seconds(n);
            case 'm':
                return now - minutes(n);
            case 'h':
                return now - hours(n);
            case 'd':
                return now - hours(24 * n);
            default:
                break;
        }
    }
    std::tm tm{};
    const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (end != nullptr) {
        system_clock::time_point t = system_clock::from_time_t(timegm(&tm));
        std::string rest = end;
        if (!rest.empty() && rest[0] == '.') {  // fraction of a second
            size_t n = 1;
            std::string frac;
            while (n < rest.size() && std::isdigit(static_cast<unsigned char>(rest[n])))
                frac += rest[n++];
            rest = rest.substr(n);
            frac = (frac + "000000000").substr(0, 9);
            t += duration_cast<system_clock::duration>(nanoseconds(std::stoll(frac)));
        }
        if (rest == "Z" || rest == "z") {
            return t;
        }
        if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
            digits(rest.substr(1, 2)) && digits(rest.substr(4, 2))) {
            minutes off =
                hours(std::stoi(rest.substr(1, 2))) + minutes(std::stoi(rest.substr(4, 2)));
            return rest[0] == '+' ? t - off : t + off;
        }
    }
    throw Error("flow filter: bad " + option + " '" + text +
                "': expected a duration like 30s, 5m, 2h, 1d or an RFC 3339 time like "
                "2026-12-02T03:10:00Z");
}

FlowQuery FlowQuery::parse(const FlowQueryArgs& a, std::chrono::system_clock::time_point now) {
    FlowQuery q;
    q.selection = flows::FlowSelection::parse(a.cmd ? filtersInOrder(*a.cmd) : a.filters);
    if (!a.since.empty()) {
        q.since = parseSince(a.since, now);
    }
    if (!a.until.empty()) {
        q.until = parseSince(a.until, now, "--until");
    }
    if (q.since && q.until && *q.until < *q.since) {
        throw Error("flow filter: --until " + a.until + " is before --since " + a.since);
    }
    q.first = a.first;
    q.last = a.last;
    return q;
}

bool FlowQuery::matches(const flows::FlowRecord& r) const {
    return selection.matches(r) && (!since || r.time >= *since) && (!until || r.time <= *until);
}

v1::FlowsRequest FlowQuery::request(bool follow) const {
    // Only what the request's fields mean exactly; negations, either-side
    // filters, names and identities are judged here.
    const flows::FlowFilter& f = selection.include;
    v1::FlowsRequest req;
    for (const auto& v : f.verdicts) req.add_verdict(v);
    for (const auto& s : f.from_labels) req.add_from_label(flows::selectorText(s));
    for (const auto& s : f.to_labels) req.add_to_label(flows::selectorText(s));
    for (const auto& p : f.from_ip) req.add_from_ip(p.str());
    for (const auto& p : f.to_ip) req.add_to_ip(p.str());
    for (uint16_t p : f.to_ports) req.add_port(p);
    for (const auto& p : f.protocols) req.add_protocol(p);
    req.set_follow(follow);
    return req;
}

}  // namespace ztseg::cli
