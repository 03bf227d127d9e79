// What the fuzz targets share: a check that stops the run with a message
// (libFuzzer then saves the input as a crash), and a reader that takes
// structured values from the fuzzer's bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

// A property the target promises; its failure is a finding like a crash.
#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

namespace shunt::fuzz {

// Takes values from the front of the input; past its end, zeros.
class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t left() const { return size_ - pos_; }
  // Copies sizeof(T) bytes (zero-filled past the end) into a T.
  template <typename T>
  T Take() {
    T out{};
    const size_t n = sizeof(T) < left() ? sizeof(T) : left();
    std::memcpy(&out, data_ + pos_, n);
    pos_ += n;
    return out;
  }
  uint8_t Byte() { return Take<uint8_t>(); }
  // Up to `n` bytes as a view into the input.
  std::string_view View(size_t n) {
    if (n > left()) n = left();
    std::string_view out(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return out;
  }
  std::string_view Rest() { return View(left()); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// A cheap hash of the input, to derive choices (such as where to split a
// stream) that stay the same for the same input.
inline uint64_t Fnv1a(const uint8_t* data, size_t size) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 1099511628211ull;
  return h;
}

}  // namespace shunt::fuzz
