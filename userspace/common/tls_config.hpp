// Mutual TLS material of one endpoint (ztsegd's API and controller link, the
// controller's listener): PEM files.
#pragma once

#include <string>

namespace ztseg {

struct TlsConfig {
    std::string cert;
    std::string key;
    std::string ca;
};

}  // namespace ztseg
