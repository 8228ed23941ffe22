// Flows over gRPC: FlowRecord <-> the API's FlowEvent, the hubble-style
// filter of a FlowsRequest, and the server side of a Flows stream (shared by
// ztsegd's Flows and ztseg-controller's FleetFlows).
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/sync_stream.h>

#include "agent.pb.h"
#include "flows/filter.hpp"
#include "flows/flow_record.hpp"
#include "shared/flow_hub.hpp"

namespace ztseg {

// FlowRecord -> the API's FlowEvent (with the OCSF JSON line), and back.
v1::FlowEvent toFlowEvent(const flows::FlowRecord& r);
flows::FlowRecord fromFlowEvent(const v1::FlowEvent& e);

// Throws Error naming the bad value.
flows::FlowFilter filterOf(const v1::FlowsRequest& req);

// Filtered flows from `hub`: the recent history (follow=false), or history
// then new flows until the client cancels or the hub closes.
grpc::Status serveFlows(grpc::ServerContext* ctx, const v1::FlowsRequest& req,
                        grpc::ServerWriter<v1::FlowEvent>* writer, FlowHub& hub);

}  // namespace ztseg
