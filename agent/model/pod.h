// The Pod fields this version uses, parsed and validated from a Kubernetes
// v1 Pod object.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace shunt::model {

struct Pod {
  std::string namespace_;  // metadata.namespace, "default" when absent
  std::string name;        // metadata.name
  // metadata.uid: the kubelet names the pod's cgroup after it, and a local
  // pod is bound to its network namespace through that cgroup
  // (netns/pod_cgroups.h). Empty when the manifest has none.
  std::string uid;
  std::string service_account;  // spec.serviceAccountName, "default" when absent
  std::string node_name;        // spec.nodeName
  std::string ip;               // status.podIP, dotted quad
  uint32_t ip_be = 0;           // the same, network byte order
  // The IPv6 address among status.podIPs on a dual-stack cluster (text as
  // written, and its 16 bytes); empty and all zero when there is none.
  std::string ip6;
  std::array<uint8_t, 16> ip6_bytes{};
  // status.hostIP: the node's address, where its proxy listens (mTLS); empty when absent.
  std::string host_ip;
  bool host_network = false;  // spec.hostNetwork: shares the node's namespace, never meshed
  // shunt.dev/short-circuit: "off" (its namespace may say so too).
  bool short_circuit_off = false;
  // The workload the pod belongs to, for telemetry: its controller
  // (metadata.ownerReferences, the one with controller: true, else the
  // first), a ReplicaSet made by a Deployment shown as that Deployment (its
  // name minus the pod-template-hash label). Empty when the pod has no
  // owner: it is then known by its service account.
  std::string workload_kind;  // "deployment", "statefulset", "daemonset", "job", ...
  std::string workload;

  std::string Key() const { return namespace_ + "/" + name; }
  // "deployment/web", else "sa/<service account>".
  std::string WorkloadName() const {
    return workload.empty() ? "sa/" + service_account : workload_kind + "/" + workload;
  }
};

// InvalidArgument naming the field: "spec.nodeName is missing (pod not
// scheduled)", "status.podIP 'x' is not an IPv4 address", ...
absl::StatusOr<Pod> ParsePod(const nlohmann::json& doc);

// Kubernetes name rules, shared by every kind.
bool IsDnsLabel(const std::string& s);      // namespaces, service accounts
bool IsDnsSubdomain(const std::string& s);  // object names

}  // namespace shunt::model
