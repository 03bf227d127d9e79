// A growable byte queue for the proxy's data path: bytes are written at the
// back into space handed out uninitialised (a recv() or SSL_read() fills it
// directly, where std::string::resize would zero it first) and consumed
// from the front without moving the rest until it pays.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/string_view.h"

namespace shunt::proxy {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(ByteBuffer&&) noexcept = default;
  ByteBuffer& operator=(ByteBuffer&&) noexcept = default;

  const char* data() const { return buf_.get() + begin_; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return end_ == begin_; }
  size_t capacity() const { return cap_; }
  absl::string_view view() const { return {data(), size()}; }

  // At least `n` writable bytes after the data; Commit says how many were
  // written.
  char* Reserve(size_t n) {
    if (cap_ - end_ >= n) return buf_.get() + end_;
    const size_t used = size();
    if (begin_ > 0 && cap_ - used >= n && used <= cap_ / 2) {
      // Enough room once the consumed front is reclaimed.
      memmove(buf_.get(), data(), used);
    } else {
      size_t cap = cap_ ? cap_ : 4096;
      while (cap - used < n) cap *= 2;
      std::unique_ptr<char[]> bigger(new char[cap]);  // not zeroed
      if (used) memcpy(bigger.get(), data(), used);
      buf_ = std::move(bigger);
      cap_ = cap;
    }
    begin_ = 0;
    end_ = used;
    return buf_.get() + end_;
  }
  void Commit(size_t n) { end_ += n; }
  void Append(absl::string_view s) {
    if (s.empty()) return;
    memcpy(Reserve(s.size()), s.data(), s.size());
    Commit(s.size());
  }
  void Consume(size_t n) {
    begin_ += n;
    if (begin_ >= end_) begin_ = end_ = 0;
  }
  void clear() { begin_ = end_ = 0; }
  // Gives the memory back (an idle connection keeps no buffer).
  void Release() {
    buf_.reset();
    cap_ = begin_ = end_ = 0;
  }
  void swap(ByteBuffer& o) noexcept {
    std::swap(buf_, o.buf_);
    std::swap(cap_, o.cap_);
    std::swap(begin_, o.begin_);
    std::swap(end_, o.end_);
  }
  // Moves this buffer's bytes to the back of `to`: a swap when `to` is
  // empty, so the common case copies nothing.
  void MoveTo(ByteBuffer* to) {
    if (to->empty()) {
      swap(*to);
      clear();
      return;
    }
    to->Append(view());
    clear();
  }

 private:
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0, begin_ = 0, end_ = 0;
};

}  // namespace shunt::proxy
