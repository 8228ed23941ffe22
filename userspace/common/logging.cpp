#include "common/logging.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace ztseg {

bool isJournalStream(int fd) {
    const char* env = std::getenv("JOURNAL_STREAM");
    if (env == nullptr) {
        return false;
    }
    struct stat st {};
    if (fstat(fd, &st) != 0) {
        return false;
    }
    // "<device>:<inode>" in decimal; a child whose output was redirected
    // inherits the variable, so compare rather than trust it.
    return std::string(env) ==
           std::to_string(uint64_t(st.st_dev)) + ":" + std::to_string(uint64_t(st.st_ino));
}

void configureLogging(const std::string& level) {
    spdlog::set_level(spdlog::level::from_str(level));
    if (isJournalStream(STDOUT_FILENO)) {  // spdlog's default logger writes to stdout
        spdlog::set_pattern("[%l] %v");
    }
}

}  // namespace ztseg
