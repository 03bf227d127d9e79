// Test helper: an in-memory EndpointMaps (agent/endpoints/endpoint_maps.h)
// for ApplyPlan and the endpoints controller.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/endpoints/endpoint_maps.h"

namespace shunt::testing {

inline std::string DottedIpv4(uint32_t be) {
  char buf[INET_ADDRSTRLEN];
  in_addr a{.s_addr = be};
  return inet_ntop(AF_INET, &a, buf, sizeof(buf));
}

// Behaves like two BPF hash maps of bounded size: inserting a new key into a
// full map is ResourceExhausted; overwriting an existing key always works.
// Every mutating call is logged, in order.
class FakeEndpointMaps : public shunt::endpoints::EndpointMaps {
 public:
  absl::StatusOr<std::map<uint64_t, shunt::endpoints::EndpointEntry>> ReadEndpoints() override {
    if (!read_endpoints_status.ok()) return read_endpoints_status;
    return endpoints;
  }
  absl::StatusOr<std::map<uint32_t, shunt_ipcache_entry>> ReadIpcache() override {
    if (!read_ipcache_status.ok()) return read_ipcache_status;
    return ipcache;
  }
  absl::Status PutEndpoint(uint64_t cookie, const shunt::endpoints::EndpointEntry& e) override {
    calls.push_back(absl::StrCat("put endpoint ", cookie));
    if (!endpoints.count(cookie) && endpoints.size() >= endpoint_capacity)
      return absl::ResourceExhaustedError("bpf: map endpoints is full");
    endpoints[cookie] = e;
    return absl::OkStatus();
  }
  absl::Status DeleteEndpoint(uint64_t cookie) override {
    calls.push_back(absl::StrCat("delete endpoint ", cookie));
    if (!delete_status.ok()) return delete_status;
    endpoints.erase(cookie);
    return absl::OkStatus();
  }
  absl::Status PutIpcache(uint32_t ip_be, const shunt_ipcache_entry& e) override {
    calls.push_back(absl::StrCat("put ipcache ", DottedIpv4(ip_be)));
    if (!ipcache.count(ip_be) && ipcache.size() >= ipcache_capacity)
      return absl::ResourceExhaustedError("bpf: map ipcache is full");
    ipcache[ip_be] = e;
    return absl::OkStatus();
  }
  absl::Status DeleteIpcache(uint32_t ip_be) override {
    calls.push_back(absl::StrCat("delete ipcache ", DottedIpv4(ip_be)));
    if (!delete_status.ok()) return delete_status;
    ipcache.erase(ip_be);
    return absl::OkStatus();
  }

  absl::StatusOr<std::map<shunt::endpoints::Ip6, shunt_ipcache_entry>> ReadIpcache6() override {
    return ipcache6;
  }
  absl::Status PutIpcache6(const shunt::endpoints::Ip6& ip, const shunt_ipcache_entry& e) override {
    char buf[INET6_ADDRSTRLEN];
    calls.push_back(
        absl::StrCat("put ipcache6 ", inet_ntop(AF_INET6, ip.data(), buf, sizeof(buf))));
    ipcache6[ip] = e;
    return absl::OkStatus();
  }
  absl::Status DeleteIpcache6(const shunt::endpoints::Ip6& ip) override {
    char buf[INET6_ADDRSTRLEN];
    calls.push_back(
        absl::StrCat("delete ipcache6 ", inet_ntop(AF_INET6, ip.data(), buf, sizeof(buf))));
    ipcache6.erase(ip);
    return absl::OkStatus();
  }

  std::map<uint64_t, shunt::endpoints::EndpointEntry> endpoints;
  std::map<shunt::endpoints::Ip6, shunt_ipcache_entry> ipcache6;
  std::map<uint32_t, shunt_ipcache_entry> ipcache;
  size_t endpoint_capacity = std::numeric_limits<size_t>::max();
  size_t ipcache_capacity = std::numeric_limits<size_t>::max();
  absl::Status read_endpoints_status;
  absl::Status read_ipcache_status;
  absl::Status delete_status;
  std::vector<std::string> calls;
};

}  // namespace shunt::testing
