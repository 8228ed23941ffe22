// A growable byte buffer for writers that know an upper bound of what they
// are about to write: reserve() hands out room without zero-filling it (as
// std::string::resize would), the writer fills it through a pointer, and
// commit() keeps what was written. The storage is kept across clear().
#pragma once

#include <cstring>
#include <memory>
#include <string_view>

namespace ztseg::flows {

class TextBuffer {
  public:
    // Room for `n` more bytes; write them at the returned pointer, then commit().
    char* reserve(size_t n) {
        if (capacity_ - size_ < n) {
            grow(size_ + n);
        }
        return data_.get() + size_;
    }
    void commit(const char* end) { size_ = size_t(end - data_.get()); }

    void append(std::string_view s) {
        char* p = reserve(s.size());
        std::memcpy(p, s.data(), s.size());
        size_ += s.size();
    }
    void push_back(char c) {
        *reserve(1) = c;
        ++size_;
    }

    const char* data() const { return data_.get(); }
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    std::string_view view() const { return {data_.get(), size_}; }
    void resize_down(size_t n) { size_ = n < size_ ? n : size_; }
    void clear() { size_ = 0; }

  private:
    void grow(size_t need) {
        size_t cap = capacity_ ? capacity_ : 4096;
        while (cap < need) {
            cap *= 2;
        }
        auto bigger = std::make_unique_for_overwrite<char[]>(cap);
        if (size_ > 0) {
            std::memcpy(bigger.get(), data_.get(), size_);
        }
        data_ = std::move(bigger);
        capacity_ = cap;
    }

    std::unique_ptr<char[]> data_;
    size_t size_ = 0;
    size_t capacity_ = 0;
};

}  // namespace ztseg::flows
