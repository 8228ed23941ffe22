#include "common/version.hpp"

#include "version_commit.h"  // generated at build time (cmake/write_version.cmake)

namespace ztseg {

const char* buildVersion() {
    return ZTSEG_BUILD_VERSION;
}

const char* buildCommit() {
    return ZTSEG_BUILD_COMMIT;
}

std::string versionLine(const std::string& program) {
    return program + " " + buildVersion() + " (commit " + buildCommit() + ")";
}

}  // namespace ztseg
