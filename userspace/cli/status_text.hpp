// `ztsegctl status` for people and for scripts.
#pragma once

#include <string>
#include <vector>

#include "agent.pb.h"

namespace ztseg::cli {

std::string statusText(const v1::StatusReply& st);
// Left-aligned columns, two spaces apart, indented by two (every status table).
std::string statusTable(const std::vector<std::vector<std::string>>& rows);
// Protobuf JSON (field names as in agent.proto, every field present).
std::string statusJson(const v1::StatusReply& st);

// Any API message as protobuf JSON with map entries sorted by key, so the
// same message always prints the same text. Throws Error if it cannot.
std::string protoJson(const google::protobuf::Message& m, bool pretty);

}  // namespace ztseg::cli
