// Who talks to whom: flow records folded into a graph of workloads (nodes)
// and services between them (edges), rendered as Graphviz DOT for
// `ztsegctl map` and `ztsegctl fleet map`. Pure: no I/O, deterministic
// output (nodes and edges sorted), so a DOT file can be a golden.
//
// Counting: each connection once. Events with the same 5-tuple (source
// address and port, destination address and port, protocol) are one
// connection, whichever hook and host observed them: the client's egress and
// the server's ingress event, and a retransmitted SYN dropped twice at XDP.
// The connection takes the most severe verdict any of its events had
// (dropped > would-drop > allowed): allowed at the client but dropped at the
// server did not get through. The reverse 5-tuple (the server's reply,
// reported when the first packet was allowed or only audited) is the same
// connection: the earlier direction is kept. Events without a source port
// (ICMP, or a connect() refused before the socket had an address) count one
// each.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "flows/flow_record.hpp"

namespace ztseg::flows {

struct FlowMapOptions {
    // A label key: endpoints carrying it become one node per value
    // ("tier=frontend"); the others keep their own node. "" = no grouping.
    std::string group_by;
};

struct MapNode {
    std::string id;                   // "web", "tier=frontend", "unlabeled", "world"
    std::set<std::string> workloads;  // names of the endpoints in it
    std::set<std::string> labels;     // canonical label sets of its endpoints
    std::set<std::string> addresses;  // for unlabeled/world: the addresses seen
    bool reserved = false;            // unlabeled, world, host
    bool grouped = false;             // a --group-by node
};

struct MapEdge {
    std::string src, dst;  // node ids
    std::string protocol;  // "tcp", "udp", "icmp", ...
    uint16_t port = 0;     // destination port, 0 for none
    std::string verdict;   // "allowed", "would-drop", "dropped"
    uint64_t connections = 0;

    std::string service() const;  // "tcp/5432", "icmp"
};

struct FlowMap {
    std::vector<MapNode> nodes;  // sorted by id
    std::vector<MapEdge> edges;  // sorted by src, dst, protocol, port, verdict
    uint64_t events = 0;         // flow events read
    uint64_t connections = 0;    // after counting each connection once
};

// The node an endpoint belongs to.
std::string mapNodeId(const FlowEndpoint& e, const FlowMapOptions& opts);

// Folds the records into the graph (any order gives the same graph).
FlowMap buildFlowMap(const std::vector<FlowRecord>& records, const FlowMapOptions& opts = {});

// Graphviz DOT: allowed edges green, dropped red, would-drop orange and
// dashed, each labelled "tcp/5432 ×12" (connections).
std::string flowMapDot(const FlowMap& map, const std::string& title = "");

// The colour of a verdict's edges ("green4", "red", "orange").
std::string verdictColor(const std::string& verdict);

}  // namespace ztseg::flows
