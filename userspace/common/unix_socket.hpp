// Unix sockets of ztseg's gRPC servers (ztsegd, ztseg-controller).
#pragma once

#include <string>

namespace ztseg {

// Readies `path` for a server to bind: the directory exists (created 0700),
// no stale socket is left, and no live server is using it (Error naming
// `what`, e.g. "api.unix_socket", if one is).
void prepareUnixSocket(const std::string& path, const std::string& what);

}  // namespace ztseg
