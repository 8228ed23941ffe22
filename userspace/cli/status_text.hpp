// `ztsegctl status` for people and for scripts.
#pragma once

#include <string>

#include "agent.pb.h"

namespace ztseg::cli {

std::string statusText(const v1::StatusReply& st);
// Protobuf JSON (field names as in agent.proto, every field present).
std::string statusJson(const v1::StatusReply& st);

}  // namespace ztseg::cli
