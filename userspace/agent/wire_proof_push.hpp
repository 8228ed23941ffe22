// The controller's wire-proof key push (controller.proto WireProofPush) as
// the datapath's configuration. A push is taken whole or not at all.
#pragma once

#include "controller.pb.h"
#include "datapath/wire_proof.hpp"

namespace ztseg::agent {

// Throws Error naming the first bad field (key size, key id, peer id,
// address); nothing is applied then.
WireProofConfig wireProofConfig(const v1::WireProofPush& push);

}  // namespace ztseg::agent
