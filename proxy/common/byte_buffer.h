// A growable byte queue for the proxy's data path: bytes are written at the
// back into space handed out uninitialised (a recv() or SSL_read() fills it
// directly, where std::string::resize would zero it first) and consumed
// from the front without moving the rest until it pays.
//
// Blocks of 4 and 64 KiB (a first write; a read's room) come from and go
// back to small free lists of the thread's: a connection gives its buffers
// back between messages (an idle one holds none) and takes them again for
// the next without a heap allocation (HAProxy's pools; tools/bench
// shunt-l7-alloc-bench, shunt-l7-bench's idle memory).
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace shunt::proxy {

namespace byte_buffer_pool {

inline constexpr size_t kBlock = 4096;
inline constexpr size_t kBigBlock = 64 * 1024;
// Blocks a thread keeps of each: 2 MiB and 4 MiB at most.
inline constexpr size_t kKeep = 512, kKeepBig = 64;

// Set once the thread's list is gone (a buffer freed later in the thread's
// exit goes straight to the heap); trivially destructible, so always valid.
inline thread_local bool tl_gone = false;
struct FreeBlocks {
  FreeBlocks() {
    blocks.reserve(kKeep);
    big.reserve(kKeepBig);
  }
  ~FreeBlocks() {
    for (char* b : blocks) delete[] b;
    for (char* b : big) delete[] b;
    tl_gone = true;
  }
  std::vector<char*>* For(size_t cap) {
    return cap == kBlock ? &blocks : cap == kBigBlock ? &big : nullptr;
  }
  std::vector<char*> blocks, big;
};
inline FreeBlocks& Local() {
  thread_local FreeBlocks free_blocks;
  return free_blocks;
}
inline char* Take(size_t cap) {
  if ((cap == kBlock || cap == kBigBlock) && !tl_gone) {
    auto& f = *Local().For(cap);
    if (!f.empty()) {
      char* b = f.back();
      f.pop_back();
      return b;
    }
  }
  return new char[cap];  // not zeroed
}
inline void Give(char* b, size_t cap) {
  if (b == nullptr) return;
  if ((cap == kBlock || cap == kBigBlock) && !tl_gone) {
    auto& f = *Local().For(cap);
    if (f.size() < f.capacity()) {
      f.push_back(b);
      return;
    }
  }
  delete[] b;
}

}  // namespace byte_buffer_pool

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(ByteBuffer&& o) noexcept { swap(o); }
  ByteBuffer& operator=(ByteBuffer&& o) noexcept {
    if (this != &o) {
      Release();
      swap(o);
    }
    return *this;
  }
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;
  ~ByteBuffer() { Release(); }

  const char* data() const { return buf_ + begin_; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return end_ == begin_; }
  size_t capacity() const { return cap_; }
  absl::string_view view() const { return {data(), size()}; }

  // At least `n` writable bytes after the data; Commit says how many were
  // written.
  char* Reserve(size_t n) {
    if (cap_ - end_ >= n) return buf_ + end_;
    const size_t used = size();
    if (begin_ > 0 && cap_ - used >= n && used <= cap_ / 2) {
      // Enough room once the consumed front is reclaimed.
      memmove(buf_, data(), used);
    } else {
      size_t cap = cap_ ? cap_ : byte_buffer_pool::kBlock;
      while (cap - used < n) cap *= 2;
      char* bigger = byte_buffer_pool::Take(cap);
      if (used) memcpy(bigger, data(), used);
      byte_buffer_pool::Give(buf_, cap_);
      buf_ = bigger;
      cap_ = cap;
    }
    begin_ = 0;
    end_ = used;
    return buf_ + end_;
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
    byte_buffer_pool::Give(buf_, cap_);
    buf_ = nullptr;
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
  char* buf_ = nullptr;  // cap_ bytes, from byte_buffer_pool
  size_t cap_ = 0, begin_ = 0, end_ = 0;
};

}  // namespace shunt::proxy
