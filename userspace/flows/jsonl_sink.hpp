// Flow log: one OCSF JSON object per line, appended to a file that rotates by
// size (path -> path.1 -> ... -> path.N, the oldest removed). Writing never
// throws on I/O errors: a failed record is counted in lost(), logged once per
// burst of failures, and the sink retries (reopening the file) on the next
// write, so it recovers by itself when the disk has room again.
//
// write(record) sends one line to the kernel at once. The event pipeline
// instead collects many lines in a Lines batch (no lock, no syscall per line)
// and hands the batch to write(Lines&), which sends it in as few write()s as
// rotation allows. A line counts as written once the write() carrying it
// succeeded; a failed write counts every line it carried as lost.
//
// Rotation accounting: lines are numbered in the order this sink wrote them.
// markDelivered(n) says lines [0, n) have reached a remote sink (a connected
// flow stream); write(lines, true) says the same of every line up to and
// including the batch's (the event pipeline queues a batch for the streams
// before writing it). rotatedUndelivered() counts the lines at or past that
// watermark that were in a file deleted by rotation (the oldest rotated file,
// or the file itself when max_files is 0) when it was deleted: records gone
// from the host before anyone off it saw them. Files left by an earlier
// process are not counted (their lines are unknown).
#pragma once

#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <vector>

#include "flows/flow_record.hpp"
#include "flows/text_buffer.hpp"

namespace ztseg::flows {

class JsonlSink {
  public:
    struct Options {
        std::string path;
        uint64_t max_bytes = 100ull << 20;  // rotate before a file would exceed this; 0 = never
        unsigned max_files = 5;             // rotated files kept (path.1 .. path.N)
    };

    // Lines waiting to be written, each ending in '\n'.
    class Lines {
      public:
        // Appends the line that `render(TextBuffer&)` writes (without newline).
        // Never throws: a render that throws loses the line, counted as sink
        // loss when the batch is written.
        template <class Render>
        void add(Render&& render) noexcept {
            const size_t start = text_.size();
            try {
                render(text_);
                text_.push_back('\n');
                ends_.push_back(text_.size());
            } catch (const std::exception& e) {
                text_.resize_down(start);
                if (unrendered_++ == 0) {
                    first_error_ = e.what();
                }
            }
        }
        size_t count() const { return ends_.size(); }
        size_t bytes() const { return text_.size(); }
        bool empty() const { return ends_.empty() && unrendered_ == 0; }
        void clear();

      private:
        friend class JsonlSink;
        TextBuffer text_;
        std::vector<size_t> ends_;  // offset just past each line
        uint64_t unrendered_ = 0;
        std::string first_error_;
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
    // Writes every line of the batch and clears it. Never throws.
    // `delivered`: a remote sink already has the batch (rotation accounting).
    void write(Lines& lines, bool delivered = false);

    void flush();  // fdatasync; never throws
    // Switches to another file (closing the current one); also the way to
    // reopen after an external logrotate.
    void setPath(std::string path);

    uint64_t written() const;
    uint64_t lost() const;
    void markDelivered(uint64_t lines);  // lines [0, lines) reached a remote sink
    uint64_t rotatedUndelivered() const;
    std::string path() const;

  private:
    bool openLocked(int& err);
    void rotateLocked();
    void deletedLocked(uint64_t first, uint64_t end);  // lines [first, end) were deleted
    void failLocked(uint64_t lines, int err, const char* what);
    void closeLocked();
    void writeLocked(Lines& lines, bool delivered = false);
    bool writeChunkLocked(const Lines& lines, size_t first, size_t end, size_t& chunk_start);

    mutable std::mutex mu_;
    Options opts_;
    int fd_ = -1;
    uint64_t size_ = 0;
    uint64_t written_ = 0;
    uint64_t lost_ = 0;
    uint64_t burst_lost_ = 0;  // lost since the last success; > 0: in an error burst
    uint64_t file_first_ = 0;  // number of the current file's first line
    // [first, end) line numbers of path.1, path.2, ... that this sink wrote
    std::deque<std::pair<uint64_t, uint64_t>> rotated_;
    uint64_t delivered_ = 0;
    uint64_t rotated_undelivered_ = 0;
    Lines single_;  // write(record) / writeLine()
};

}  // namespace ztseg::flows
