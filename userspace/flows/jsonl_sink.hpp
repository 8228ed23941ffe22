// Flow log: one OCSF JSON object per line, appended to a file that rotates by
// size (path -> path.1 -> ... -> path.N, the oldest removed). Writing never
// throws on I/O errors: a failed record is counted in lost(), logged once per
// burst of failures, and the sink retries (reopening the file) on the next
// write, so it recovers by itself when the disk has room again. Every write
// goes straight to the kernel (no user-space buffer), so flush() only syncs.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "flows/flow_record.hpp"

namespace ztseg::flows {

class JsonlSink {
  public:
    struct Options {
        std::string path;
        uint64_t max_bytes = 100ull << 20;  // rotate before a file would exceed this; 0 = never
        unsigned max_files = 5;             // rotated files kept (path.1 .. path.N)
    };

    // Throws Error only for invalid options (empty path); an unopenable file
    // is an I/O error like any other: counted on write.
    explicit JsonlSink(Options opts);
    ~JsonlSink();
    JsonlSink(const JsonlSink&) = delete;
    JsonlSink& operator=(const JsonlSink&) = delete;

    // Returns whether the record reached the file.
    bool write(const FlowRecord& r);
    bool writeLine(const std::string& line);  // a ready OCSF line, no newline
    void flush();                             // fdatasync; never throws
    // Switches to another file (closing the current one); also the way to
    // reopen after an external logrotate.
    void setPath(std::string path);

    uint64_t written() const;
    uint64_t lost() const;
    std::string path() const;

  private:
    bool openLocked(int& err);
    void rotateLocked();
    void failLocked(int err, const char* what);
    void closeLocked();

    mutable std::mutex mu_;
    Options opts_;
    int fd_ = -1;
    uint64_t size_ = 0;
    uint64_t written_ = 0;
    uint64_t lost_ = 0;
    uint64_t burst_lost_ = 0;  // lost since the last success; > 0: in an error burst
};

}  // namespace ztseg::flows
