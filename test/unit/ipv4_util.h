// IPv4 addresses as the maps hold them (network byte order), shared by the
// unit tests of the map writers and plans.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <string>

#include "gtest/gtest.h"

namespace shunt::test_util {

inline uint32_t Ipv4Be(const std::string& dotted) {
  in_addr a{};
  if (inet_pton(AF_INET, dotted.c_str(), &a) != 1)
    ADD_FAILURE() << "not an IPv4 address: " << dotted;
  return a.s_addr;
}

}  // namespace shunt::test_util
