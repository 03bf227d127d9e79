// Whether this build runs under AddressSanitizer (the second pass of
// tools/test.sh), where every process runs several times slower. The few
// tests that repeat one step thousands of times repeat it a fifth as often
// there: the paths they take, which the sanitizers check, are the same.
#pragma once

namespace shunt::e2e {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

// n repetitions, or a fifth of them under the sanitizers.
constexpr int Repeats(int n) { return kSanitized ? n / 5 : n; }

}  // namespace shunt::e2e
