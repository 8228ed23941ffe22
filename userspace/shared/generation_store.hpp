// Rollback protection that survives restarts: the highest generation this
// host ever applied, and the bundle that is applied now, kept in state_dir.
// Writes are atomic (temp file, fsync, rename, fsync dir): after a crash the
// store holds the old or the new value, never a torn one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ztseg {

class GenerationStore {
  public:
    explicit GenerationStore(std::string state_dir);  // creates the directory (0700)

    uint64_t highest() const;  // 0 if nothing was ever applied
    // Throws Error unless `generation` is strictly greater than highest():
    // "generation 7 is not newer than 9, the highest this host applied".
    void checkNewer(uint64_t generation) const;
    // Records an applied bundle (its bytes and generation). `keep_previous`:
    // the bundle current until now becomes previousBundle().
    void recordApplied(uint64_t generation, const std::string& bundle_bytes,
                       bool keep_previous = false);
    // Records which bundle is applied now without raising highest() (a
    // local rollback to an older generation).
    void recordCurrent(const std::string& bundle_bytes);
    std::optional<std::string> currentBundle() const;
    // The bundle that was current before the last recordApplied() with
    // keep_previous (what a local rollback returns to). Kept on disk, not in
    // memory: at 100k rules a bundle is 15 MB.
    std::optional<std::string> previousBundle() const;
    // The current and the previous bundle trade places (a local rollback).
    // Every step is a rename: after a crash the current bundle is one of the two.
    void swapCurrentAndPrevious();
    // When the current bundle was recorded (unix ms), 0 if none is.
    int64_t currentSinceUnixMs() const;
    // The return point of a confirm window (agent/confirm_window.hpp): the
    // current bundle gets a second name that later applies leave alone.
    void keepReturnPoint();
    std::optional<std::string> returnPointBundle() const;
    // Back to the return point: the current bundle becomes previousBundle()
    // and the return point the current one (renames: after a crash the
    // current bundle is one of the two). highest() stays.
    void restoreReturnPoint();
    void dropReturnPoint();
    // Small records of other components (the pending confirmation), written
    // with the same discipline as the bundles; remove: unlink and sync the dir.
    void writeRecord(const std::string& name, const std::string& data) const {
        writeAtomically(name, data);
    }
    std::optional<std::string> readRecord(const std::string& name) const;
    void removeRecord(const std::string& name) const;
    const std::string& dir() const { return dir_; }
    // The same for a state_dir read by someone else (ztsegctl while ztsegd is
    // stopped): nothing is created.
    static std::optional<std::string> currentBundleIn(const std::string& state_dir);

  private:
    void writeAtomically(const std::string& name, const std::string& data) const;
    void linkAtomically(const std::string& from, const std::string& to) const;
    void syncDir() const;
    std::string dir_;
};

}  // namespace ztseg
