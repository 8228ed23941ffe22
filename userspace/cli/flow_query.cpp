#include "cli/flow_query.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>

#include "common/error.hpp"
#include "model/ip_prefix.hpp"

namespace ztseg::cli {
namespace {

bool digits(const std::string& s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool isAddress(const std::string& s) {
    try {
        IpPrefix::parse(s);
        return true;
    } catch (const Error&) {
        return false;
    }
}

// --from / --to: labels, an address or CIDR, an identity number, or a name.
void addParty(const std::string& v, std::vector<policy::Selector>& labels,
              std::vector<IpPrefix>& ips, std::set<IdentityId>& ids, std::set<std::string>& names) {
    if (v.find('=') != std::string::npos) {
        labels.push_back(flows::FlowFilter::parseSelector(v));
    } else if (digits(v)) {
        unsigned long id = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), id);
        if (ec != std::errc() || id > 0xffffffffUL) {
            throw Error("flow filter: bad identity '" + v + "': expected a number below 2^32");
        }
        ids.insert(IdentityId(id));
    } else if (isAddress(v)) {
        ips.push_back(flows::FlowFilter::parseCidr(v));
    } else {
        names.insert(v);
    }
}

bool nameIn(const std::set<std::string>& names, const std::string& joined) {
    if (names.empty()) {
        return true;
    }
    size_t pos = 0;
    while (pos <= joined.size()) {
        size_t comma = joined.find(',', pos);
        if (names.count(joined.substr(pos, comma - pos))) {
            return true;
        }
        if (comma == std::string::npos) {
            break;
        }
        pos = comma + 1;
    }
    return false;
}

}  // namespace

void addFlowQueryOptions(CLI::App* cmd, FlowQueryArgs& a) {
    cmd->add_option("--verdict", a.verdict, "allowed, dropped, would-drop (repeatable)");
    cmd->add_option("--from", a.from,
                    "source: labels k=v[,k=v], IP or CIDR, identity number, or workload name");
    cmd->add_option("--to", a.to, "destination: as --from");
    cmd->add_option("--from-label", a.from_label, "source labels k=v[,k=v]");
    cmd->add_option("--to-label", a.to_label, "destination labels k=v[,k=v]");
    cmd->add_option("--from-ip", a.from_ip, "source address or CIDR");
    cmd->add_option("--to-ip", a.to_ip, "destination address or CIDR");
    cmd->add_option("--port", a.port, "destination port");
    cmd->add_option("--protocol", a.protocol, "tcp, udp, icmp, icmpv6, sctp or a number");
    cmd->add_option("--direction", a.direction, "ingress or egress (at the local workload)");
    cmd->add_option("--since", a.since,
                    "only flows since: a duration (30s, 5m, 2h, 1d) or RFC 3339 time");
    cmd->add_option("--last", a.last, "only the last N matching flows (N >= 1)")
        ->check(CLI::Validator(
            [](std::string& v) {
                if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos ||
                    v.find_first_not_of("0") == std::string::npos) {
                    return "--last " + v +
                           ": give a count N >= 1, or leave --last out for every flow";
                }
                return std::string();
            },
            "N>=1"));
}

std::chrono::system_clock::time_point parseSince(const std::string& text,
                                                 std::chrono::system_clock::time_point now) {
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
    throw Error("flow filter: bad --since '" + text +
                "': expected a duration like 30s, 5m, 2h, 1d or an RFC 3339 time like "
                "2026-12-02T03:10:00Z");
}

FlowQuery FlowQuery::parse(const FlowQueryArgs& a, std::chrono::system_clock::time_point now) {
    FlowQuery q;
    flows::FlowFilter& f = q.filter;
    for (const auto& v : a.verdict) f.verdicts.insert(flows::FlowFilter::parseVerdict(v));
    for (const auto& v : a.from_label) f.from_labels.push_back(flows::FlowFilter::parseSelector(v));
    for (const auto& v : a.to_label) f.to_labels.push_back(flows::FlowFilter::parseSelector(v));
    for (const auto& v : a.from_ip) f.from_ip.push_back(flows::FlowFilter::parseCidr(v));
    for (const auto& v : a.to_ip) f.to_ip.push_back(flows::FlowFilter::parseCidr(v));
    for (const auto& v : a.from) addParty(v, f.from_labels, f.from_ip, q.from_ids, q.from_names);
    for (const auto& v : a.to) addParty(v, f.to_labels, f.to_ip, q.to_ids, q.to_names);
    for (const auto& v : a.port) f.ports.insert(flows::FlowFilter::parsePort(v));
    for (const auto& v : a.protocol) f.protocols.insert(flows::FlowFilter::parseProtocol(v));
    if (!a.direction.empty()) {
        f.direction = flows::FlowFilter::parseDirection(a.direction);
    }
    if (!a.since.empty()) {
        q.since = parseSince(a.since, now);
    }
    q.last = a.last;
    return q;
}

bool FlowQuery::matches(const flows::FlowRecord& r) const {
    return filter.matches(r) && (from_ids.empty() || from_ids.count(r.src.identity)) &&
           (to_ids.empty() || to_ids.count(r.dst.identity)) && nameIn(from_names, r.src.name) &&
           nameIn(to_names, r.dst.name) && (!since || r.time >= *since);
}

v1::FlowsRequest FlowQuery::request(bool follow) const {
    v1::FlowsRequest req;
    for (const auto& v : filter.verdicts) req.add_verdict(v);
    for (const auto& s : filter.from_labels) req.add_from_label(policy::canonical(s.match_labels));
    for (const auto& s : filter.to_labels) req.add_to_label(policy::canonical(s.match_labels));
    for (const auto& p : filter.from_ip) req.add_from_ip(p.str());
    for (const auto& p : filter.to_ip) req.add_to_ip(p.str());
    for (uint16_t p : filter.ports) req.add_port(p);
    for (const auto& p : filter.protocols) req.add_protocol(p);
    req.set_follow(follow);
    return req;
}

}  // namespace ztseg::cli
