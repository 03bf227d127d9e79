// A whole file as bytes (logs, captures, client output), "" if unreadable.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace shunt::e2e {

inline std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace shunt::e2e
