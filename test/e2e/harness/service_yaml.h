// Kubernetes objects for tests that define Services by hand: a Service
// with a clusterIP and annotations, and the EndpointSlice of one pod.
#pragma once

#include <string>

#include "absl/strings/str_cat.h"
#include "test/e2e/harness/sim.h"

namespace shunt::e2e {

// A Service of clusterIP `vip`, port 80 (named http) to targetPort 8080.
inline std::string Service(const std::string& name, const std::string& vip,
                           const std::string& annotations) {
  return absl::StrCat("---\napiVersion: v1\nkind: Service\nmetadata: {name: ", name,
                      ", namespace: demo, annotations: {", annotations,
                      "}}\nspec:\n  clusterIP: ", vip,
                      "\n  ports: [{name: http, port: 80, targetPort: 8080}]\n");
}

// The EndpointSlice of `service` with one ready endpoint: `pod` on `port`.
inline std::string Slice(const std::string& service, const TestPod& pod, int port,
                         const std::string& suffix = "1") {
  return absl::StrCat(
      "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: ", service,
      "-", suffix, "\n  namespace: demo\n  labels: {kubernetes.io/service-name: ", service,
      "}\naddressType: IPv4\nports: [{name: http, port: ", port,
      ", protocol: TCP}]\nendpoints:\n- addresses: [\"", pod.ip,
      "\"]\n  conditions: {ready: true}\n  targetRef: {kind: Pod, name: ", pod.name,
      ", namespace: demo}\n");
}

}  // namespace shunt::e2e
