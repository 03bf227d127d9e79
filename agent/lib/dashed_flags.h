// Abseil flags are spelled with underscores; users type dashes (--config-dir).
// Rewrites the name part of each "--flag[=value]" argument in place.
#pragma once

#include <cstring>

namespace shunt::lib {

inline void NormalizeDashedFlags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* a = argv[i];
    if (std::strcmp(a, "--") == 0) break;  // the rest are positional
    if (a[0] != '-' || a[1] != '-') continue;
    for (char* p = a + 2; *p && *p != '='; ++p)
      if (*p == '-') *p = '_';
  }
}

}  // namespace shunt::lib
