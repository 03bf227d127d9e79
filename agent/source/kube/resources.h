// What the kube source reads from the API server, and which part of each
// object it keeps (KUBE-API.md "Selectors and slim objects": a node agent
// that keeps whole pods of a large cluster runs out of memory; we keep the
// fields the model reads).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agent/source/kube/reflector.h"
#include "nlohmann/json.hpp"

namespace shunt::source::kube {

// Pods of this node (their binding and guard), pods of other nodes (the
// IP-to-identity cache), Services, EndpointSlices and the SMI kinds; the
// SMI CRDs are optional (a status line when not installed).
std::vector<ResourceSpec> MeshResources(const std::string& node);

// The part of a Pod the store keeps: name, namespace, uid, labels, owners,
// node, service account, IPs and phase. nullopt for a pod that is not a
// mesh endpoint yet or any more: not scheduled, no IP, hostNetwork (never
// meshed, and it shares the node's IP), Succeeded or Failed (its IP may
// already be another pod's). `local`: keep only pods of `node`; otherwise
// only pods of other nodes.
std::optional<nlohmann::json> KeepPod(const nlohmann::json& pod, const std::string& node,
                                      bool local);
// Any other object without what only the server needs (managedFields,
// resourceVersion, last-applied annotations, status).
std::optional<nlohmann::json> KeepObject(const nlohmann::json& object);
// A namespace's name and its shunt.dev/short-circuit annotation.
std::optional<nlohmann::json> KeepNamespace(const nlohmann::json& ns);

}  // namespace shunt::source::kube
