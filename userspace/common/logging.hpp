// Log set-up shared by the daemons: level, and no second timestamp when
// journald is the reader (it stamps every line itself).
#pragma once

#include <string>

namespace ztseg {

// True when fd is the journal stream systemd set up for this service
// (JOURNAL_STREAM names its device:inode, see systemd.exec(5)).
bool isJournalStream(int fd);
// Sets the level ("info", ...) and the line format: "[level] message" under
// journald, spdlog's default (with time) otherwise.
void configureLogging(const std::string& level);

}  // namespace ztseg
